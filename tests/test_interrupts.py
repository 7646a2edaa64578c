"""Ctrl-C and kill: real SIGINT / SIGTERM to training subprocesses save the step reached, print one line with the
way to resume and exit 130 / 143; every command gets one line instead of a traceback (vpt_rl.interrupt.run_main)."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vpt_rl.data.synthetic import write_synthetic_segment
from vpt_rl.interrupt import Interrupted, run_main, stop_requested

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
STOPPED = re.compile(r"^(vpt-rl train-\w+): stopped at step (\d+); checkpoint saved in (.+); resume with: (.+)$")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for i in range(4):
        write_synthetic_segment(root / f"seg{i}", 48, seed=30 + i, press_prob=0.2)
    return root


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
        time.sleep(0.05)


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


def test_sigint_to_train_bc_saves_the_step_reached_and_the_printed_command_resumes(data, tmp_path):
    out = tmp_path / "bc"
    proc = _start("vpt_rl.train.bc", [str(data), "--preset", "micro", "--batch-size", "2", "--seq-len", "8",
                                      "--total-steps", "400", "--save-every", "3", "--log-every", "1",
                                      "--device", "cpu", "--no-progress", "--out-dir", str(out)])
    _wait_for(out / "train_state.pt", proc)
    rc, err = _stop(proc, signal.SIGINT)
    assert rc == 130, err[-3000:]
    step, where, resume = _stopped_line(err, "vpt-rl train-bc")
    assert where == out.resolve() and 3 <= step < 400
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == step and [h["step"] for h in metrics["history"]] == list(range(1, step + 1))

    _resume("vpt_rl.train.bc", resume, step + 3)
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step + 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == list(range(1, step + 4)) and "final" in metrics


def test_sigterm_to_train_idm_saves_the_step_reached_and_the_printed_command_resumes(data, tmp_path):
    out = tmp_path / "idm"
    proc = _start("vpt_rl.train.idm", [str(data), "--preset", "micro_idm", "--batch-size", "1", "--total-steps", "400",
                                       "--save-every", "2", "--eval-every", "0", "--device", "cpu", "--no-progress",
                                       "--out-dir", str(out)])
    _wait_for(out / "train_state.pt", proc)
    rc, err = _stop(proc, signal.SIGTERM)
    assert rc == 143, err[-3000:]
    step, where, resume = _stopped_line(err, "vpt-rl train-idm")
    assert where == out.resolve() and 2 <= step < 400
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step
    assert json.loads((out / "metrics.json").read_text())["step"] == step

    _resume("vpt_rl.train.idm", resume, step + 2)
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == step + 2
    assert json.loads((out / "metrics.json").read_text())["final"]["n_frames"] > 0


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
    with stop_requested("saving") as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop and stop.signum == signal.SIGTERM  # the loop goes on to save
        with pytest.raises(Interrupted) as e:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert e.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before
    assert "SIGTERM received: saving" in capsys.readouterr().err
