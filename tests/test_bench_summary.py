"""vpt-rl bench-summary: one table per question, with units, machine and date; files being written are ignored."""
import json

from vpt_rl.commands import bench_summary as bs
from vpt_rl.commands.bench_summary import headline_rows


def test_rows_of_runs_are_labelled_by_their_text_fields():
    data = {"date": "2026-11-25", "rows": [{"case": "step1", "impl": "fast", "fps": 14.9, "ok": True},
                                           {"case": "chunk", "impl": "fast", "fps": 22.8}]}
    rows = dict(headline_rows(data))
    assert rows == {"rows.step1/fast.fps": 14.9, "rows.chunk/fast.fps": 22.8}


def test_headline_wins_over_everything_else():
    data = {"headline": {"speedup": 2.5}, "rows": [{"case": "a", "fps": 1.0}]}
    assert headline_rows(data) == [("speedup", 2.5)]


# ----------------------------------------------------------------------------------------------------------
# the page: one table per question
# ----------------------------------------------------------------------------------------------------------

INFERENCE = {
    "date": "2026-11-25", "machine": "test box, 2 cores",
    "official_reference": {"step1": {"ms_per_frame_cpu": 80.0}},
    "rows": [{"case": "step1", "impl": "baseline", "frames": 32, "ms_per_frame_cpu": 58.2, "peak_rss_delta_mb": 1.0,
              "max_abs_dlogp_vs_baseline": 0.0, "speedup_vs_baseline_cpu": 1.0},
             {"case": "step1", "impl": "fast", "frames": 32, "ms_per_frame_cpu": 56.8, "peak_rss_delta_mb": 2.0,
              "max_abs_dlogp_vs_baseline": 1.9e-6, "speedup_vs_baseline_cpu": 1.0246}],
}


def _agent(ret, sem, log, log_ci=None):
    out = {"mean_return": ret, "sem_return": sem, "episodes": 30, "max_ticks": 1500,
           "success": {"log": log, "planks": 0.0, "crafting_table": 0.0, "wooden_pickaxe": 0.0, "stone_pickaxe": 0.0}}
    if log_ci:
        out["success_ci"] = {"log": log_ci}
    return out


RL = {
    "benchmark": "rl_comparison", "date": "2026-12-02", "machine": "rl box",
    "headline": {"speed_target_met": None},
    "agents": {"foundation": _agent(0.0375, 0.016, 0.2, [0.095, 0.373]),
               "foundation+rl": _agent(0.0417, 0.017, 0.2),
               "random-init+rl": _agent(0.0, 0.0, 0.0)},
    "comparison": {"milestone": "stone_pickaxe", "pretrained_rate": 0.0, "random_rate": 0.0, "budget_steps": 6000,
                   "milestone_target_met": False, "random_init_learned": False},
}


