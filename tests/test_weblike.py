"""Web-like MineLite footage (issue 17, item 1): each kind of unclean overlay is drawn where it should be and
nowhere else, the span planner is seeded and follows the rate, and the ground truth lives in a sidecar
whose spans match the frames that carry overlays."""
import json
import warnings

import numpy as np
import pytest

from vpt_rl.data import recorder as recorder_mod
from vpt_rl.data import weblike
from vpt_rl.data.contractor import find_segments, iter_segment, iter_video_frames
from vpt_rl.data.record import RecordSettingsError, record_dataset, record_expert_episode
from vpt_rl.data.weblike import (
    KINDS,
    WebLikeFrames,
    draw_creative,
    draw_face_cam,
    draw_letterbox,
    draw_logo,
    draw_pause,
    face_cam_box,
    letterbox_size,
    logo_mask,
    panel_box,
    plan_unclean_spans,
    read_sidecar,
    sidecar_path,
    unclean_mask,
)

SIZE = 64


def _frame(seed=0, size=SIZE):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _outside(shape, box):
    y0, y1, x0, x1 = box
    keep = np.ones(shape[:2], bool)
    keep[y0:y1, x0:x1] = False
    return keep


# ---------------------------------------------------------------------------------------------------
# Each kind, drawn on one frame


