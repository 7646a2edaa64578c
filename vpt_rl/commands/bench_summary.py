"""`vpt-rl bench-summary`: one page that answers the benchmarks' questions (speed, data efficiency, RL).

Reads ``benchmarks/results/*.json`` (written by the ``benchmarks/bench_*.py`` scripts) and writes
``benchmarks/SUMMARY.md``:

1. one Markdown table per question (:data:`QUESTIONS`: "How fast is inference vs the official code?", "How
   fast is MineLite vs MineRL/Crafter?", "Does pretraining help RL?", "How much data does BC need?", ...), with
   units, what it compares, and the machine and date recorded in the results files. A question with no
   results file is left out;
2. a status table: each script's results files, or "not run" with the command that runs it; unreadable files
   are listed with the reason; no file is required;
3. every file's numbers, grouped as speed / data efficiency / RL / other: the ``headline`` dict if there is
   one (name -> number or text, the convention for new benchmarks), else ``summary``, else ``results``, else
   every number in the file except the run's arguments, flattened to ``a.b.c`` names (the first
   :data:`MAX_ROWS`).

Files whose stem ends in ``.partial`` or ``.tmp``, or whose name starts with ``.``, are a benchmark still
being written and are ignored.

    vpt-rl bench-summary                                   # from the repository root
    vpt-rl bench-summary --bench-dir benchmarks --out benchmarks/SUMMARY.md
    vpt-rl bench-summary --out -                           # print the page instead of writing it
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vpt_rl.atomic import atomic_write_text
from vpt_rl.commands.bench_questions import QUESTIONS, anchor, fmt_value, question_sections  # noqa: F401

MAX_ROWS = 14

# benchmark name (bench_<name>.py) -> section; names not listed go to "Other"
SECTIONS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("Speed", ("inference", "actions", "minelite", "wrappers", "loader", "sb3", "sample_factory")),
    ("Data efficiency", ("idm_data_efficiency", "idm_camera", "idm", "bc", "bc_data_scaling")),
    ("RL", ("rl_comparison", "expert")),
)
_SKIP_KEYS = {"args", "argv", "config", "command", "env", "versions", "machine", "date", "python", "torch",
              "numpy", "platform", "per_episode", "curve", "curves"}


def _section(name: str) -> str:
    for title, names in SECTIONS:
        if name in names:
            return title
    return "Other"


def _flatten(obj: Any, prefix: str = "", depth: int = 0, skip: bool = True) -> List[Tuple[str, Any]]:
    rows: List[Tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if skip and depth == 0 and k in _SKIP_KEYS:
                continue
            rows += _flatten(v, f"{prefix}{k}.", depth + 1, skip)
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj) and depth < 3:
        # a table of runs (e.g. "rows": [{"case": "step1", "impl": "fast", "fps": ...}]): label each row by
        # its short text fields, then list its numbers
        for i, row in enumerate(obj):
            label = "/".join(str(v) for v in row.values() if isinstance(v, str) and len(v) <= 40) or str(i)
            rows += [(f"{prefix}{label}.{k}", v) for k, v in row.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]
    elif (obj is None or isinstance(obj, (int, float, bool, str))) and depth > 0:
        if isinstance(obj, str) and len(obj) > 60:
            return rows
        rows.append((prefix[:-1], obj))
    return rows


def headline_rows(data: Any) -> List[Tuple[str, Any]]:
    """The (name, value) rows shown for one results file (see the module docstring)."""
    if isinstance(data, dict):
        for key in ("headline", "summary", "results"):
            if isinstance(data.get(key), dict):
                rows = _flatten(data[key], skip=False)
                if rows:
                    return rows
    return [(k, v) for k, v in _flatten(data) if not isinstance(v, str) or k in ("benchmark", "note")]


def _match_results(scripts: Sequence[str], results: Dict[str, Path], loaded: Dict[str, Any]) -> Dict[str, List[Path]]:
    """bench name -> its results files: ``bench_<name>*.json``, ``<name>*.json`` or a file whose
    ``"benchmark"`` field is ``<name>``."""
    out: Dict[str, List[Path]] = {n: [] for n in scripts}
    for stem, path in sorted(results.items()):
        best = None
        data = loaded.get(stem)
        field = data.get("benchmark") if isinstance(data, dict) else None
        for n in sorted(scripts, key=len, reverse=True):  # longest name first: "idm_data_efficiency" before "idm"
            if field == n or stem in (n, f"bench_{n}") or stem.startswith((f"{n}_", f"bench_{n}_", f"{n}-", f"bench_{n}-")):
                best = n
                break
        if best is not None:
            out[best].append(path)
    return out


def build_summary(bench_dir: os.PathLike) -> str:
    """The Markdown of ``SUMMARY.md`` for the scripts and results found under ``bench_dir``."""
    bench_dir = Path(bench_dir)
    scripts = sorted(p.stem[len("bench_"):] for p in bench_dir.glob("bench_*.py"))
    res_dir = bench_dir / "results"
    # "NAME.partial.json" / ".NAME.tmp" are a benchmark still being written: not results yet
    results = {p.stem: p for p in sorted(res_dir.glob("*.json"))
               if not p.name.startswith(".") and not p.stem.endswith((".partial", ".tmp"))} if res_dir.is_dir() else {}
    loaded: Dict[str, Any] = {}
    errors: Dict[str, str] = {}
    for stem, p in results.items():
        try:
            loaded[stem] = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            errors[stem] = f"{type(e).__name__}: {e}"
    matched = _match_results(scripts, results, loaded)
    used = {p.stem for ps in matched.values() for p in ps}
    orphans = [s for s in results if s not in used]

    sections = question_sections(loaded)
    lines = ["# Benchmark summary", "",
             f"Generated by `vpt-rl bench-summary` on {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC "
             f"from `{res_dir}/*.json`. Each table answers one question and names the files, machine and date "
             "behind it; the commands are in `benchmarks/bench_*.sh`, the discussion of the numbers in "
             "`docs/performance.md` and the other manuals in `docs/`. Below the questions: which benchmarks "
             "have results, and every file's numbers.", ""]
    if sections:
        lines += [f"- [{q.title}](#{anchor(q.title)})" for q, _ in sections]
        lines += [f"- [Status of every benchmark](#{anchor('Status of every benchmark')})", ""]
        for _, qlines in sections:
            lines += qlines
    not_run = [n for n in scripts if not matched[n]]
    lines += ["## Status of every benchmark", ""]
    lines += ["| benchmark | section | status |", "|---|---|---|"]
    for n in scripts:
        status = "not run" if not matched[n] else ", ".join(
            f"`{p.name}`" + (" (unreadable)" if p.stem in errors else "") for p in matched[n])
        lines.append(f"| bench_{n} | {_section(n)} | {status} |")
    lines.append("")
    if not_run:
        lines += ["## Not run yet", ""]
        lines += [f"- bench_{n}: run `python benchmarks/bench_{n}.py`"
                  + (f" (or `benchmarks/bench_{n}.sh`)" if (bench_dir / f"bench_{n}.sh").is_file() else "")
                  for n in not_run]
        lines.append("")

    groups: Dict[str, List[Tuple[str, Path]]] = {}
    for n in scripts:
        for p in matched[n]:
            groups.setdefault(_section(n), []).append((n, p))
    for stem in orphans:
        groups.setdefault("Other", []).append((stem, results[stem]))
    if groups:
        lines += ["<details><summary>Every results file, as it stores its numbers</summary>", "",
                  "# Every results file", "", "The numbers of each file as it stores them (its `headline`, else its "
                  "`summary` or `results`, else every number), grouped by what they measure.", ""]
    for title in [t for t, _ in SECTIONS] + ["Other"]:
        if title not in groups:
            continue
        lines += [f"## {title}", ""]
        for name, p in groups[title]:
            lines.append(f"### {name} (`{p.name}`)")
            lines.append("")
            if p.stem in errors:
                lines += [f"Could not read it: {errors[p.stem]}", ""]
                continue
            data = loaded[p.stem]
            meta = [f"{k}: {fmt_value(data[k])}" for k in ("date", "machine", "device") if isinstance(data, dict)
                    and isinstance(data.get(k), (str, int, float))]
            if meta:
                lines += ["; ".join(meta), ""]
            rows = headline_rows(data)
            if not rows:
                lines += ["(no numbers in this file)", ""]
                continue
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {fmt_value(v)} |" for k, v in rows[:MAX_ROWS]]
            if len(rows) > MAX_ROWS:
                lines.append(f"| ... | {len(rows) - MAX_ROWS} more in `{p.name}` |")
            lines.append("")
    if groups:
        lines += ["</details>", ""]
    if not scripts and not results:
        lines += [f"No benchmark scripts or results found under {bench_dir}.", ""]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``vpt-rl bench-summary``."""
    p = argparse.ArgumentParser(prog="vpt-rl bench-summary", description=__doc__.split("\n\n")[0])
    p.add_argument("--bench-dir", default="benchmarks", help="folder with bench_*.py and results/ (default: benchmarks)")
    p.add_argument("--out", default=None, help="output Markdown (default: BENCH_DIR/SUMMARY.md; '-' prints the page)")
    args = p.parse_args(argv)
    bench_dir = Path(args.bench_dir)
    if not bench_dir.is_dir():
        print(f"vpt-rl bench-summary: --bench-dir {bench_dir} is not a folder (run it from the repository root "
              "or pass --bench-dir)", file=sys.stderr)
        return 2
    text = build_summary(bench_dir)
    if args.out == "-":
        print(text)
        return 0
    out = Path(args.out) if args.out else bench_dir / "SUMMARY.md"

    atomic_write_text(out, text)
    n_not_run = text.count("| not run |")
    print(f"wrote {out}" + (f" ({n_not_run} benchmark(s) not run yet)" if n_not_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
