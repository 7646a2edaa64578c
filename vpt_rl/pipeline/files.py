"""What the stages share on disk: JSON records, the one up-to-date check, and segment folders.

Every "is this already done?" question of the pipeline (a stage's marker, a stage folder's stamp, an RL
run's ``run.done``, an evaluated agent's JSON) is :func:`up_to_date`: a JSON file that records the
configuration something was made with, compared with the configuration wanted now.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from vpt_rl.atomic import PathLike, atomic_output, atomic_write_json, atomic_write_text, json_default


class PipelineError(RuntimeError):
    """A pipeline stage cannot run (a missing or stale input, a bad option)."""


# --------------------------------------------------------------------------------------------------
# JSON records


_json_default = json_default  # the old private name


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`vpt_rl.atomic.atomic_write_json`); paths and numpy
    values are written as strings, numbers and lists."""
    atomic_write_json(path, obj, indent=2)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write text to ``path`` atomically (:func:`vpt_rl.atomic.atomic_write_text`)."""
    atomic_write_text(path, text)


def jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, numpy values plain numbers), so that a
    configuration compares equal to the one recorded in a file."""
    return json.loads(json.dumps(obj, default=_json_default))


def read_json(path: PathLike, warn: Optional[Callable[[str], None]] = None) -> Optional[Any]:
    """The JSON in ``path``, or ``None`` when it is missing or unreadable (then ``warn`` is told why, if given)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        if warn is not None:
            warn(f"{path}: {e}")
        return None


def matches(record: Optional[Any], want: Any, key: Optional[str] = None) -> bool:
    """True when ``record`` (a JSON record, or ``None`` for none) holds exactly the configuration ``want``
    (as its ``key`` entry, or as a whole when ``key`` is None)."""
    if key is not None:
        record = record.get(key) if isinstance(record, dict) else None
    return record is not None and record == jsonable(want)


def up_to_date(path: PathLike, want: Any, key: Optional[str] = None) -> bool:
    """True when the JSON file ``path`` records exactly the configuration ``want`` (under ``key``): the one
    "skip if done" check of the pipeline (markers, stage folders, RL runs, evaluated agents)."""
    return matches(read_json(path), want, key)


# --------------------------------------------------------------------------------------------------
# Folders and segments


def prepare_dir(folder: Path, want: Mapping[str, Any], force: bool = False) -> None:
    """Make ``folder`` ready for a stage: keep it (so the stage's own resume continues an interrupted run)
    only when it was started with the configuration ``want``, else delete it; then stamp it."""
    stamp = folder / ".stage_config.json"
    if folder.exists() and (force or not up_to_date(stamp, want)):
        shutil.rmtree(folder)
    write_json_atomic(stamp, want)


def list_segments(folder: PathLike, need_jsonl: bool = True) -> List[Path]:
    """The segment videos (``*.mp4``) in ``folder``, sorted; with ``need_jsonl`` only those with a jsonl."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    vids = sorted(p for p in folder.glob("*.mp4") if not p.name.startswith("."))
    if need_jsonl:
        vids = [p for p in vids if p.with_suffix(".jsonl").is_file()]
    return vids


def count_lines(path: Path) -> int:
    """Non-empty lines of a jsonl file (the frames of a segment)."""
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def episode_key(seg: Path) -> str:
    """Segments of one episode share a name up to the trailing ``-NNN`` segment number."""
    stem = seg.stem
    head, sep, tail = stem.rpartition("-")
    return head if sep and tail.isdigit() and len(tail) == 3 else stem


def link_or_copy(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link where the file system allows, else a copy."""
    with atomic_output(dst) as tmp:
        tmp.unlink()  # os.link wants a free name
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)


def write_segment_index(folder: Path, segs: Sequence[Path]) -> None:
    """``folder/index.json`` listing ``segs`` (the contractor data's index format)."""
    write_json_atomic(folder / "index.json", {"basedir": str(folder), "relpaths": [s.name for s in segs]})


def check_files(*paths: Path) -> None:
    """Raise :class:`PipelineError` naming the ``paths`` that are not files."""
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise PipelineError(f"expected output file(s) missing: {', '.join(missing)}")


def file_stamp(path: PathLike) -> Dict[str, Any]:
    """Path, size and modification time of a file: changes when the file is rewritten."""
    st = os.stat(path)
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def safe_name(name: str) -> str:
    """An agent name as a file stem (``foundation+rl`` -> ``foundation_plus_rl``)."""
    return name.replace("+", "_plus_").replace("/", "_")