@pytest.mark.parametrize("corner", ["tl", "tr", "bl", "br"])
def test_face_cam_covers_only_its_corner_box_and_its_figure_moves(corner):
    f = _frame()
    out = draw_face_cam(f, 0, corner=corner, scale=0.3, backdrop=(70, 78, 96), skin=(226, 176, 140))
    y0, y1, x0, x1 = face_cam_box(f.shape, corner, 0.3)
    assert (y0 < SIZE // 2) == (corner[0] == "t") and (x0 < SIZE // 2) == (corner[1] == "l")
    assert (x1 - x0) >= 0.25 * SIZE and y1 - y0 < x1 - x0  # a landscape rectangle, a good part of the width
    keep = _outside(f.shape, (y0, y1, x0, x1))
    assert np.array_equal(out[keep], f[keep])  # the rest of the frame is the clean frame, bit for bit
    box = out[y0:y1, x0:x1].reshape(-1, 3)
    colours = {tuple(c) for c in box}
    assert (70, 78, 96) in colours and (226, 176, 140) in colours  # backdrop and a face on it
    assert colours <= {(70, 78, 96), (226, 176, 140), (40, 96, 170)}  # opaque: nothing of the game shows
    later = draw_face_cam(f, 5, corner=corner, scale=0.3)
    assert not np.array_equal(later[y0:y1, x0:x1], out[y0:y1, x0:x1])  # the person moves
    assert np.array_equal(later[keep], f[keep])


def test_logo_is_a_see_through_blend_inside_its_mask_and_nothing_outside():
    f = _frame(1)
    out = draw_logo(f, corner="tr", scale=0.2, colour=(255, 255, 255), alpha=0.4)
    mask = logo_mask(f.shape, "tr", 0.2)
    assert 10 < mask.sum() < 0.05 * SIZE * SIZE
    ys, xs = np.nonzero(mask)
    assert ys.max() < SIZE // 2 and xs.min() > SIZE // 2  # top right
    assert np.array_equal(out[~mask], f[~mask])
    expected = np.rint(0.6 * f[mask].astype(np.float64) + 0.4 * 255).astype(np.uint8)
    assert np.abs(out[mask].astype(int) - expected).max() <= 1  # rounding of float32
    assert (out[mask] != f[mask]).any(axis=1).mean() > 0.9  # the blend changes the pixels under it ...
    assert len({tuple(c) for c in out[mask]}) > 10  # ... and the game still shows through
    with pytest.raises(ValueError, match="alpha.*1.0"):
        draw_logo(f, alpha=1.0)


def test_letterbox_bars_are_black_and_the_game_is_scaled_into_the_rest():
    f = _frame(2)
    out = draw_letterbox(f, bars=0.125)
    b = letterbox_size(f.shape, 0.125)
    assert b == 8
    assert (out[:b] == 0).all() and (out[-b:] == 0).all()
    inner = out[b:-b]
    rows = (np.arange(SIZE - 2 * b) * SIZE) // (SIZE - 2 * b)
    assert np.array_equal(inner, f[rows])  # the whole game, squeezed: first and last rows kept
    assert np.array_equal(inner[0], f[0]) and np.array_equal(inner[-1], f[rows[-1]])
    side = draw_letterbox(f, bars=0.125, columns=True)  # pillarbox
    assert (side[:, :b] == 0).all() and (side[:, -b:] == 0).all() and not (side[:, b:-b] == 0).all()
    with pytest.raises(ValueError, match="bars.*0.6"):
        draw_letterbox(f, bars=0.6)


def test_pause_frames_are_frozen_dimmed_and_carry_a_centred_panel():
    povs = [_frame(s) for s in range(8)]
    frames = WebLikeFrames([(2, 6, "pause")], seed=0)
    dim = frames.styles[0]["dim"]
    out = [frames(t, p) for t, p in enumerate(povs)]
    for t in (0, 1, 6, 7):
        assert out[t] is povs[t]  # outside the span: the pov itself
    for t in (3, 4, 5):
        assert np.array_equal(out[t], out[2])  # held still for the whole span ...
    assert np.array_equal(out[2], draw_pause(povs[2], dim=dim))  # ... on the span's first frame
    box = panel_box(povs[2].shape, 0.5, 0.6)
    y0, y1, x0, x1 = box
    assert abs((x0 + x1) / 2 - SIZE / 2) <= 1 and abs((y0 + y1) / 2 - SIZE / 2) <= 1
    keep = _outside(povs[2].shape, box)
    dimmed = np.rint(povs[2].astype(np.float32) * dim).astype(np.uint8)
    assert np.array_equal(out[2][keep], dimmed[keep])
    panel = out[2][y0:y1, x0:x1].reshape(-1, 3)
    assert {(52, 52, 58), (128, 128, 134), (20, 20, 20)} <= {tuple(c) for c in panel}  # panel, buttons, edges


def test_creative_screen_dims_the_game_behind_a_grid_of_many_item_slots():
    f = _frame(3, size=128)
    out = draw_creative(f, tab=2, dim=0.35, rows=5, cols=9, seed=7)
    box = panel_box(f.shape, 0.84, 0.84)
    keep = _outside(f.shape, box)
    dimmed = np.rint(f.astype(np.float32) * 0.35).astype(np.uint8)
    assert np.array_equal(out[keep], dimmed[keep])
    y0, y1, x0, x1 = box
    panel = {tuple(c) for c in out[y0:y1, x0:x1].reshape(-1, 3)}
    assert len(panel) >= 40  # dozens of item colours, unlike MineLite's 2-row survival GUI
    assert not np.array_equal(draw_creative(f, tab=3, seed=7)[y0:y1, x0:x1], out[y0:y1, x0:x1])  # other tab
    assert np.array_equal(draw_creative(_frame(4, 128), tab=2, dim=0.35, seed=7)[y0:y1, x0:x1],
                          out[y0:y1, x0:x1])  # the panel itself does not depend on the game


def test_every_kind_changes_only_the_ticks_of_its_span_and_draws_the_same_again():
    for kind in KINDS:
        spans = [(3, 7, kind)]
        povs = [_frame(s) for s in range(10)]
        fa, fb = WebLikeFrames(spans, seed=5), WebLikeFrames(spans, seed=5)
        a = [fa(t, p) for t, p in enumerate(povs)]
        b = [fb(t, p) for t, p in enumerate(povs)]
        for t in range(10):
            assert np.array_equal(a[t], b[t]), (kind, t)  # same seed: the same pixels
            assert np.array_equal(a[t], povs[t]) == (not 3 <= t < 7), (kind, t)


def test_unknown_kind_and_bad_rate_are_refused_naming_the_value(tmp_path):
    with pytest.raises(ValueError, match="'vlog'.*facecam"):
        WebLikeFrames([(0, 5, "vlog")])
    with pytest.raises(ValueError, match="'vlog'"):
        plan_unclean_spans(100, 0.5, 0, kinds=["logo", "vlog"])
    for bad in (1.5, -0.1, float("nan"), "lots"):
        with pytest.raises(ValueError, match="rate.*" + str(bad).replace(".", r"\.")):
            plan_unclean_spans(100, bad, 0)
    with pytest.raises(ValueError, match="max_spans.*0"):
        plan_unclean_spans(100, 0.5, 0, max_spans=0)
    with pytest.raises(ValueError, match="rate.*2.0"):
        record_dataset(tmp_path / "r", 1, max_ticks=10, unclean_rate=2.0, progress=False)
    assert not (tmp_path / "r").exists()  # refused before anything was written
    from vpt_rl.commands import record
    with pytest.raises(SystemExit):
        record.main(["--episodes", "1", "--out", str(tmp_path / "c"), "--web-like", "1.5"])
    assert not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------------------------------
# The planner


def test_planner_is_seeded_keeps_spans_apart_and_seconds_long():
    assert plan_unclean_spans(600, 1.0, 3) == plan_unclean_spans(600, 1.0, 3)
    plans = [plan_unclean_spans(600, 1.0, s) for s in range(10)]
    assert len({tuple(p) for p in plans}) == 10  # another seed, other spans
    kinds = set()
    for p in plans:
        assert 1 <= len(p) <= weblike.MAX_SPANS
        ends = 0
        for start, end, kind in p:
            assert ends <= start < end <= 600 and kind in KINDS
            assert 20 <= end - start <= 100  # 1 to 5 seconds of 20 ticks (600 ticks leave room for that)
            ends = end
            kinds.add(kind)
    assert kinds == set(KINDS)
    tiny = plan_unclean_spans(40, 1.0, 1)
    assert len(tiny) == 1 and tiny[0][1] - tiny[0][0] <= 30  # cut to fit, clean footage left around it
    # the rate decides which episodes are unclean, not where an unclean one's spans lie
    assert plan_unclean_spans(600, 0.5, 3) in ([], plan_unclean_spans(600, 1.0, 3))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.7, 1.0])
