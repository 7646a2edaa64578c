"""Resuming SB3 fine-tuning (policies/sb3/resume.py, finetune_sb3): a SIGKILLed run resumes with the same
updates and KL schedule as an uninterrupted one, new settings are refused by name, VPTPPO.load follows the
env count, and a crafted checkpoint.zip is refused without running anything."""
import base64
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from conftest import FIXTURES, REPO, CueEnv
from vpt_rl.cli import main as cli_main
from vpt_rl.policies.sb3 import VPTPPO, VPTPolicy, finetune_sb3
from vpt_rl.policies.sb3.finetune import _run_settings, file_identity
from vpt_rl.policies.sb3.resume import RESUME_ENTRY, ResumeError, load_checkpoint, read_resume_record

# 2 envs x 4 steps = 8 env steps per rollout; 32 steps = 4 PPO iterations of 2 epochs each
RUN = dict(preset="micro", kl_coef=0.2, n_envs=2, n_steps=4, seed=0, ppo_kwargs=dict(n_epochs=2), max_steps=5,
           world_size=(16, 24, 16))
ENV = "vpt_rl/MineLite-v0"
CLI = ["finetune", "--env", ENV, "--preset", "micro", "--kl-coef", "0.2", "--n-envs", "2", "--n-steps", "4",
       "--n-epochs", "2", "--env-kwargs", '{"max_steps": 5, "world_size": [16, 24, 16]}']

# the child runs the same fine-tuning and stops dead mid-rollout at step 20 (a checkpoint was taken at the
# rollout boundary at step 16), where the test SIGKILLs it
CHILD = """
import sys, time
from stable_baselines3.common.callbacks import BaseCallback
from vpt_rl.policies.sb3 import finetune_sb3

class StopAt(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == 20:
            open(sys.argv[2], "w").close()
            time.sleep(600)
        return True

finetune_sb3("vpt_rl/MineLite-v0", 32, out_dir=sys.argv[1], callbacks=[StopAt()], preset="micro", kl_coef=0.2,
             n_envs=2, n_steps=4, seed=0, ppo_kwargs=dict(n_epochs=2), max_steps=5, world_size=(16, 24, 16))
"""


def _progress(zip_path):
    rec = read_resume_record(str(zip_path))["progress"]
    algo = load_checkpoint(str(zip_path), DummyVecEnv([lambda: Monitor(CueEnv())]))
    adam_steps = algo.policy.optimizer.state_dict()["state"][0]["step"]
    return rec["num_timesteps"], rec["_n_iterations"], rec["_n_updates"], int(adam_steps), rec["kl_coef"]


def test_sigkilled_run_resumes_with_the_same_updates_and_kl_coefficient(tmp_path, capsys):
    whole = finetune_sb3(ENV, 32, out_dir=str(tmp_path / "whole"), **RUN)
    expected = _progress(whole)
    assert expected[:4] == (32, 4, 8, 8)  # 4 iterations x 2 epochs, one optimizer step each (whole-rollout batch)
    assert expected[4] == pytest.approx(0.2 * 0.9995**4)

    out, marker = tmp_path / "killed", tmp_path / "at_step_20"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(marker)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not marker.exists():
            assert proc.poll() is None and time.time() < deadline, "the child ended before step 20"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the checkpoint holds 16 steps and the 2 updates made on them: nothing half-done
    assert _progress(out / "checkpoint.zip")[:4] == (16, 2, 4, 4)
    capsys.readouterr()
    resumed = finetune_sb3(ENV, 32, out_dir=str(out), **RUN)
    assert "resuming run" in capsys.readouterr().out
    got = _progress(resumed)
    assert got[:4] == expected[:4] and got[4] == pytest.approx(expected[4], rel=1e-12)


