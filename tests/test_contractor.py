"""Contractor jsonl conversion (official rules, float camera), cursor drawing and bad-data handling."""
import json
import warnings

import numpy as np
import pytest

from vpt_rl.data.contractor import (
    CURSOR_PATH,
    DataWarning,
    convert_lines,
    draw_cursor,
    iter_segment,
    json_action_to_env_action,
    load_actions,
    load_cursor,
    make_cursor_image,
)
from vpt_rl.data.synthetic import synthetic_segment, write_synthetic_segment
from vpt_rl.data.video import write_video


def _line(keys=(), buttons=(), new_buttons=(), dx=0.0, dy=0.0, hotbar=0, gui=False, x=0.0, y=0.0):
    return {"mouse": {"x": x, "y": y, "dx": dx, "dy": dy, "buttons": list(buttons), "newButtons": list(new_buttons)},
            "keyboard": {"keys": list(keys)}, "isGuiOpen": gui, "hotbar": hotbar}


def test_fixture_conversion_matches_official_rules_on_all_60_lines(fixtures_dir):
    actions = load_actions(fixtures_dir / "contractor.jsonl")
    expected = json.loads((fixtures_dir / "contractor_expected.json").read_text())
    assert len(actions) == len(expected) == 60
    n_ok = 0
    for (action, is_null), exp in zip(actions, expected):
        exp_action = exp["env_action"]
        assert set(action) == set(exp_action)
        same_buttons = all(action[k] == exp_action[k] for k in exp_action if k != "camera")
        same_camera = np.array_equal(np.asarray(action["camera"], dtype=np.float64), np.asarray(exp_action["camera"]))
        n_ok += int(same_buttons and same_camera and is_null == exp["is_null"])
    assert n_ok == 60


def test_camera_is_float_degrees_not_truncated():
    action, is_null = json_action_to_env_action(_line(dx=5.0, dy=-13.0))
    assert not is_null
    np.testing.assert_allclose(action["camera"], [-13 * 0.15, 5 * 0.15], rtol=0, atol=1e-12)  # -1.95, 0.75
    assert action["camera"][1] != 0  # the official int64 array would have truncated 0.75 to 0


def test_null_line_and_unmapped_keys_are_null():
    action, is_null = json_action_to_env_action(_line(keys=["key.keyboard.tab", "key.keyboard.x"]))
    assert is_null and all(v == 0 for k, v in action.items() if k != "camera")


def test_stuck_attack_is_removed_until_pressed_anew():
    lines = [_line(buttons=[0], new_buttons=[0]), _line(buttons=[0]), _line(buttons=[0], new_buttons=[0]), _line(buttons=[0])]
    infos = convert_lines(lines)
    assert [i.env_action["attack"] for i in infos] == [0, 0, 1, 1]
    assert [i.is_null for i in infos] == [True, True, False, False]


def test_hotbar_change_presses_slot_but_stays_null():
    infos = convert_lines([_line(hotbar=0), _line(hotbar=3), _line(hotbar=3), _line(hotbar=3, keys=["key.keyboard.w"])])
    assert [i.env_action["hotbar.4"] for i in infos] == [0, 1, 0, 0]
    assert [i.is_null for i in infos] == [True, True, True, False]


def test_broken_jsonl_line_warns_with_file_and_line_and_keeps_alignment(tmp_path):
    path = tmp_path / "seg.jsonl"
    path.write_text(json.dumps(_line(keys=["key.keyboard.w"])) + "\n{not json\n" + json.dumps(_line(keys=["key.keyboard.s"])) + "\n")
    with pytest.warns(DataWarning, match=r"seg\.jsonl:2"):
        actions = load_actions(path)
    assert len(actions) == 3
    assert actions[0][0]["forward"] == 1 and actions[1][1] is True and actions[2][0]["back"] == 1


def test_cursor_asset_is_white_arrow_with_black_outline():
    img = load_cursor()
    assert CURSOR_PATH.is_file()
    assert img.shape == (16, 16, 4) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, make_cursor_image(16))
    opaque = img[..., 3] == 255
    rgb = img[..., :3][opaque]
    assert ((rgb == 255).all(-1) | (rgb == 0).all(-1)).all()  # only white and black
    assert (rgb == 255).all(-1).sum() > 20 and (rgb == 0).all(-1).sum() > 20
    assert img[0, 0, 3] == 255 and img[15, 15, 3] == 0  # tip at the top-left hotspot


