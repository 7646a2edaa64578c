"""Contractor-format recorder: lines read back by the official rules give the actions taken, atomic segments."""
import json
import subprocess
import sys

import numpy as np
import pytest

from vpt_rl.actions import ENV_ACTION_KEYS, noop_action
from vpt_rl.data.contractor import draw_cursor, find_segments, iter_video_frames, load_actions
from vpt_rl.data.recorder import (
    ContractorRecorder,
    RecorderWarning,
    actions_equal,
    record_episode,
    segment_complete,
    segment_name,
    write_index,
)

BINARY = [k for k in ENV_ACTION_KEYS if k != "camera"]


class FakeGame:
    """A tiny Gymnasium-style env with MineLite's privileged_state(): hotbar keys select slots, E toggles
    the inventory screen (camera moves the cursor while it is open), frames are smooth gradients."""

    def __init__(self, size=(64, 96), fail_at=None):
        self.h, self.w = size
        self.fail_at = fail_at

    @property
    def unwrapped(self):
        return self

    def reset(self, seed=None):
        self.t, self.slot, self.gui, self.cursor = 0, 0, False, [self.w / 2, self.h / 2]
        self.yaw = self.pitch = 0.0
        return self._obs(), {}

    def _obs(self):
        yy, xx = np.mgrid[0:self.h, 0:self.w]
        base = (xx * 2 + yy + self.t * 3 + self.yaw) % 256
        pov = np.stack([base, (base * 0.5 + 40 * self.gui) % 256, np.full_like(base, 30 * self.slot)], -1)
        return {"pov": pov.astype(np.uint8)}

    def privileged_state(self):
        return {"gui_open": self.gui, "gui_screen": "inventory" if self.gui else None,
                "cursor": tuple(self.cursor) if self.gui else None, "hotbar": self.slot, "yaw": self.yaw,
                "pitch": self.pitch, "pos": (1.0, 64.0, -2.5), "inventory": {"oak_log": self.t % 5, "air": 30},
                "stats": {"minecraft.custom:minecraft.jump": self.t}}

    def step(self, action):
        if self.fail_at is not None and self.t == self.fail_at:
            raise RuntimeError("simulated crash")
        for i in range(1, 10):
            if action.get(f"hotbar.{i}", 0) and not self.gui:
                self.slot = i - 1
        if action.get("inventory", 0):
            self.gui = not self.gui
        cam = np.asarray(action.get("camera", [0, 0]), dtype=np.float64)
        if self.gui:
            self.cursor = [float(np.clip(self.cursor[0] + cam[1] / 0.15 * self.h / 720, 0, self.w - 1)),
                           float(np.clip(self.cursor[1] + cam[0] / 0.15 * self.h / 720, 0, self.h - 1))]
        else:
            self.yaw += cam[1]
            self.pitch = float(np.clip(self.pitch + cam[0], -90, 90))
        self.t += 1
        return self._obs(), 0.0, False, False, {}


def random_policy(seed):
    """Every key, float camera deltas, hotbar presses of the already selected slot, held attack."""
    rng = np.random.default_rng(seed)
    state = {"t": 0}

    def act(obs):
        a = noop_action()
        t = state["t"]
        state["t"] += 1
        if t == 0:
            return a  # nothing pressed on the first tick, like a human starting a recording
        r = rng.random()
        if r < 0.15:
            return a  # null lines
        for k in BINARY:
            if k != "inventory" and rng.random() < 0.08:
                a[k] = 1
        if rng.random() < 0.04:
            a["inventory"] = 1
        if t % 7 == 0:
            a["hotbar.3"] = 1  # repeatedly pressing the selected slot
        if 20 <= t < 35:
            a["attack"] = 1  # a long hold
        if rng.random() < 0.7:
            a["camera"] = rng.normal(0, 6, size=2).astype(np.float32)
        return a

    return act


def _run(tmp_path, n=120, seed=0, **kw):
    env = FakeGame()
    taken = []
    pol = random_policy(seed)

    def policy(obs):
        a = pol(obs)
        taken.append(a)
        return a

    res = record_episode(env, policy, tmp_path / "minelite-test-s0000-e0000", max_ticks=n, keep_actions=True, **kw)
    return res, taken


