"""IDM labelling: sliding-window coverage, pseudo-label round trip, skip/resume, official IDM checkpoint."""
import json
import warnings

import numpy as np
import pytest
import torch

import vpt_rl.train.label as label_mod
from vpt_rl.actions import BUTTONS_ALL, factored_to_env, undiscretize_camera
from vpt_rl.checkpoint import load_idm
from vpt_rl.data.contractor import DataWarning, convert_lines, load_actions
from vpt_rl.data.video import write_video
from vpt_rl.model import idm_argmax
from vpt_rl.train.label import label_videos, plan_windows, predict_video, pseudo_label_lines


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 128, 129, 191, 192, 300, 1000])
@pytest.mark.parametrize("t", [8, 16, 128])
def test_every_frame_labelled_once_by_the_window_where_it_is_most_central(n, t):
    windows = plan_windows(n, t)
    owner = np.full(n, -1)
    for w, (s, length, k0, k1) in enumerate(windows):
        assert s <= k0 <= k1 <= s + length and length == min(t, n)
        assert (owner[k0:k1] == -1).all()  # never labelled twice
        owner[k0:k1] = w
    assert (owner >= 0).all()  # every frame labelled
    for f in range(n):  # by the window whose centre is nearest (earlier on ties)
        dist = [abs(f + 0.5 - (s + length / 2)) if s <= f < s + length else np.inf for s, length, _, _ in windows]
        assert owner[f] == int(np.argmin(dist))


def test_paper_window_rule_keeps_frames_32_to_96_with_edges_at_video_ends():
    windows = plan_windows(64 * 6, 128)
    starts = [w[0] for w in windows]
    assert starts == [0, 64, 128, 192, 256]
    rel = [(k0 - s, k1 - s) for s, _, k0, k1 in windows]
    assert rel[0] == (0, 96)  # the start of the video
    assert rel[1:-1] == [(32, 96)] * 3  # middle half of every other window
    assert rel[-1] == (32, 128)  # the end of the video


def test_pseudo_labels_convert_back_to_the_predicted_actions():
    rng = np.random.default_rng(0)
    n = 200
    buttons = (rng.random((n, 20)) < 0.15).astype(np.int64)
    buttons[0, BUTTONS_ALL.index("attack")] = 1  # would trigger the stuck-attack rule if newButtons == [0]
    buttons[5] = 0
    bins = rng.integers(0, 11, size=(n, 2))
    bins[5] = 5  # a null frame
    lines = pseudo_label_lines(buttons, undiscretize_camera(bins))
    assert all(line["pseudo_label"] for line in lines)
    infos = convert_lines(json.loads(json.dumps(lines)))
    for t, info in enumerate(infos):
        expected = factored_to_env(buttons[t], bins[t])
        for key in BUTTONS_ALL:
            assert info.env_action[key] == expected[key], (t, key)
        np.testing.assert_allclose(info.env_action["camera"], expected["camera"], atol=1e-6)
        assert info.is_null == (t == 5)


class WindowProbe(torch.nn.Module):
    """A fake IDM that writes, as buttons, the window's first frame id (bits 0-9) and the frame's
    position in the window (bits 10-19); frames carry their index as pixel value."""

    def forward(self, img):
        b, t = img.shape[:2]
        start = img[:, 0, 0, 0, 0].long()
        pos = torch.arange(t)
        value = start[:, None] + 1024 * pos[None, :]  # (B, T)
        bits = (value[..., None] >> torch.arange(20)) & 1  # (B, T, 20)
        buttons = torch.where(torch.nn.functional.one_hot(bits, 2).bool(), 0.0, -10.0)
        camera = torch.zeros(b, t, 2, 11)
        return {"buttons": buttons, "camera": camera}