def test_draw_cursor_blends_at_half_scale_and_clips_at_border():
    frame = np.full((360, 640, 3), 100, np.uint8)
    cursor = load_cursor()
    out = draw_cursor(frame.copy(), 200.0, 101.0)  # top-left at (100, 50)
    alpha = cursor[..., 3:4] / 255.0
    expected = (100 * (1 - alpha) + cursor[..., :3] * alpha).astype(np.uint8)
    np.testing.assert_array_equal(out[50:66, 100:116], expected)
    assert (out[:50] == 100).all() and (out[:, :100] == 100).all()
    edge = draw_cursor(frame.copy(), 1270.0, 710.0)  # only the top-left 5x5 of the cursor is inside
    np.testing.assert_array_equal(edge[355:, 635:], expected[:5, :5])


def test_iter_segment_skips_null_steps_and_resizes(tmp_path):
    frames, lines = synthetic_segment(30, seed=3, size=160)
    mp4 = write_synthetic_segment(tmp_path / "s", 30, seed=3, size=160)
    steps = list(iter_segment(mp4))
    n_null = sum(null for _, null in load_actions(mp4.with_suffix(".jsonl")))
    assert 0 < n_null < 30
    assert len(steps) == 30 - n_null
    assert all(s.frame.shape == (128, 128, 3) and not s.is_null for s in steps)
    assert [s.index for s in steps] == [i for i, (_, n) in enumerate(load_actions(mp4.with_suffix(".jsonl"))) if not n]


def test_cursor_drawn_only_while_gui_open(tmp_path):
    frames = np.zeros((4, 128, 128, 3), np.uint8)
    mp4 = write_video(tmp_path / "g.mp4", frames)
    lines = [_line(keys=["key.keyboard.w"], gui=g, x=360.0, y=360.0) for g in (False, True, False, True)]
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    steps = list(iter_segment(mp4))
    # the cursor lands at (64, 64) on the 128-pixel frame (scale 128 / 720)
    bright = [int(s.frame[64:80, 64:80].max()) for s in steps]
    assert bright[0] < 30 and bright[2] < 30 and bright[1] > 200 and bright[3] > 200


def test_cursor_not_drawn_twice_when_options_say_video_shows_it(tmp_path):
    frames = np.zeros((2, 128, 128, 3), np.uint8)
    mp4 = write_video(tmp_path / "c.mp4", frames)
    lines = [_line(keys=["key.keyboard.w"], gui=True, x=360.0, y=360.0) for _ in range(2)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    (tmp_path / "c-options.json").write_text(json.dumps({"cursor_in_video": True}))
    assert all(int(s.frame.max()) < 30 for s in iter_segment(mp4))  # our recorder's env frames: not redrawn
    assert all(int(s.frame[64:80, 64:80].max()) > 200 for s in iter_segment(mp4, cursor=True))  # forced
    (tmp_path / "c-options.json").write_text("{broken")
    with pytest.warns(DataWarning, match="c-options.json"):
        assert all(int(s.frame[64:80, 64:80].max()) > 200 for s in iter_segment(mp4))


def test_corrupt_video_warns_and_segment_is_skipped(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video" * 10)
    (tmp_path / "bad.jsonl").write_text(json.dumps(_line(keys=["key.keyboard.w"])) + "\n")
    with pytest.warns(DataWarning, match="bad.mp4"):
        assert list(iter_segment(tmp_path / "bad.mp4")) == []


def test_truncated_video_uses_decoded_frames_and_warns_about_count(tmp_path):
    mp4 = write_synthetic_segment(tmp_path / "t", 60, seed=1, press_prob=0.5, camera_prob=1.0)
    data = mp4.read_bytes()
    mp4.write_bytes(data[: len(data) // 2])  # cut the file in half
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        steps = list(iter_segment(mp4, skip_null=False))
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataWarning)]
    assert msgs and all("t.mp4" in m for m in msgs)
    assert len(steps) < 60


def test_frame_line_mismatch_warns_and_uses_common_prefix(tmp_path):
    mp4 = write_synthetic_segment(tmp_path / "m", 20, seed=2)
    jsonl = mp4.with_suffix(".jsonl")
    jsonl.write_text("".join(jsonl.read_text().splitlines(keepends=True)[:15]))
    with pytest.warns(DataWarning, match=r"20 video frames but 15 lines"):
        steps = list(iter_segment(mp4, skip_null=False))
    assert len(steps) == 15


def test_pseudo_label_confidence_is_read_and_a_bad_value_breaks_only_its_line():
    from vpt_rl.data.contractor import DataWarning, convert_lines

    base = {"mouse": {"dx": 0.0, "dy": 0.0, "buttons": [0]}, "keyboard": {"keys": []}}
    lines = [dict(base), dict(base, idm_confidence=0.25), dict(base, idm_confidence=1.5)]
    with pytest.warns(DataWarning, match="idm_confidence"):
        infos = convert_lines(lines, source="x.jsonl")
    assert [i.confidence for i in infos[:2]] == [1.0, 0.25]  # true labels count as certain
    assert infos[2].broken and infos[2].is_null and not infos[1].broken