def test_resume_says_so_and_refuses_other_settings_by_name(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli_main(CLI + ["--steps", "8", "--out-dir", out]) == 0
    capsys.readouterr()
    # new kl_coef and lr: refused, each named with the run's and the new value, and the way out
    assert cli_main(CLI[:5] + ["--kl-coef", "0", "--lr", "1e-3"] + CLI[7:] + ["--steps", "16", "--out-dir", out]) == 2
    err = capsys.readouterr().err
    assert "kl_coef: run 0.2, now 0.0" in err and "learning_rate: run 0.0003, now 0.001" in err
    assert "another --out-dir" in err and "Traceback" not in err
    # another env count: the same one-line refusal, not a traceback
    cli_n = [a if a != "2" else "3" for a in CLI]
    assert cli_main(cli_n + ["--steps", "16", "--out-dir", out]) == 2
    assert "n_envs: run 2, now 3" in capsys.readouterr().err
    assert read_resume_record(os.path.join(out, "checkpoint.zip"))["progress"]["num_timesteps"] == 8  # untouched
    # the same settings (and more steps) resume, saying from where and with what
    assert cli_main(CLI + ["--steps", "16", "--out-dir", out]) == 0
    said = capsys.readouterr().out
    assert f"resuming run {out} at step 8 of 16" in said and "kl_coef=0.2" in said and "n_envs=2" in said
    assert read_resume_record(os.path.join(out, "final.zip"))["progress"]["num_timesteps"] == 16


def _venv(n):
    return DummyVecEnv([lambda i=i: Monitor(CueEnv(seed=i)) for i in range(n)])


def test_load_onto_another_env_count_follows_it_with_the_batch_and_buffer(tmp_path):
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=6, policy_kwargs=dict(preset="micro"), seed=0)
    model.learn(12)
    model.save(tmp_path / "ppo.zip")
    for n in (1, 4):
        loaded = VPTPPO.load(tmp_path / "ppo.zip", env=_venv(n))
        assert loaded.n_envs == n and loaded.batch_size == 6 * n and loaded.rollout_buffer.n_envs == n
        loaded.learn(6 * n, reset_num_timesteps=False)
        assert loaded.num_timesteps == 12 + 6 * n
    # an explicit batch stays as given where it fits, and an error names it where it does not
    fixed = VPTPPO(VPTPolicy, _venv(2), n_steps=6, batch_size=12, policy_kwargs=dict(preset="micro"), seed=0)
    fixed.save(tmp_path / "fixed.zip")
    assert VPTPPO.load(tmp_path / "fixed.zip", env=_venv(4)).batch_size == 12
    with pytest.raises(ValueError, match=r"batch_size=12 .* n_steps \* n_envs = 6 \* 1 = 6"):
        VPTPPO.load(tmp_path / "fixed.zip", env=_venv(1))
    assert VPTPPO.load(tmp_path / "fixed.zip", env=_venv(1), custom_objects={"batch_size": 6}).batch_size == 6