def test_readback_by_contractor_rules_gives_every_action_taken(tmp_path):
    res, taken = _run(tmp_path, n=150)
    assert res.relpaths == ["minelite-test-s0000-e0000-000"]
    assert res.mismatches == []
    read = load_actions(tmp_path / "minelite-test-s0000-e0000-000.jsonl")
    assert len(read) == len(taken) == 150
    n_null = 0
    for i, ((env_action, is_null), a) in enumerate(zip(read, taken)):
        for k in BINARY:
            assert env_action[k] == int(a[k]), (i, k)
        np.testing.assert_allclose(env_action["camera"], np.asarray(a["camera"], np.float64), atol=1e-5, err_msg=str(i))
        assert is_null == (not any(a[k] for k in BINARY) and not np.any(a["camera"]))
        n_null += is_null
    assert n_null >= 10  # the policy's no-op ticks became null lines
    # the repeated press of the already selected slot still reads back as hotbar.3
    assert sum(a["hotbar.3"] for a, _ in read) >= 150 // 7


def test_jsonl_fields_follow_the_contractor_format(tmp_path):
    _run(tmp_path, n=40)
    lines = [json.loads(s) for s in (tmp_path / "minelite-test-s0000-e0000-000.jsonl").read_text().splitlines()]
    first = lines[0]
    assert set(first["mouse"]) == {"x", "y", "dx", "dy", "scaledX", "scaledY", "dwheel", "buttons", "newButtons"}
    assert set(first["keyboard"]) == {"keys", "newKeys", "chars"}
    for key in ("isGuiOpen", "isGuiInventory", "hotbar", "yaw", "pitch", "xpos", "ypos", "zpos", "tick", "milli",
                "inventory", "serverTick", "serverTickDurationMs", "stats"):
        assert key in first, key
    assert [ln["tick"] for ln in lines] == list(range(40))
    assert lines[3]["milli"] == 150
    assert lines[5]["ypos"] == 64.0
    # attack held over ticks 20..34: newButtons only on the first tick of the hold
    assert 0 in lines[20]["mouse"]["buttons"] and 0 in lines[20]["mouse"]["newButtons"]
    assert 0 in lines[21]["mouse"]["buttons"] and 0 not in lines[21]["mouse"]["newButtons"]
    for ln in lines:
        for item in ln["inventory"]:
            assert set(item) == {"type", "quantity"} and item["type"] != "air" and item["quantity"] > 0


def test_camera_is_written_as_float_pixels(tmp_path):
    rec = ContractorRecorder(tmp_path, "cam")
    a = noop_action()
    a["camera"] = np.array([1.23, -4.56], dtype=np.float32)
    line = rec.add(np.zeros((8, 8, 3), np.uint8), a, {})
    rec.close()
    assert line["mouse"]["dy"] == pytest.approx(1.23 / 0.15, rel=1e-6)
    assert line["mouse"]["dx"] == pytest.approx(-4.56 / 0.15, rel=1e-6)
    assert isinstance(line["mouse"]["dx"], float)


def test_mp4_frame_count_equals_jsonl_lines_and_frames_match(tmp_path):
    env = FakeGame()
    frames = []

    def policy(obs):
        frames.append(obs["pov"].copy())
        a = noop_action()
        a["camera"] = np.array([0.0, 2.0], np.float32)
        return a

    record_episode(env, policy, tmp_path / "v", max_ticks=57)
    decoded = list(iter_video_frames(tmp_path / "v-000.mp4"))
    n_lines = len((tmp_path / "v-000.jsonl").read_text().splitlines())
    assert len(decoded) == n_lines == 57
    assert decoded[0].shape == (64, 96, 3)
    err = np.mean([np.abs(d.astype(int) - f.astype(int)).mean() for d, f in zip(decoded, frames)])
    assert err < 6.0, err  # lossy H.264 of smooth frames: a few grey levels on average


def test_640x360_frames_are_supported(tmp_path):
    with ContractorRecorder(tmp_path, "big") as rec:
        for t in range(5):
            rec.add(np.full((360, 640, 3), 40 * t, np.uint8), noop_action(), {"tick": t})
    assert [f.shape for f in iter_video_frames(tmp_path / "big.mp4")] == [(360, 640, 3)] * 5


def test_interrupted_recording_leaves_no_complete_looking_segment(tmp_path):
    env = FakeGame(fail_at=50)
    with pytest.raises(RuntimeError, match="simulated crash"):
        record_episode(env, random_policy(1), tmp_path / "x", max_ticks=100, segment_ticks=30)
    names = sorted(p.name for p in tmp_path.iterdir())
    # segment 000 (ticks 0..29) was finished; segment 001 (ticks 30..49) must have vanished
    assert names == ["x-000-options.json", "x-000.jsonl", "x-000.mp4"], names
    assert segment_complete(tmp_path, "x-000") and not segment_complete(tmp_path, "x-001")
    assert len(list(iter_video_frames(tmp_path / "x-000.mp4"))) == 30
    assert json.loads((tmp_path / "x-000-options.json").read_text())["episode_done"] is False


