"""Every pipeline knob, the stages, the backend and the seed are checked before the first stage runs, so a bad
value fails at once (naming the knob, its value and what is expected) instead of when its stage is reached."""
import dataclasses
import re

import pytest

from vpt_rl import pipeline as pl

CFG = pl.PRESETS["smoke"].replace(episodes=4, n_labelled=1, eval_episodes=4, ft_steps=0)


def run(out, calls, **kw):
    """run_pipeline with stand-in stages that only note that they ran."""
    fns = {name: (lambda ctx, name=name: calls.append(name) or {}) for name in pl.STAGE_ORDER}
    return pl.run_pipeline(out, kw.pop("cfg", CFG), stage_fns=fns, progress=False, **kw)


@pytest.mark.parametrize("knob,value,expected", [
    ("policy_preset", "nope", "policy_preset='nope': expected one of"),
    ("idm_preset", "nope", "idm_preset='nope': expected one of"),
    ("rl_n_steps", 0, "rl_n_steps=0: expected a count >= 1"),
    ("eval_episodes", 0, "eval_episodes=0: expected a count >= 1"),
    ("bc_batch", -2, "bc_batch=-2: expected a count >= 1"),
    ("idm_seq_len", 1, "idm_seq_len=1: expected 0 (the IDM preset's timesteps) or a window of >= 2 frames"),
    ("rl_lr", 0.0, "rl_lr=0.0: expected a learning rate > 0"),
    ("expert_epsilon", 1.5, "expert_epsilon=1.5: expected a probability in [0, 1]"),
    ("kl_coef", -0.1, "kl_coef=-0.1: expected a value >= 0"),
    ("kl_coef", float("nan"), "kl_coef=nan: expected a value >= 0"),
    ("resolution", 127, "resolution=127: expected an even number of pixels"),
    ("n_labelled", 4, "n_labelled=4, episodes=4: expected n_labelled < episodes"),
])
def test_every_bad_knob_is_refused_before_the_first_stage_runs(tmp_path, knob, value, expected):
    bad = dataclasses.replace(CFG, **{knob: value})  # built directly: replace() would refuse it already
    calls = []
    with pytest.raises(ValueError, match=re.escape(expected)):
        run(tmp_path, calls, cfg=bad)
    assert calls == [] and not (tmp_path / ".stages").exists()
    if knob != "n_labelled":  # as --set parses, single knobs are refused at once too
        with pytest.raises(ValueError, match=re.escape(expected)):
            CFG.replace(**{knob: value})


def test_bad_seed_backend_and_stages_are_refused_before_the_first_stage_runs(tmp_path):
    calls = []
    for kw, expected in ((dict(seed=-1), "seed -1: expected an integer >= 0"),
                         (dict(backend="jax"), "backend 'jax': expected one of sb3, sf"),
                         (dict(stages="record,nope"), "unknown stage")):
        with pytest.raises(ValueError, match=expected):
            run(tmp_path, calls, **kw)
    assert calls == []


def test_cli_refuses_a_bad_knob_with_exit_code_2_before_creating_anything(tmp_path, capsys):
    out = tmp_path / "run"
    for bad in ("policy_preset=nope", "rl_n_steps=0", "eval_episodes=0"):
        assert pl.main(["--preset", "smoke", "--out", str(out), "--set", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("vpt-rl pipeline: pipeline knob " + bad.replace("=nope", "='nope'")) and "expected" in err
    assert pl.main(["--preset", "smoke", "--out", str(out), "--set", "n_labelled=3"]) == 2  # smoke has 3 episodes
    assert "n_labelled < episodes" in capsys.readouterr().err
    assert pl.main(["--preset", "smoke", "--out", str(out), "--stages", "rl,nope"]) == 2
    assert not out.exists()
