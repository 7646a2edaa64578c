"""Ctrl-C and kill: real SIGINT / SIGTERM to training subprocesses save the step reached, print one line with the
way to resume and exit 130 / 143; a BC run SIGKILLed and resumed continues its data stream; every command gets one
line instead of a traceback (vpt_rl.interrupt.run_main)."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vpt_rl.train.idm as idm_mod
from vpt_rl.data.synthetic import write_synthetic_segment
from vpt_rl.interrupt import Interrupted, run_main, stop_requested
from vpt_rl.train.bc import Args as BCArgs
from vpt_rl.train.bc import run_bc
from vpt_rl.train.idm import Args as IDMArgs
from vpt_rl.train.idm import train_idm

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
STOPPED = re.compile(r"^(vpt-rl train-\w+): stopped at step (\d+); checkpoint saved in (.+); resume with: (.+)$")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four short learnable segments (two lanes of two in the BC runs: the stream wraps into later epochs)."""
    root = tmp_path_factory.mktemp("data")
    return [write_synthetic_segment(root / f"seg{i}", 48, seed=30 + i, press_prob=0.2) for i in range(4)][0].parent


def _start(module, args):
    return subprocess.Popen([sys.executable, "-m", module, *args], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc, timeout=300.0):
    """Wait until ``path`` exists (the run has saved once), failing if ``proc`` ends first."""
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path} appeared: {proc.communicate()[1][-3000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail(f"{path} did not appear in {timeout} s")
        time.sleep(0.02)


def _stop(proc, signum):
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _resume(module, line, total_steps):
    """Run the printed resume command (``vpt-rl train-x ...``) as ``python -m module ...`` to ``total_steps``."""
    words = shlex.split(line)
    assert words[:2] in (["vpt-rl", "train-bc"], ["vpt-rl", "train-idm"])
    res = subprocess.run([sys.executable, "-m", module, *words[2:], "--total-steps", str(total_steps)], env=ENV,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _stopped_line(err, prog):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err[-3000:]
    match = STOPPED.match(lines[-1])
    assert match and match.group(1) == prog, lines[-3:]
    # the last line and, before it, the notice printed when the signal arrived: nothing else
    assert len([ln for ln in lines if not ln.startswith("WARNING")]) <= 2, lines
    return int(match.group(2)), Path(match.group(3)), match.group(4)


BC_RUN = ["--preset", "micro", "--batch-size", "2", "--seq-len", "8", "--log-every", "1", "--device", "cpu",
          "--no-progress"]
IDM_RUN = ["--preset", "micro_idm", "--batch-size", "1", "--eval-every", "0", "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("module, prog, flags, signum, status", [
    ("vpt_rl.train.bc", "vpt-rl train-bc", BC_RUN, signal.SIGINT, 130),
    ("vpt_rl.train.idm", "vpt-rl train-idm", IDM_RUN, signal.SIGTERM, 143),
])
def test_a_signal_to_training_saves_the_step_reached_and_the_printed_command_resumes(data, tmp_path, module, prog,
                                                                                     flags, signum, status):
    out = tmp_path / "run"
    proc = _start(module, [str(data), *flags, "--total-steps", "400", "--save-every", "3", "--out-dir", str(out)])
    _wait_for(out / "train_state.pt", proc)
    rc, err = _stop(proc, signum)
    assert rc == status, err[-3000:]
    step, where, resume = _stopped_line(err, prog)
    assert where == out.resolve() and 3 <= step < 400  # past the first periodic save: saved on the signal
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == step
    if module.endswith("bc"):  # BC logs every step: nothing after the step saved
        assert [h["step"] for h in metrics["history"]] == list(range(1, step + 1))

    _resume(module, resume, step + 2)
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step + 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == step + 2 and "final" in metrics
    if module.endswith("bc"):
        assert [h["step"] for h in metrics["history"]] == list(range(1, step + 3))


def test_a_bc_run_killed_and_resumed_sees_the_same_batches_and_losses_as_an_uninterrupted_one(data, tmp_path):
    # constant lr, so that the killed run (longer, to be sure it is still running when killed) has the same schedule
    args = dict(data=[str(data)], preset="micro", batch_size=2, seq_len=8, lr=3e-3, warmup_steps=0, min_lr_ratio=1.0,
                log_every=1, device="cpu", progress=False, prior_init=False)
    run_bc(BCArgs(total_steps=12, save_every=0, out_dir=str(tmp_path / "full"), **args))
    out = tmp_path / "bc"
    proc = _start("vpt_rl.train.bc", [str(data), *BC_RUN, "--lr", "3e-3", "--warmup-steps", "0", "--min-lr-ratio", "1",
                                      "--no-prior-init", "--total-steps", "400", "--save-every", "4", "--out-dir",
                                      str(out)])
    _wait_for(out / "metrics.json", proc)  # written last: the first checkpoint is complete
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    saved = torch.load(out / "train_state.pt", weights_only=True)["step"]
    assert 4 <= saved < 12
    stale = out / ".train_state.pt.k3j9x_2a.tmp"  # what a kill during the optimizer-state write leaves
    stale.write_bytes(b"half an optimizer state")

    run_bc(BCArgs(total_steps=12, save_every=0, out_dir=str(out), **args))
    assert not stale.exists()
    full, resumed = [json.loads((o / "metrics.json").read_text())["history"] for o in (tmp_path / "full", out)]
    assert [h["step"] for h in resumed] == [h["step"] for h in full] == list(range(1, 13))
    # after the resume the stream goes on (same frames, same memory): the same losses, not those of steps 1, 2, ...
    np.testing.assert_allclose([h["loss"] for h in resumed], [h["loss"] for h in full], rtol=1e-4)
    assert not np.allclose([h["loss"] for h in resumed[saved:saved + 4]], [h["loss"] for h in full[:4]], rtol=1e-2)


def test_an_idm_run_killed_and_resumed_ends_with_the_weights_of_an_uninterrupted_one(data, tmp_path):
    flags = dict(preset="micro_idm", batch_size=1, seq_len=8, total_steps=24, mirror_aug=0.5, eval_every=0,
                 device="cpu", progress=False)
    full = train_idm(IDMArgs(data=[str(data)], save_every=0, out_dir=str(tmp_path / "full"), **flags))
    out = tmp_path / "idm"
    proc = _start("vpt_rl.train.idm", [str(data), *IDM_RUN, "--seq-len", "8", "--total-steps", "24", "--mirror-aug",
                                       "0.5", "--save-every", "4", "--out-dir", str(out)])
    _wait_for(out / "metrics.json", proc)  # written last: the first checkpoint is complete
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert 4 <= torch.load(out / "train_state.pt", weights_only=True)["step"] < 24

    resumed = train_idm(IDMArgs(data=[str(data)], save_every=4, out_dir=str(out), **flags))
    want, got = (torch.load(p.with_suffix(".weights"), weights_only=True) for p in (full, resumed))
    assert want.keys() == got.keys()
    for k in want:  # same windows, same mirror draws after the resume: the same training
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)


def test_training_called_from_python_saves_on_a_signal_and_leaves_the_resume_command_to_its_caller(data, tmp_path,
                                                                                                   monkeypatch):
    # what the pipeline sees: an Interrupted with the step and the folder; the pipeline resumes its own way
    real_loss, calls = idm_mod.idm_loss, []

    def loss_then_ctrl_c(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C in the middle of step 3
        return real_loss(*a, **k)

    monkeypatch.setattr(idm_mod, "idm_loss", loss_then_ctrl_c)
    out = tmp_path / "idm"
    with pytest.raises(Interrupted) as e:
        train_idm(IDMArgs(data=[str(data)], preset="micro_idm", batch_size=1, seq_len=8, total_steps=50, eval_every=0,
                          save_every=0, device="cpu", progress=False, out_dir=str(out)))
    assert str(e.value) == f"stopped at step 3; checkpoint saved in {out.resolve()}"
    assert e.value.signum == signal.SIGINT and e.value.checkpoint == str(out.resolve())
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_run_main_turns_a_real_signal_into_one_line_and_its_exit_status(capsys):
    def sends(signum):
        def main(argv):
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler raises before this ends
            return 0
        return main

    assert run_main(sends(signal.SIGINT), [], "vpt-rl x") == 130
    assert capsys.readouterr().err == "vpt-rl x: interrupted (SIGINT)\n"
    assert run_main(sends(signal.SIGTERM), [], "vpt-rl x") == 143
    assert capsys.readouterr().err == "vpt-rl x: interrupted by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    assert run_main(lambda argv: len(argv), ["a", "b"], "vpt-rl x") == 2
    with pytest.raises(ValueError):  # other errors are not hidden
        run_main(lambda argv: int("x"), [], "vpt-rl x")


def test_run_main_sees_an_interrupt_wrapped_by_a_compiled_function(capsys):
    def main(argv):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:  # what CPython does when numba code returns with the interrupt set
            raise SystemError("CPUDispatcher(render_world) returned a result with an exception set") from e

    assert run_main(main, [], "vpt-rl record") == 130
    assert capsys.readouterr().err == "vpt-rl record: interrupted (SIGINT)\n"


def test_stop_requested_turns_the_first_signal_into_a_flag_and_the_second_into_an_interrupt(capsys):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="after finishing the current work") as late:
        with stop_requested("saving") as stop:
            assert not stop
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop and stop.signum == signal.SIGTERM  # the loop goes on to save
            with pytest.raises(Interrupted) as e:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            assert e.value.signum == signal.SIGINT
    # a stop asked for and not acted on inside the block is not lost when the block ends
    assert late.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGINT) is before
    assert "SIGTERM received: saving" in capsys.readouterr().err