class _Evil:
    """Unpickling this writes the marker file: what a hostile zip would do with os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _replace_entry(zip_path, name, data):
    with zipfile.ZipFile(zip_path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries[name] = data
    with zipfile.ZipFile(zip_path, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)


def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(CLI + ["--steps", "8", "--out-dir", str(out)]) == 0
    ckpt, marker = out / "checkpoint.zip", tmp_path / "ran"
    good = ckpt.read_bytes()
    again = CLI + ["--steps", "16", "--out-dir", str(out)]

    # 1. a state dict whose pickle calls exec: torch.load(weights_only=True) refuses it
    _replace_entry(ckpt, "policy.pth", pickle.dumps(_Evil(marker)))
    capsys.readouterr()
    assert cli_main(again) == 2
    assert "refused policy.pth" in capsys.readouterr().err and not marker.exists()

    # 2. SB3's own cloudpickled "data" made hostile, without our JSON: refused unread
    ckpt.write_bytes(good)
    with zipfile.ZipFile(ckpt) as zf:
        data = json.loads(zf.read("data"))
    data["policy_class"] = {":type:": "<class 'type'>", ":serialized:": base64.b64encode(pickle.dumps(_Evil(marker))).decode()}
    _replace_entry(ckpt, "data", json.dumps(data).encode())
    with zipfile.ZipFile(ckpt) as zf:
        entries = {n: zf.read(n) for n in zf.namelist() if n != RESUME_ENTRY}
    with zipfile.ZipFile(ckpt, "w") as zf:
        for n, d in entries.items():
            zf.writestr(n, d)
    assert cli_main(again) == 2
    err = capsys.readouterr().err
    assert f"has no {RESUME_ENTRY}" in err and "would unpickle" in err and not marker.exists()
    # what SB3's load trusts (docs/rl.md): the same file does run the code there
    with pytest.raises(Exception):
        VPTPPO.load(ckpt)
    assert marker.read_text() == "ran"
    marker.unlink()

    # 3. our JSON naming something other than a torch.optim optimizer: refused before anything is built
    ckpt.write_bytes(good)
    with zipfile.ZipFile(ckpt) as zf:
        rec = json.loads(zf.read(RESUME_ENTRY))
    rec["policy"]["optimizer_class"] = "system"
    _replace_entry(ckpt, RESUME_ENTRY, json.dumps(rec).encode())
    with pytest.raises(ResumeError, match="'system' is not a torch.optim optimizer"):
        load_checkpoint(str(ckpt), _venv(1))

    # the untouched checkpoint still resumes
    ckpt.write_bytes(good)
    assert cli_main(again) == 0 and not marker.exists()


def test_finetune_model_without_weights_takes_the_pair_or_fails_before_anything(fixtures_dir, tmp_path, capsys):
    import shutil

    from vpt_rl.checkpoint import CheckpointError

    model, out = tmp_path / "start.model", tmp_path / "run"
    shutil.copy(fixtures_dir / "policy.model", model)
    with pytest.raises(CheckpointError, match="start.weights"):
        finetune_sb3(ENV, 8, model=str(model), out_dir=str(out), n_envs=2, n_steps=4)
    assert not out.exists()
    cli = ["finetune", "--env", ENV, "--steps", "8", "--model", str(model), "--n-envs", "2", "--n-steps", "4",
           "--n-epochs", "1", "--out-dir", str(out), "--env-kwargs", '{"max_steps": 5, "world_size": [16, 24, 16]}']
    assert cli_main(cli) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "start.weights") in err and "--preset" in err and "Traceback" not in err
    # with the pair, a pretrained start and its defaults (KL 0.2, lr 2e-5, no entropy bonus)
    shutil.copy(fixtures_dir / "policy.weights", tmp_path / "start.weights")
    assert cli_main(cli) == 0
    run = read_resume_record(str(out / "final.zip"))["run"]
    assert run["weights"] == file_identity(tmp_path / "start.weights")  # the weights beside the .model
    assert (run["kl_coef"], run["learning_rate"], run["ent_coef"]) == (0.2, 2e-5, 0.0)


def test_resume_settings_know_the_starting_files_by_content_not_path(tmp_path, monkeypatch):
    # a pipeline folder that was moved (or reached as ./x, or through a symlink) must still resume; other
    # weights under the same name must not
    first, moved = tmp_path / "a" / "bc", tmp_path / "b" / "bc"
    first.mkdir(parents=True)
    for name in ("policy.model", "policy.weights"):
        shutil.copy(FIXTURES / name, first / name)
    shutil.copytree(first, moved)
    kw = dict(env_id="vpt_rl/MineLite-v0", env_kwargs={}, preset=None, n_envs=1, algo_kwargs={}, policy_kwargs={})
    before = _run_settings(model=first / "policy.model", weights=first / "policy.weights", **kw)
    monkeypatch.chdir(tmp_path / "b")
    after = _run_settings(model="bc/policy.model", weights="./bc/policy.weights", **kw)
    assert before == after and "policy.weights (" in before["weights"]
    (moved / "policy.weights").write_bytes(b"other" + (first / "policy.weights").read_bytes()[5:])
    assert _run_settings(model=moved / "policy.model", weights=moved / "policy.weights", **kw)["weights"] != before["weights"]