def test_keyboard_interrupt_inside_context_manager_removes_partials(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with ContractorRecorder(tmp_path, "k") as rec:
            rec.add(np.zeros((16, 16, 3), np.uint8), noop_action(), {})
            assert (tmp_path / "k.jsonl.partial").exists()
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_segments_split_and_held_buttons_carry_over(tmp_path):
    env = FakeGame()

    def policy(obs, state={"t": 0}):
        a = noop_action()
        state["t"] += 1
        if state["t"] > 5:
            a["attack"] = 1  # held across the boundary at tick 20
        return a

    res = record_episode(env, policy, tmp_path / "s", max_ticks=45, segment_ticks=20)
    assert res.relpaths == ["s-000", "s-001", "s-002"]
    counts = [len((tmp_path / f"{n}.jsonl").read_text().splitlines()) for n in res.relpaths]
    assert counts == [20, 20, 5]
    line0 = json.loads((tmp_path / "s-001.jsonl").read_text().splitlines()[0])
    assert line0["tick"] == 20 and line0["mouse"]["buttons"] == [0] and line0["mouse"]["newButtons"] == []
    assert all(a["attack"] == 1 for a, _ in load_actions(tmp_path / "s-001.jsonl"))
    assert res.mismatches == []
    meta = json.loads((tmp_path / "s-002-options.json").read_text())
    assert meta["episode_done"] is True and meta["episode_ticks"] == 45 and meta["n_frames"] == 5


def test_attack_alone_on_first_tick_is_held_back_and_warned(tmp_path):
    env = FakeGame()

    def policy(obs):
        a = noop_action()
        a["attack"] = 1
        return a

    with pytest.warns(RecorderWarning, match="first tick of segment 0"):
        res = record_episode(env, policy, tmp_path / "a", max_ticks=4, keep_actions=True)
    assert res.actions[0]["attack"] == 0 and res.actions[1]["attack"] == 1
    assert [a["attack"] for a, _ in load_actions(tmp_path / "a-000.jsonl")] == [0, 1, 1, 1]
    assert res.mismatches == []


def test_new_attack_on_the_first_line_of_a_later_segment_is_held_back(tmp_path):
    env = FakeGame()

    def policy(obs, state={"t": 0}):
        a = noop_action()
        a["attack"] = int(state["t"] >= 5)  # pressed anew exactly at tick 5 = line 0 of segment 1
        state["t"] += 1
        return a

    with pytest.warns(RecorderWarning, match="segment 1"):
        res = record_episode(env, policy, tmp_path / "b", max_ticks=8, segment_ticks=5, keep_actions=True)
    assert [a["attack"] for a in res.actions] == [0] * 6 + [1, 1]
    assert [a["attack"] for a, _ in load_actions(tmp_path / "b-001.jsonl")] == [0, 1, 1]
    assert res.mismatches == []


def test_readback_mismatch_is_reported(tmp_path):
    # a segment that starts on slot 4 reads as a hotbar.5 press on its first line (the reader starts at 0)
    rec = ContractorRecorder(tmp_path, "m")
    rec.add(np.zeros((8, 8, 3), np.uint8), noop_action(), {"hotbar": 4})
    with pytest.warns(RecorderWarning, match="1 line"):
        rec.close()
    assert rec.mismatches[0][0] == 0 and "hotbar.5" in rec.mismatches[0][1]


def test_cursor_is_written_in_720p_units_and_drawn_at_the_env_cursor(tmp_path):
    rec = ContractorRecorder(tmp_path, "c")
    line = rec.add(np.zeros((128, 128, 3), np.uint8), noop_action(), {"isGuiOpen": True, "cursor": (64.0, 32.0)})
    rec.close()
    assert (line["mouse"]["x"], line["mouse"]["y"]) == (360.0, 180.0)
    grey = np.full((128, 128, 3), 128, np.uint8)
    frame = draw_cursor(grey.copy(), line["mouse"]["x"], line["mouse"]["y"])
    ys, xs = np.nonzero(np.any(frame != grey, axis=-1))
    assert (xs.min(), ys.min()) == (64, 32)  # the cursor's top-left (its tip) lands on the env cursor


def test_gui_fields_describe_the_frame_and_hotbar_the_state_after(tmp_path):
    env = FakeGame()
    script = {3: {"inventory": 1}, 6: {"inventory": 1}, 8: {"hotbar.4": 1}}

    def policy(obs, state={"t": 0}):
        a = noop_action()
        a.update(script.get(state["t"], {}))
        state["t"] += 1
        return a

    record_episode(env, policy, tmp_path / "g", max_ticks=10)
    lines = [json.loads(s) for s in (tmp_path / "g-000.jsonl").read_text().splitlines()]
    # E pressed on tick 3: the frame of line 3 is before it, line 4's frame shows the open screen
    assert [ln["isGuiOpen"] for ln in lines] == [False] * 4 + [True] * 3 + [False] * 3
    assert [ln["isGuiInventory"] for ln in lines] == [ln["isGuiOpen"] for ln in lines]
    assert [ln["hotbar"] for ln in lines] == [0] * 8 + [3, 3]
    assert lines[8]["keyboard"]["keys"] == ["key.keyboard.4"]


def test_bad_input_is_refused_with_the_value_named(tmp_path):
    rec = ContractorRecorder(tmp_path, "bad")
    with pytest.raises(ValueError, match="even"):
        rec.add(np.zeros((9, 8, 3), np.uint8), noop_action(), {})
    with pytest.raises(ValueError, match="unknown MineRL action key 'jumpp'"):
        rec.add(np.zeros((8, 8, 3), np.uint8), {"jumpp": 1}, {})
    with pytest.raises(ValueError, match="hotbar"):
        rec.add(np.zeros((8, 8, 3), np.uint8), noop_action(), {"hotbar": 9})
    with pytest.raises(ValueError, match="uint8"):
        rec.add(np.zeros((8, 8, 3), np.float32), noop_action(), {})
    rec.abort()
    with pytest.raises(ValueError, match="name"):
        ContractorRecorder(tmp_path, "a/b")
    with pytest.raises(ValueError, match="max_ticks"):
        record_episode(FakeGame(), lambda o: noop_action(), tmp_path / "z", max_ticks=0)


def test_names_and_index_follow_the_real_data_layout(tmp_path):
    assert segment_name("expert", 3, 1, 0) == "minelite-expert-s0003-e0001-000"
    with pytest.raises(ValueError):
        segment_name("ex-pert", 3, 1, 0)
    _run(tmp_path, n=10)
    idx = write_index(tmp_path, ["minelite-test-s0000-e0000-000"])
    data = json.loads(idx.read_text())
    assert data == {"basedir": str(tmp_path.resolve()), "relpaths": ["minelite-test-s0000-e0000-000"]}
    assert find_segments(idx) == [tmp_path / "minelite-test-s0000-e0000-000.mp4"]


def test_actions_equal_compares_keys_and_camera():
    a = noop_action()
    b = noop_action()
    b["camera"] = np.array([0.0, 1e-9])
    assert actions_equal(a, b)
    b["jump"] = 1
    assert not actions_equal(a, b)


def test_record_command_writes_segments_and_index_and_resumes(tmp_path, capsys):
    from vpt_rl.commands import record

    out = tmp_path / "rec"
    argv = ["--episodes", "2", "--out", str(out), "--seed", "7", "--max-ticks", "40", "--no-progress"]
    assert record.main(argv) == 0
    names = ["minelite-expert-s0007-e0000-000", "minelite-expert-s0008-e0001-000"]
    for n in names:
        assert segment_complete(out, n)
        assert len((out / f"{n}.jsonl").read_text().splitlines()) == 40
        assert len(list(iter_video_frames(out / f"{n}.mp4"))) == 40
    index = json.loads((out / "index.json").read_text())
    assert index["relpaths"] == names and index["basedir"] == str(out.resolve())
    mtimes = [(out / f"{n}.mp4").stat().st_mtime_ns for n in names]
    capsys.readouterr()
    # a half-written third episode (killed process) must not count as recorded
    (out / "minelite-expert-s0009-e0002-000.mp4.partial").write_bytes(b"junk")
    assert record.main(["--episodes", "3"] + argv[2:]) == 0
    text = capsys.readouterr().out
    assert "recorded 1 episode(s), skipped 2" in text
    assert [(out / f"{n}.mp4").stat().st_mtime_ns for n in names] == mtimes
    assert segment_complete(out, "minelite-expert-s0009-e0002-000")
    assert not (out / "minelite-expert-s0009-e0002-000.mp4.partial").exists()


def test_record_command_refuses_bad_arguments(tmp_path):
    from vpt_rl.commands import record

    with pytest.raises(SystemExit):
        record.main(["--episodes", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        record.main(["--episodes", "1", "--out", str(tmp_path), "--resolution", "127x128"])
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        record.parse_resolution("big")


def test_record_command_world_size_reaches_the_minelite_env(tmp_path, monkeypatch):
    from vpt_rl.commands import record
    from vpt_rl.envs.minelite import expert

    seen = []
    real = expert.make_expert_env

    def spy(*a, **kw):
        env = real(*a, **kw)
        seen.append(env.unwrapped.world_size)
        return env

    monkeypatch.setattr(expert, "make_expert_env", spy)
    argv = ["--episodes", "1", "--seed", "3", "--max-ticks", "12", "--no-progress"]
    assert record.main(argv + ["--out", str(tmp_path / "a"), "--world-size", "16"]) == 0
    assert record.main(argv + ["--out", str(tmp_path / "b"), "--world-size", "20x24x18"]) == 0
    assert record.main(argv + ["--out", str(tmp_path / "c")]) == 0
    assert seen == [(16, 48, 16), (20, 24, 18), (64, 48, 64)]
    name = "minelite-expert-s0003-e0000-000"
    assert len((tmp_path / "a" / f"{name}.jsonl").read_text().splitlines()) == 12
    assert record.parse_world_size("32") == 32 and record.parse_world_size("32x24x40") == (32, 24, 40)
    for bad in ("big", "8", "32x16x32", "32x32"):
        with pytest.raises(ValueError, match="world size"):
            record.parse_world_size(bad)
    with pytest.raises(SystemExit):
        record.main(argv + ["--out", str(tmp_path / "d"), "--world-size", "8"])


def test_view_command_writes_video_gif_and_contact_sheet(tmp_path, capsys):
    import cv2

    from vpt_rl.commands import view

    _run(tmp_path, n=60)
    seg = tmp_path / "minelite-test-s0000-e0000-000.mp4"
    out = tmp_path / "view"
    assert view.main([str(seg), "--out", str(out)]) == 0
    stem = "minelite-test-s0000-e0000-000"
    video = list(iter_video_frames(out / f"{stem}_view.mp4"))
    assert len(video) == 60
    # 64x96 frames enlarged 6x (to ~360 px high) plus the caption strip
    assert video[0].shape == (64 * 6 + view.CAPTION_H, 96 * 6, 3)
    gif = list(iter_video_frames(out / f"{stem}.gif"))
    assert 1 <= len(gif) <= 60
    sheet = cv2.imread(str(out / f"{stem}_contact.png"))
    assert sheet is not None and sheet.shape[0] > 100 and sheet.shape[1] > 100
    with pytest.raises(SystemExit):
        view.main(["--out", str(out)])  # neither a segment nor --seed
    with pytest.raises(FileNotFoundError):
        view.main([str(tmp_path / "missing.mp4"), "--out", str(out)])


def test_record_command_camera_noise_is_recorded_and_a_bad_value_is_refused(tmp_path, capsys):
    from vpt_rl.commands import record

    argv = ["--episodes", "1", "--seed", "3", "--max-ticks", "30", "--no-progress", "--alias", "contractor"]
    with pytest.raises(SystemExit):
        record.main(argv + ["--out", str(tmp_path / "bad"), "--camera-noise", "1.5"])
    assert "--camera-noise must be a probability in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() or not list((tmp_path / "bad").glob("*.mp4"))  # nothing written
    assert record.main(argv + ["--out", str(tmp_path / "a"), "--camera-noise", "0.5"]) == 0
    meta = json.loads((tmp_path / "a" / "minelite-contractor-s0003-e0000-000-options.json").read_text())
    assert meta["camera_noise"] == 0.5 and meta["alias"] == "contractor"


def test_record_dataset_is_a_library_call_that_resumes(tmp_path):
    from vpt_rl.data.record import record_dataset

    out = tmp_path / "rec"
    first = record_dataset(out, 2, seed=4, max_ticks=12, alias="lib", progress=False, world_size=16)
    assert (first.recorded, first.skipped) == (2, 0) and first.index == out / "index.json"
    assert json.loads(first.index.read_text())["relpaths"] == ["minelite-lib-s0004-e0000-000",
                                                               "minelite-lib-s0005-e0001-000"]
    again = record_dataset(out, 3, seed=4, max_ticks=12, alias="lib", progress=False, world_size=16)
    assert (again.recorded, again.skipped) == (1, 2)
    with pytest.raises(ValueError, match="alias"):
        record_dataset(tmp_path / "bad", 1, alias="a-b", progress=False)
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_envs_do_not_import_the_data_layer():
    # recording writes contractor files, so it lives in vpt_rl.data.record, above the env layer
    code = ("import sys; import vpt_rl.envs.minelite.expert as e; "
            "assert not [m for m in sys.modules if m.startswith('vpt_rl.data')], 'envs imported vpt_rl.data'; "
            "assert not hasattr(e, 'record_expert_episode'); "
            "from vpt_rl.data.record import record_expert_episode")
    subprocess.run([sys.executable, "-c", code], check=True)
