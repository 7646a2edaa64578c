"""bench-summary shows tables of runs (lists of dicts) from results files that have no headline."""
from vpt_rl.commands.bench_summary import headline_rows


def test_rows_of_runs_are_labelled_by_their_text_fields():
    data = {"date": "2026-11-25", "rows": [{"case": "step1", "impl": "fast", "fps": 14.9, "ok": True},
                                           {"case": "chunk", "impl": "fast", "fps": 22.8}]}
    rows = dict(headline_rows(data))
    assert rows == {"rows.step1/fast.fps": 14.9, "rows.chunk/fast.fps": 22.8}


def test_headline_wins_over_everything_else():
    data = {"headline": {"speedup": 2.5}, "rows": [{"case": "a", "fps": 1.0}]}
    assert headline_rows(data) == [("speedup", 2.5)]