def test_share_of_unclean_episodes_follows_the_rate(rate):
    n = 200
    share = np.mean([bool(plan_unclean_spans(100, rate, s)) for s in range(n)])
    assert abs(share - rate) <= 0.08, share  # 2.5 standard deviations at 0.3 / 0.7 over 200 episodes
    assert share == rate or 0 < rate < 1


# ---------------------------------------------------------------------------------------------------
# Recording: overlays in the recorded frames, the truth in the sidecar, the actions the expert's


def _capture(monkeypatch):
    """Collect every frame the recorder writes (before lossy encoding)."""
    frames = []
    real = recorder_mod.ContractorRecorder.add

    def add(self, frame_rgb, env_action, state=None):
        frames.append(np.array(frame_rgb, copy=True))
        return real(self, frame_rgb, env_action, state)

    monkeypatch.setattr(recorder_mod.ContractorRecorder, "add", add)
    return frames


def _lines(path):
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for line in lines:
        line.pop("serverTickDurationMs")
    return lines


def test_recorded_frames_carry_overlays_exactly_on_the_sidecar_spans(tmp_path, monkeypatch):
    frames = _capture(monkeypatch)
    kw = dict(seed=2, max_ticks=60, segment_ticks=30, resolution=(SIZE, SIZE), world_size=16)
    record_expert_episode(tmp_path / "clean", **kw)
    clean = list(frames)
    frames.clear()
    spans = [(10, 25, "logo"), (28, 40, "pause"), (50, 55, "facecam")]  # the pause crosses the segment boundary
    res = record_expert_episode(tmp_path / "web", **kw, unclean_spans=spans)
    web = list(frames)
    assert len(clean) == len(web) == 60
    truth = np.zeros(60, bool)
    for s, e, _k in spans:
        truth[s:e] = True
    for t in range(60):
        assert np.array_equal(web[t], clean[t]) == (not truth[t]), t
    assert all(np.array_equal(web[t], web[28]) for t in range(28, 40))  # the pause holds still
    names = res.relpaths
    assert len(names) == 2
    sides = [read_sidecar(tmp_path / "web" / f"{n}.mp4") for n in names]
    assert sides[0] == {"version": 1, "n_frames": 30, "unclean_spans": [[10, 25, "logo"], [28, 30, "pause"]]}
    assert sides[1] == {"version": 1, "n_frames": 30, "unclean_spans": [[0, 10, "pause"], [20, 25, "facecam"]]}
    assert np.array_equal(np.concatenate([unclean_mask(s) for s in sides]), truth)
    for n, side in zip(names, sides):
        jsonl = (tmp_path / "web" / f"{n}.jsonl").read_text()
        assert side["n_frames"] == len(jsonl.splitlines())
        # the actions and states (every jsonl line but its wall-clock step time) are the expert's, whatever
        # the video shows
        assert _lines(tmp_path / "web" / f"{n}.jsonl") == _lines(tmp_path / "clean" / f"{n}.jsonl")
        assert "unclean" not in jsonl and "clean" not in (tmp_path / "web" / f"{n}-options.json").read_text()
    assert not list((tmp_path / "clean").glob("*.clean.json"))  # no spans given: a plain recording


