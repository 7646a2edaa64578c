"""Commands refuse bad input before any work, with one ``vpt-rl <command>: error: ...`` line and exit code 2
(train-idm, train-bc and label also when their Args are built in Python), and the command line is consistent:
usage lines name the command, each default shows once, ``--threads``, ``vpt-rl --version``."""
import os
import re
import subprocess
import sys

import pytest
import torch

import vpt_rl
from vpt_rl import cli
from vpt_rl.commands import record
from vpt_rl.train import bc, idm, label
from vpt_rl.train.args import parse_args


@pytest.fixture()
def data(tmp_path):
    """A folder with one (empty) mp4: enough for the up-front path check."""
    (tmp_path / "seg.mp4").write_bytes(b"")
    return str(tmp_path)


@pytest.mark.parametrize("cls,kw,expected", [
    (idm.Args, dict(seq_len=0), "seq_len must be an integer >= 1, got 0"),
    (idm.Args, dict(total_steps=0), "total_steps must be an integer >= 1, got 0"),
    (idm.Args, dict(batch_size=-3), "batch_size must be an integer >= 1, got -3"),
    (idm.Args, dict(lr=float("nan")), "lr must be > 0, got nan"),
    (idm.Args, dict(val_fraction=1.0), "val_fraction must be a fraction in [0, 1), got 1.0"),
    (idm.Args, dict(preset="nope"), "preset 'nope' is not an IDM preset; expected one of 4x_idm, tiny_idm"),
    (idm.Args, dict(seed=-1), "seed must be >= 0, got -1"),
    (bc.Args, dict(seq_len=0), "seq_len must be an integer >= 1, got 0"),
    (bc.Args, dict(total_steps=0), "total_steps must be an integer >= 1, got 0"),
    (bc.Args, dict(log_every=0), "log_every must be an integer >= 1, got 0"),
    (bc.Args, dict(max_segment_frames=0), "max_segment_frames must be an integer >= 1, got 0"),
    (bc.Args, dict(min_label_confidence=1.5), "min_label_confidence must be a probability in [0, 1], got 1.5"),
    (bc.Args, dict(preset="nope"), "preset 'nope' is not a policy preset; expected one of"),
    (bc.Args, dict(data=[]), "args.data is empty"),
])
def test_training_args_refuse_values_out_of_range_naming_the_field(data, cls, kw, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        cls(**{"data": [data], **kw})


def test_label_args_refuse_a_zero_batch_a_one_frame_window_and_an_unknown_decoding():
    for kw, expected in ((dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
                         (dict(timesteps=1), "timesteps must be a window of >= 2 frames, got 1"),
                         (dict(camera="median"), "camera must be one of argmax, mean, got 'median'")):
        with pytest.raises(ValueError, match=re.escape(expected)):
            label.Args(**kw)
    assert label.Args(timesteps=None, batch_size=1).timesteps is None  # the defaults pass


@pytest.mark.parametrize("main,argv,expected", [
    (idm.main, ["DATA", "--seq-len", "0"], "vpt-rl train-idm: error: seq_len must be an integer >= 1, got 0"),
    (idm.main, ["DATA", "--total-steps", "0"], "vpt-rl train-idm: error: total_steps must be an integer >= 1, got 0"),
    (idm.main, ["/no/such/folder"], "vpt-rl train-idm: error: data: no such file or folder: '/no/such/folder'"),
    (idm.main, ["DATA", "--threads", "-1"], "vpt-rl train-idm: error: threads must be >= 1"),
    (bc.main, ["DATA", "--seq-len", "0"], "vpt-rl train-bc: error: seq_len must be an integer >= 1, got 0"),
    (bc.main, ["DATA", "--init-model", "/no/such.model"], "vpt-rl train-bc: error: init_model: no such file"),
    (bc.main, ["EMPTY"], "vpt-rl train-bc: error: data: no .mp4 video under the folder"),
    (label.main, ["DATA", "--idm-model", "m.model", "--batch-size", "0"],
     "vpt-rl label: error: batch_size must be an integer >= 1, got 0"),
    (label.main, ["DATA", "--idm-model", "/no/such.model"], "vpt-rl label: error: idm_model: no such file"),
])
def test_bad_input_on_the_command_line_is_one_line_and_exit_code_2(data, tmp_path, capsys, main, argv, expected):
    (tmp_path / "empty").mkdir()
    argv = [data if a == "DATA" else str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_bad_input_through_the_vpt_rl_command_prints_no_traceback(data):
    proc = subprocess.run([sys.executable, "-m", "vpt_rl.cli", "train-idm", data, "--seq-len", "0"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "vpt-rl train-idm: error: seq_len must be an integer >= 1, got 0\n"


@pytest.mark.parametrize("main,prog", [(idm.main, "vpt-rl train-idm"), (bc.main, "vpt-rl train-bc"),
                                       (label.main, "vpt-rl label")])
def test_usage_line_names_the_command_and_each_default_shows_once(capsys, main, prog):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} [-h] [--threads THREADS]")
    flat = " ".join(out.split())
    assert "(default: None)" not in flat and "(default: [])" not in flat
    assert not re.search(r"\(default[^()]*(\([^()]*\))?[^()]*\) \(default", flat), flat
    assert "(default: 1000)" in flat if main is not label.main else "(default: argmax)" in flat


def test_threads_sets_torch_intra_op_threads_only_when_given(data):
    before = torch.get_num_threads()
    want = 2 if before != 2 else 3
    try:
        parse_args(idm.Args, [data])
        assert torch.get_num_threads() == before  # torch's own choice is kept without --threads
        parse_args(idm.Args, [data, "--threads", str(want)])
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flag,value,expected", [
    ("--max-ticks", "0", "vpt-rl record: error: --max-ticks must be a tick limit >= 1, got 0"),
    ("--segment-ticks", "0", "vpt-rl record: error: --segment-ticks must be in 1..6000 (5 minutes), got 0"),
])
def test_record_refuses_a_zero_tick_limit_before_recording(tmp_path, capsys, flag, value, expected):
    out = tmp_path / "rec"
    with pytest.raises(SystemExit) as exit_:
        record.main(["--episodes", "1", "--out", str(out), flag, value, "--no-progress"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == expected
    assert not out.exists()


def test_version_prints_the_package_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"vpt-rl {vpt_rl.__version__}\n"
    assert cli.main(["-V"]) == 0 and capsys.readouterr().out.startswith("vpt-rl ")