def _sections(md: str) -> dict:
    """'## title' -> the text under it, up to the next '## '."""
    out, title = {}, None
    for line in md.split("\n"):
        if line.startswith("## "):
            title = line[3:]
            out[title] = []
        elif title is not None:
            out[title].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _table(section: str) -> list:
    """The first Markdown table of a section as a list of {header: cell} dicts."""
    lines = [ln for ln in section.split("\n") if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
    header, rows = cells[0], cells[2:]
    assert lines[1].startswith("|---")
    return [dict(zip(header, r)) for r in rows]


def _bench(tmp_path, results: dict, scripts=("inference", "rl_comparison", "minelite", "bc_data_scaling")):
    bench = tmp_path / "benchmarks"
    (bench / "results").mkdir(parents=True)
    for name in scripts:
        (bench / f"bench_{name}.py").write_text("")
    for fname, data in results.items():
        (bench / "results" / fname).write_text(data if isinstance(data, str) else json.dumps(data))
    return bench


def test_each_question_gets_a_table_with_units_machine_and_date(tmp_path):
    bc = {"date": "2026-12-02", "rows": [{"episodes": 8, "frames": 12000,
                                          "zero_shot": {"success": {"log": 0.5}, "mean_return": 0.1, "episodes": 30}}]}
    bench = _bench(tmp_path, {
        "inference.json": INFERENCE, "rl_comparison.json": RL,
        # a benchmark still being written: neither table nor status may use them
        "bc_data_scaling.partial.json": bc, "bc_data_scaling.tmp.json": bc, ".bc_data_scaling.json": bc,
    })
    assert bs.main(["--bench-dir", str(bench)]) == 0
    md = (bench / "SUMMARY.md").read_text()
    secs = _sections(md)

    inf = secs["How fast is inference vs the official code?"]
    (row,) = _table(inf)
    assert row["case"] == "1x policy, one frame per call, batch 1" and row["vpt-rl path"] == "vpt-rl (default)"
    assert row["official order (ms/frame, CPU)"] == "58.2" and row["vpt-rl (ms/frame, CPU)"] == "56.8"
    assert row["speed-up (CPU time)"] == "1.02x" and row["max \\|Δ log p\\|"] == "1.9e-06"
    assert row["peak memory, official order → vpt-rl (MB)"] == "1 → 2" and row["file"] == "`inference.json`"
    assert "80 ms CPU per 1x step" in inf  # the official code's own figure, with its unit
    assert "Machine: test box, 2 cores; date: 2026-11-25 (`inference.json`)" in inf

    rl = secs["Does pretraining help RL?"]
    rows = {r["agent"]: r for r in _table(rl)}
    assert list(rows) == ["foundation (zero-shot)", "foundation + RL (KL to it)", "random init + RL (entropy bonus)"]
    assert rows["foundation (zero-shot)"]["log (95% CI)"] == "20% (10-37)"
    assert rows["foundation + RL (KL to it)"]["mean return (± s.e.)"] == "0.042 ± 0.017"
    assert rows["random init + RL (entropy bonus)"]["log (95% CI)"] == "0%"
    assert rows["foundation (zero-shot)"]["episodes x ticks"] == "30 x 1500"
    assert "stone pickaxe 0% from the foundation model against 0% from random init, 6000 env steps" in rl
    assert "Machine: rl box; date: 2026-12-02 (`rl_comparison.json`)" in rl

    # absent results skip their question; files being written count as absent
    assert "How fast is MineLite vs MineRL/Crafter?" not in md
    assert "How much data does BC need?" not in md
    assert "partial" not in md and ".tmp" not in md
    assert "| bench_bc_data_scaling | Data efficiency | not run |" in md
    assert "| bench_minelite | Speed | not run |" in md
    # the questions come first (with links to them), then the status table, then every file's raw numbers
    assert md.index("- [How fast is inference vs the official code?](#how-fast-is-inference-vs-the-official-code)") \
        < md.index("## How fast is inference") < md.index("## Does pretraining help RL?") \
        < md.index("## Status of every benchmark") < md.index("# Every results file")


def test_unreadable_and_malformed_files_do_not_break_the_page(tmp_path, capsys):
    bench = _bench(tmp_path, {
        "inference.json": "{broken",                      # unreadable: no inference table, listed in the status
        "rl_comparison.json": {"date": "2026-12-02", "agents": "not a dict"},   # lacks the fields the table reads
        "minelite.json": {"date": "2026-11-25", "machine": {"platform": "Linux-x", "cpu_count": 2},
                          "rows": [{"env": "Crafter", "resolution": [128, 128], "policy": "random",
                                    "steps_per_s_cpu": 400.0, "steps_per_s_wall": 100.0},
                                   {"env": "MineLite", "resolution": [128, 128], "policy": "random",
                                    "steps_per_s_cpu": 1200.0, "steps_per_s_wall": 380.0}]},
    })
    assert bs.main(["--bench-dir", str(bench), "--out", "-"]) == 0  # '-' prints the page and writes nothing
    md = capsys.readouterr().out
    assert not (bench / "SUMMARY.md").exists()
    secs = _sections(md)
    assert "How fast is inference vs the official code?" not in secs
    assert "| bench_inference | Speed | `inference.json` (unreadable) |" in md
    assert "`rl_comparison.json` is left out of this table" in secs["Does pretraining help RL?"]
    rows = _table(secs["How fast is MineLite vs MineRL/Crafter?"])
    assert [r["env"] for r in rows] == ["Crafter", "MineLite"]
    assert rows[1]["steps/s (CPU time)"] == "1200" and rows[1]["vs Crafter (CPU time)"] == "3.00x"
    assert rows[1]["resolution"] == "128x128"
    assert "Machine: Linux-x, 2 CPUs; date: 2026-11-25 (`minelite.json`)" in secs["How fast is MineLite vs MineRL/Crafter?"]


def test_the_real_results_answer_every_question():
    # the checked-in results: every question has a table and the headline numbers are in it
    import pathlib

    bench = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
    md = bs.build_summary(bench)
    secs = _sections(md)
    for q in bs.QUESTIONS:
        assert q.title in secs, q.title
        assert _table(secs[q.title]), q.title
    inf = {(r["case"], r["vpt-rl path"]): r for r in _table(secs["How fast is inference vs the official code?"])}
    assert inf[("4x IDM, 128-frame window", "vpt-rl (default)")]["peak memory, official order → vpt-rl (MB)"] == "7213 → 256"