def test_record_dataset_mixes_clean_and_unclean_episodes_reproducibly_and_readers_ignore_sidecars(tmp_path, monkeypatch):
    frames = _capture(monkeypatch)
    kw = dict(seed=0, max_ticks=40, resolution=(SIZE, SIZE), world_size=16, progress=False, unclean_rate=0.5)
    record_dataset(tmp_path / "a", 4, **kw)
    first = list(frames)
    frames.clear()
    record_dataset(tmp_path / "b", 4, **kw)
    assert len(first) == len(frames) == 160
    assert all(np.array_equal(x, y) for x, y in zip(first, frames))  # same seed, the same footage
    names = sorted(p.name for p in (tmp_path / "a").glob("*.clean.json"))
    assert len(names) == 4 and names == sorted(p.name for p in (tmp_path / "b").glob("*.clean.json"))
    sides = [read_sidecar(tmp_path / "a" / n) for n in names]
    assert sides == [read_sidecar(tmp_path / "b" / n) for n in names]  # same seed, same truth
    assert sides == [{"version": 1, "n_frames": 40, "unclean_spans": [list(s) for s in
                                                                       plan_unclean_spans(40, 0.5, i)]}
                     for i in range(4)]
    n_unclean = sum(bool(s["unclean_spans"]) for s in sides)
    assert 0 < n_unclean < 4  # seeds 0..3 at rate 0.5 give both (a fixed, seeded choice)
    mp4 = sorted((tmp_path / "a").glob("*.mp4"))
    assert all(len(list(iter_video_frames(a))) == 40 for a in mp4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reader that tripped over a sidecar would warn
        assert find_segments(tmp_path / "a") == mp4
        assert find_segments(tmp_path / "a" / "index.json") == mp4
        assert all(sum(1 for _ in iter_segment(p, skip_null=False)) == 40 for p in mp4)
    assert sidecar_path(mp4[0]) == mp4[0].with_name(mp4[0].stem + ".clean.json")


def test_read_sidecar_refuses_a_corrupt_file_naming_it(tmp_path):
    p = tmp_path / "x.clean.json"
    for bad, what in (("{", "unreadable"), ('{"version": 2}', "version 1"),
                      ('{"version": 1, "n_frames": 10, "unclean_spans": [[5, 12, "logo"]]}', "bad span"),
                      ('{"version": 1, "n_frames": 10, "unclean_spans": [[0, 5, "logo"], [4, 6, "pause"]]}',
                       "bad span"),
                      ('{"version": 1, "n_frames": 10, "unclean_spans": [[0, 5, "vlog"]]}', "bad span")):
        p.write_text(bad)
        with pytest.raises(ValueError, match=f"x.clean.json.*{what}"):
            read_sidecar(p)


def test_record_command_web_like_writes_sidecars_resumes_them_and_refuses_another_rate(tmp_path, capsys):
    from vpt_rl.commands import record

    out = tmp_path / "rec"
    argv = ["--episodes", "2", "--out", str(out), "--seed", "5", "--max-ticks", "30", "--resolution", "64x64",
            "--world-size", "16", "--no-progress"]
    assert record.main(argv + ["--web-like", "1"]) == 0
    names = ["minelite-expert-s0005-e0000-000", "minelite-expert-s0006-e0001-000"]
    sides = {n: read_sidecar(out / f"{n}.clean.json") for n in names}
    assert all(s["n_frames"] == 30 and s["unclean_spans"] for s in sides.values())  # rate 1: all unclean
    assert json.loads((out / "record.json").read_text())["aliases"]["expert"]["unclean_rate"] == 1.0
    # a run killed between an episode's segments and its sidecar: the rerun writes the missing one
    (out / f"{names[1]}.clean.json").unlink()
    capsys.readouterr()
    assert record.main(argv + ["--web-like", "1"]) == 0
    assert "skipped 2" in capsys.readouterr().out
    assert read_sidecar(out / f"{names[1]}.clean.json") == sides[names[1]]
    for other in (["--web-like", "0.3"], []):
        assert record.main(argv + other) == 2
        err = capsys.readouterr().err
        assert "unclean_rate 1.0 -> " + ("0.3" if other else "null") in err, err
    assert sorted(p.name for p in out.glob("*.clean.json")) == [f"{n}.clean.json" for n in names]