@pytest.mark.parametrize("n,t,batch", [(100, 16, 3), (40, 8, 1), (5, 8, 2)])
def test_predict_video_takes_each_frame_from_its_own_window(n, t, batch):
    frames = np.zeros((n, 128, 128, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    buttons, _ = predict_video(WindowProbe(), frames, t, batch_size=batch)
    value = (buttons * (1 << np.arange(20))).sum(-1)
    start, pos = value % 1024, value // 1024
    expected = np.empty(n, int)
    for s, _, k0, k1 in plan_windows(n, t):
        expected[k0:k1] = s
    assert (start == expected).all() and (start + pos == np.arange(n)).all()


def _videos(folder, lengths, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(lengths):
        frames = rng.integers(0, 256, size=(n, 128, 128, 3), dtype=np.uint8)
        out.append(write_video(folder / f"v{i}.mp4", frames))
    return out


def test_labels_with_official_idm_checkpoint_match_direct_forward(tmp_path, fixtures_dir):
    (video,) = _videos(tmp_path, [20])
    written = label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", batch_size=2,
                           device="cpu", progress=False)
    assert written == [tmp_path / "v0.jsonl"]
    marker = json.loads((tmp_path / "v0.label.json").read_text())
    assert marker["timesteps"] == 8 and marker["stride"] == 4 and marker["n_frames"] == 20
    actions = load_actions(tmp_path / "v0.jsonl")
    assert len(actions) == 20
    # frames 6..9 belong to the window starting at 4 (its positions 2..5)
    idm = load_idm(fixtures_dir / "idm.model", fixtures_dir / "idm.weights")
    frames = label_mod.read_video_frames(video)
    with torch.no_grad():
        b, c = idm_argmax(idm(torch.from_numpy(frames[None, 4:12])))
    for f in range(6, 10):
        expected = factored_to_env(b[0, f - 4].numpy(), c[0, f - 4].numpy())
        assert all(actions[f][0][k] == expected[k] for k in BUTTONS_ALL)
        np.testing.assert_allclose(actions[f][0]["camera"], expected["camera"], atol=1e-6)


def test_skips_labelled_videos_resumes_and_never_overwrites_true_labels(tmp_path, fixtures_dir, monkeypatch):
    _videos(tmp_path, [12, 9, 10])
    (tmp_path / "v2.jsonl").write_text(json.dumps({"keyboard": {"keys": ["key.keyboard.w"]}}) + "\n")  # true labels
    calls = []
    real = label_mod.predict_video
    monkeypatch.setattr(label_mod, "predict_video", lambda idm, frames, *a, **k: calls.append(len(frames)) or real(idm, frames, *a, **k))
    kw = dict(batch_size=2, device="cpu", progress=False)
    with pytest.warns(DataWarning, match="true"):
        label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert calls == [12, 9]
    assert "pseudo_label" not in (tmp_path / "v2.jsonl").read_text()
    # an interrupted run: v1's jsonl was written but its marker not yet -> only v1 is redone
    (tmp_path / "v1.label.json").unlink()
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert calls == [9]
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", timesteps=4, **kw)
    assert calls == [12, 9]  # other window settings: relabelled


def test_cli_writes_labels(tmp_path, fixtures_dir):
    _videos(tmp_path, [10])
    rc = label_mod.main(["--model", str(fixtures_dir / "idm.model"), "--weights", str(fixtures_dir / "idm.weights"),
                         "--videos", str(tmp_path), "--batch-size", "2", "--device", "cpu", "--no-progress"])
    assert rc == 0 and len(load_actions(tmp_path / "v0.jsonl")) == 10


def test_mean_camera_labels_are_the_posterior_mean_with_the_button_confidence(tmp_path, fixtures_dir):
    from vpt_rl.train.idm import camera_posterior_mean

    (video,) = _videos(tmp_path, [20], seed=3)
    label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", batch_size=2,
                 camera="mean", device="cpu", progress=False)
    lines = [json.loads(s) for s in (tmp_path / "v0.jsonl").read_text().splitlines()]
    actions = load_actions(tmp_path / "v0.jsonl")
    idm = load_idm(fixtures_dir / "idm.model", fixtures_dir / "idm.weights")
    frames = label_mod.read_video_frames(video)
    with torch.no_grad():
        logp = idm(torch.from_numpy(frames[None, 4:12]))
    mean = camera_posterior_mean(logp["camera"])[0].numpy()
    conf = logp["buttons"].max(-1).values.sum(-1).exp()[0].numpy()
    for f in range(6, 10):  # frames 6..9 come from the window starting at 4
        np.testing.assert_allclose(actions[f][0]["camera"], mean[f - 4], atol=1e-3)  # via mouse counts
        assert lines[f]["idm_confidence"] == pytest.approx(float(conf[f - 4]), abs=1e-6)
    with pytest.raises(ValueError, match="camera decoding"):
        label_videos([tmp_path], fixtures_dir / "idm.model", camera="median", progress=False)
