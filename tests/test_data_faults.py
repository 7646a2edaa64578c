"""Data in and out under faults: cut videos, malformed contractor lines, reruns with other settings, and
video at other frame rates are never dropped or mixed silently (issue 15, items 5, 6, 7 and 13)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from vpt_rl.data.contractor import (
    MAX_CAMERA_DEGREES_PER_LINE,
    DataWarning,
    convert_lines,
    iter_segment,
    iter_video_frames,
    load_actions,
)
from vpt_rl.data.record import SETTINGS_FILE, RecordSettingsError, record_dataset
from vpt_rl.data.recorder import ContractorRecorder, segment_complete
from vpt_rl.data.video import video_fps, write_video
from vpt_rl.train import label as label_mod

REPO = Path(__file__).resolve().parents[1]


def _data_warnings(fn):
    """Run ``fn()``; return its result and the DataWarning messages it gave."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(w.message) for w in rec if issubclass(w.category, DataWarning)]


def _noisy_frames(n, size=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _cut(path: Path, fraction: float) -> int:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return len(data)


# ---------------------------------------------------------------------------------------------------
# Item 5: cut videos


def _recorded_segment(folder: Path, n: int = 40) -> Path:
    with ContractorRecorder(folder, "seg", verify=False) as rec:
        for t, frame in enumerate(_noisy_frames(n)):
            rec.add(frame, {"forward": 1, "camera": [0.0, 1.5]}, {"tick": t})
    return folder / "seg.mp4"


def test_recorder_mp4_is_fast_start_and_a_cut_copy_still_gives_its_frames(tmp_path):
    mp4 = _recorded_segment(tmp_path, 40)
    head = mp4.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")  # the index comes before the media data
    _cut(mp4, 0.6)
    steps, msgs = _data_warnings(lambda: list(iter_segment(mp4, skip_null=False)))
    assert 0 < len(steps) < 40
    assert [s.index for s in steps] == list(range(len(steps)))
    (msg,) = [m for m in msgs if "recovered" in m]
    assert f"recovered {len(steps)} of 40 expected frames" in msg and "seg.mp4" in msg
    assert all(s.env_action["forward"] == 1 for s in steps)


def test_cut_video_alone_warns_with_the_frame_count_of_its_header(tmp_path):
    mp4 = write_video(tmp_path / "v.mp4", _noisy_frames(30, seed=1))
    _cut(mp4, 0.6)
    frames, msgs = _data_warnings(lambda: list(iter_video_frames(mp4)))
    assert 0 < len(frames) < 30
    assert any(f"recovered {len(frames)} of 30 expected frames" in m for m in msgs)
    whole = write_video(tmp_path / "w.mp4", _noisy_frames(30, seed=1))
    frames, msgs = _data_warnings(lambda: list(iter_video_frames(whole)))
    assert len(frames) == 30 and msgs == []  # an intact file: no warning


def test_label_of_a_cut_video_labels_the_recovered_frames_and_says_so(tmp_path, fixtures_dir):
    mp4 = write_video(tmp_path / "v.mp4", _noisy_frames(20, size=128, seed=2))
    _cut(mp4, 0.6)
    written, msgs = _data_warnings(lambda: label_mod.label_videos(
        [tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", batch_size=2, device="cpu",
        progress=False))
    n = len(load_actions(tmp_path / "v.jsonl"))
    assert written == [tmp_path / "v.jsonl"] and 0 < n < 20
    assert any(f"recovered {n} of 20 expected frames" in m for m in msgs)


# ---------------------------------------------------------------------------------------------------
# Item 6: malformed or implausible contractor lines


def _write_lines(path: Path, lines) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_malformed_lines_warn_with_file_line_and_fault_and_keep_the_presses_they_record(tmp_path):
    w, space = "key.keyboard.w", "key.keyboard.space"
    jsonl = _write_lines(tmp_path / "bad.jsonl", [
        {"mouse": {"dx": 0.0, "dy": 0.0, "buttons": []}, "keyboard": {"keys": [w]}},  # 1: fine
        {"keyboard": {"keys": [w]}},  # 2: no mouse
        {"mouse": {"dx": 10.0, "dy": 0.0, "buttons": [0]}},  # 3: no keyboard
        {"mouse": {"dx": 0.0, "dy": 0.0, "buttons": [1]}, "keyboard": {"keys": None}},  # 4: keys null
        {"mouse": {"dx": 0.0, "dy": 1e9, "buttons": []}, "keyboard": {"keys": [space]}},  # 5: implausible turn
        '{"mouse": {"dx": NaN, "dy": -20.0, "buttons": []}, "keyboard": {"keys": ["key.keyboard.w"]}}',  # 6
        {"mouse": {"dx": "fast", "dy": 0.0, "buttons": None}, "keyboard": {"keys": [space]}},  # 7
        {"mouse": {"dx": 0.0, "dy": 0.0, "buttons": [0]}, "keyboard": {"keys": w}},  # 8: keys not a list
        {"mouse": {"dx": 0.0, "dy": 0.0, "buttons": []}, "keyboard": {"keys": [w]}, "hotbar": "3"},  # 9
    ])
    actions, msgs = _data_warnings(lambda: load_actions(jsonl))
    assert len(actions) == 9
    expected = {
        2: "no 'mouse' object", 3: "no 'keyboard' object", 4: "keyboard.keys is null",
        5: "mouse.dy=1000000000.0 counts", 6: "mouse.dx=nan is not finite", 7: "mouse.dx='fast' is not a number",
        8: "keyboard.keys='key.keyboard.w' is not a list", 9: "hotbar='3' is not an int in 0..8",
    }
    for line, what in expected.items():
        assert any(m.startswith(f"{jsonl}:{line}: ") and what in m for m in msgs), (line, msgs)
    assert not any(m.startswith(f"{jsonl}:1:") for m in msgs)
    assert any(f"{jsonl}:7: mouse.buttons is null" in m for m in msgs)
    act = [a for a, _ in actions]
    assert act[1]["forward"] == 1 and act[1]["camera"].tolist() == [0.0, 0.0]
    assert act[2]["attack"] == 1 and act[2]["camera"].tolist() == [0.0, 1.5]
    assert act[3]["use"] == 1
    assert act[4]["jump"] == 1 and act[4]["camera"].tolist() == [MAX_CAMERA_DEGREES_PER_LINE, 0.0] == [180.0, 0.0]
    assert act[5]["forward"] == 1 and act[5]["camera"].tolist() == [-3.0, 0.0]  # the finite axis is kept
    assert act[6]["jump"] == 1 and act[6]["camera"].tolist() == [0.0, 0.0]
    assert act[7]["attack"] == 1 and act[7]["forward"] == 0
    assert act[8]["forward"] == 1 and not any(act[8][f"hotbar.{k}"] for k in range(1, 10))
    assert [null for _, null in actions] == [False] * 9  # no press was dropped


def test_official_fixture_and_recorder_lines_read_without_a_warning(tmp_path, fixtures_dir):
    _, msgs = _data_warnings(lambda: load_actions(fixtures_dir / "contractor.jsonl"))
    assert msgs == []
    mp4 = _recorded_segment(tmp_path, 6)
    steps, msgs = _data_warnings(lambda: list(iter_segment(mp4, skip_null=False)))
    assert len(steps) == 6 and msgs == []


# ---------------------------------------------------------------------------------------------------
# Item 7: reruns of record into the same folder, and label's count


def test_record_rerun_with_other_settings_is_refused_naming_each_and_the_same_settings_resume(tmp_path):
    out = tmp_path / "rec"
    kw = dict(seed=4, max_ticks=12, alias="lib", progress=False, world_size=16)
    record_dataset(out, 1, **kw)
    stored = json.loads((out / SETTINGS_FILE).read_text())["aliases"]["lib"]
    assert stored["max_ticks"] == 12 and stored["resolution"] == [128, 128] and stored["env"] == {"world_size": 16}
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(RecordSettingsError) as err:
        record_dataset(out, 2, **{**kw, "max_ticks": 20, "resolution": (64, 64), "epsilon": 0.1})
    msg = str(err.value)
    for change in ("max_ticks 12 -> 20", "resolution 128x128 -> 64x64", "epsilon 0.0 -> 0.1", "--out", "delete"):
        assert change in msg, msg
    assert "world_size" not in msg and "seed" not in msg  # only what differs
    assert sorted(p.name for p in out.iterdir()) == before  # nothing recorded
    again = record_dataset(out, 2, **kw)
    assert (again.recorded, again.skipped) == (1, 1)
    other = record_dataset(out, 1, **{**kw, "alias": "other", "max_ticks": 8})  # another alias: its own recording
    assert other.recorded == 1 and set(json.loads((out / SETTINGS_FILE).read_text())["aliases"]) == {"lib", "other"}


def test_a_folder_recorded_before_record_json_is_checked_against_its_segment_options(tmp_path):
    out = tmp_path / "rec"
    kw = dict(seed=2, max_ticks=8, alias="old", progress=False, world_size=16)
    record_dataset(out, 1, **kw, camera_noise=0.5)
    (out / SETTINGS_FILE).unlink()  # as recorded by an older version
    with pytest.raises(RecordSettingsError, match=r"camera_noise 0.5 -> 0.0"):
        record_dataset(out, 2, **kw)
    assert record_dataset(out, 2, **kw, camera_noise=0.5).skipped == 1
    assert json.loads((out / SETTINGS_FILE).read_text())["aliases"]["old"]["camera_noise"] == 0.5


def test_settings_that_recorded_nothing_are_not_kept_so_a_corrected_rerun_is_accepted(tmp_path):
    out = tmp_path / "rec"
    kw = dict(seed=1, max_ticks=8, alias="lib", progress=False, world_size=16)
    with pytest.raises(ValueError, match="epsilon"):
        record_dataset(out, 1, **kw, epsilon=2.0)  # refused by the expert when the first episode starts
    assert json.loads((out / SETTINGS_FILE).read_text())["aliases"] == {}
    assert record_dataset(out, 1, **kw, epsilon=0.5).recorded == 1


def _subprocess_env():
    """This checkout first on the path (subprocesses run it, not the installed copy), one thread."""
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


def _sigkill_once(cmd, env, done_file: Path) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``done_file`` appears, and check that it was killed then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not done_file.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert done_file.is_file() and proc.returncode == -signal.SIGKILL


def _record_cmd(out, *extra):
    return [sys.executable, "-m", "vpt_rl.commands.record", "--out", str(out), "--seed", "3",
            "--world-size", "16", "--no-progress", *extra]


def test_record_killed_then_rerun_refuses_other_settings_and_resumes_with_the_same(tmp_path):
    env = _subprocess_env()
    out = tmp_path / "rec"
    _sigkill_once(_record_cmd(out, "--episodes", "3", "--max-ticks", "150"), env,
                  out / "minelite-expert-s0003-e0000-000.jsonl")
    refused = subprocess.run(_record_cmd(out, "--episodes", "3", "--max-ticks", "100"), env=env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "max_ticks 150 -> 100" in refused.stderr and "Traceback" not in refused.stderr
    done = subprocess.run(_record_cmd(out, "--episodes", "3", "--max-ticks", "150"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    recorded, skipped = map(int, re.search(r"recorded (\d+) episode\(s\), skipped (\d+)", done.stdout).groups())
    assert skipped >= 1 and recorded + skipped == 3
    assert all(segment_complete(out, f"minelite-expert-s{3 + i:04d}-e{i:04d}-000") for i in range(3))
    assert not list(out.glob("*.partial"))


def test_label_says_how_many_it_labelled_and_how_many_it_skipped(tmp_path, fixtures_dir, capsys):
    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", _noisy_frames(10, size=128, seed=i))
    argv = ["--model", str(fixtures_dir / "idm.model"), "--videos", str(tmp_path), "--batch-size", "2",
            "--device", "cpu", "--no-progress"]
    assert label_mod.main(argv) == 0
    assert "labelled 2 video(s), skipped 0 already labelled" in capsys.readouterr().out
    assert label_mod.main(argv) == 0
    assert "labelled 0 video(s), skipped 2 already labelled" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------
# Item 13: frame rate


def test_label_refuses_a_30_fps_video_naming_file_rate_and_fix_and_labels_the_20_fps_one(tmp_path, fixtures_dir,
                                                                                         capsys):
    write_video(tmp_path / "a20.mp4", _noisy_frames(10, size=128, seed=3), fps=20)
    write_video(tmp_path / "b30.mp4", _noisy_frames(15, size=128, seed=4), fps=30)
    assert (video_fps(tmp_path / "a20.mp4"), video_fps(tmp_path / "b30.mp4")) == (20.0, 30.0)
    argv = ["--model", str(fixtures_dir / "idm.model"), "--videos", str(tmp_path), "--batch-size", "2",
            "--device", "cpu", "--no-progress"]
    rc, msgs = _data_warnings(lambda: label_mod.main(argv))
    assert rc == 1
    (msg,) = [m for m in msgs if "fps" in m]
    assert "b30.mp4: 30 fps" in msg and "20 fps" in msg and "ffmpeg -i b30.mp4 -r 20" in msg
    assert not (tmp_path / "b30.jsonl").exists()
    assert len(load_actions(tmp_path / "a20.jsonl")) == 10
    out = capsys.readouterr().out
    assert "labelled 1 video(s), skipped 0 already labelled, refused 1: b30.mp4 (30 fps, not 20)" in out


def test_label_killed_then_rerun_skips_the_finished_videos_and_gives_the_same_labels(tmp_path, fixtures_dir):
    env = _subprocess_env()
    n = 3
    for folder in ("killed", "whole"):
        for i in range(n):
            write_video(tmp_path / folder / f"v{i}.mp4", _noisy_frames(120, size=128, seed=i))
    argv = [str(fixtures_dir / "idm.model"), "--batch-size", "4", "--device", "cpu", "--no-progress"]
    cmd = [sys.executable, "-m", "vpt_rl.train.label", str(tmp_path / "killed"), "--idm-model", *argv]
    _sigkill_once(cmd, env, tmp_path / "killed" / "v0.label.json")
    assert not (tmp_path / "killed" / f"v{n - 1}.label.json").exists()
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    labelled, skipped = map(int, re.search(r"labelled (\d) video\(s\), skipped (\d)", resumed.stdout).groups())
    assert skipped >= 1 and labelled + skipped == n
    assert label_mod.main([str(tmp_path / "whole"), "--idm-model", *argv]) == 0  # never killed
    for i in range(n):  # the resumed labels are bit-identical to those of the run that was never killed
        assert (tmp_path / "killed" / f"v{i}.jsonl").read_bytes() == (tmp_path / "whole" / f"v{i}.jsonl").read_bytes()


def test_numbers_json_can_hold_but_floats_cannot_warn_instead_of_crashing(tmp_path):
    # valid JSON that used to kill the reader (and the training run with it): a 400-digit integer overflows a
    # float, NaN cursor coordinates on a GUI frame broke the cursor drawing, a huge idm_confidence overflowed
    huge = "1" * 400
    jsonl = tmp_path / "odd.jsonl"
    jsonl.write_text(
        '{"mouse": {"dx": ' + huge + ', "dy": 3.0, "buttons": []}, "keyboard": {"keys": ["key.keyboard.w"]}}\n'
        '{"mouse": {"dx": 0, "dy": 0, "x": NaN, "y": Infinity, "buttons": []}, "keyboard": {"keys": []},'
        ' "isGuiOpen": true}\n'
        '{"mouse": {"dx": 0, "dy": 0, "buttons": []}, "keyboard": {"keys": []}, "idm_confidence": ' + huge + '}\n')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = convert_lines([json.loads(line) for line in jsonl.read_text().splitlines()], str(jsonl))
    messages = [str(w.message) for w in caught]
    assert len(infos) == 3
    assert infos[0].env_action["forward"] == 1 and infos[0].env_action["camera"][1] == 0.0  # dx read as 0
    assert infos[0].env_action["camera"][0] == pytest.approx(3.0 * 0.15)  # dy kept
    assert infos[1].gui_open and infos[1].mouse_xy == (0.0, 0.0) and not infos[1].broken
    assert infos[2].broken  # the step is skipped, with a warning naming it
    assert any(m.startswith(f"{jsonl}:1: mouse.dx=111") and "not finite" in m for m in messages)
    assert any(m.startswith(f"{jsonl}:2: mouse.x=nan") for m in messages)
    assert any(m.startswith(f"{jsonl}:2: mouse.y=inf") for m in messages)
    assert any(m.startswith(f"{jsonl}:3: bad contractor line") for m in messages)
