"""Atomic file writes: every file the project writes goes through here.

A write goes to a temporary file in the destination's folder and is moved in place with :func:`os.replace`
(atomic on POSIX and Windows), so a reader, a crash or a ``kill -9`` never sees half a file: the old
version stays until the new one is complete. Temporary names start with ``.`` and end in ``.tmp`` (plus the
real suffix where a writer needs it, e.g. ``.tmp.mp4`` for PyAV, ``.tmp.png`` for matplotlib), so globbing
for results never picks one up. A write killed half-way (``kill -9``, power loss) leaves its temporary behind;
:func:`remove_stale_temporaries` clears them from a folder when a job starts again there.

Files end up with the mode a plain ``open()`` would give (``0o666`` less the umask: ``0o644`` usually),
whichever writer made them.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")
"""the names :func:`atomic_output` gives its temporaries: ``.NAME.<8 random chars>.tmp[.SUFFIX]`` (``mkstemp``)"""

_umask_lock = threading.Lock()


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the process umask (``0o644`` with the usual 022)."""
    with _umask_lock:  # the umask can only be read by setting it; put it straight back
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit move it onto ``path``, on error remove it.

    :param path: the destination (its folder is created).
    :param suffix: appended to the temporary name after ``.tmp`` (e.g. ``".mp4"`` for writers that pick the
        format from the extension).

    >>> with atomic_output("out/plot.png", suffix=".png") as tmp:   # doctest: +SKIP
    ...     fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())  # mkstemp makes 0o600 files; give what any other written file gets
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the move)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_default(o: Any) -> Any:
    """``json.dumps`` fallback for the values results are made of: paths as strings, numpy scalars and arrays as
    numbers and lists."""
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_json(path: PathLike, obj: Any, indent: int = 2, **kwargs) -> Path:
    """Write ``obj`` as JSON (one trailing newline) to ``path`` atomically. Paths and numpy values are written as
    strings, numbers and lists (:func:`json_default`); ``kwargs`` go to :func:`json.dumps`."""
    kwargs.setdefault("default", json_default)
    return atomic_write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> Path:
    """:func:`torch.save` ``obj`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporaries that killed :func:`atomic_output` writes left in ``folder`` (not in sub-folders;
    only names of our own pattern :data:`TEMP_NAME`, e.g. ``.train_state.pt.k3j9x_2a.tmp``); returns them.

    Call it when a job starts in its output folder, before it writes anything: a temporary there is then
    from a run that died, never from a write in progress.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if TEMP_NAME.match(p.name) and p.is_file() and not p.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed
