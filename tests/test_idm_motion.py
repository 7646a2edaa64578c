"""The motion-trunk IDM, posterior-mean camera decoding, the camera metrics and contractor-like recordings."""
import json
import math

import numpy as np
import pytest
import torch

from vpt_rl.actions import camera_bin_centres, discretize_camera
from vpt_rl.checkpoint import load_idm, save_idm
from vpt_rl.envs.minelite.expert import ScriptedExpert, make_expert_env, run_expert_episode
from vpt_rl.model import IDM_PRESETS, IDMConfig, IDMNet, MotionStem
from vpt_rl.train.idm import camera_posterior_mean, idm_loss, idm_metrics, motion_camera_loss, r2_score


def moving_texture(n: int, seed: int):
    """Frames of a window sliding over a smooth random texture: the camera of step t (degrees, any value in
    +-10) moves frame t+1 by 1.6 px per degree of pitch and 1 px per degree of yaw, as MineLite's view does."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    tex = cv2.resize(tex, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    cam = rng.uniform(-10, 10, size=(n, 2))
    pos = np.array([448.0, 448.0])
    frames = []
    for t in range(n):
        y, x = (int(round(v)) for v in pos)
        frames.append(tex[y:y + 128, x:x + 128])
        pos = np.clip(pos + cam[t] * np.array([1.6, 1.0]), 20, 1024 - 150)
    return torch.as_tensor(np.stack(frames)), cam


def train_camera(preset: str, frames, cam, steps: int = 40, seq: int = 16) -> float:
    """Train ``preset`` on windows of the moving texture (camera targets only, all buttons 0) and return the
    posterior-mean camera R^2 on held-out frames."""
    torch.manual_seed(0)
    net = IDMNet(IDM_PRESETS[preset]).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    n_train = frames.shape[0] - 64
    bins = torch.as_tensor(discretize_camera(cam))
    prior = torch.zeros(2, 11)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        starts = rng.integers(0, n_train - seq, size=2)
        img = torch.stack([frames[s:s + seq] for s in starts])
        c = torch.stack([bins[s:s + seq] for s in starts])
        mask = torch.ones(2, seq, dtype=torch.bool)
        mask[:, -1] = False  # the last frame of a window never sees its next frame
        logp = net(img, return_motion=net.motion is not None)
        loss = idm_loss(logp, torch.zeros(2, seq, 20, dtype=torch.long), c, mask)
        if net.motion is not None:
            loss = loss + motion_camera_loss(logp["motion_camera"], prior, c, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        img = frames[n_train:].view(2, 32, 128, 128, 3)
        pred = camera_posterior_mean(net(img)["camera"]).reshape(64, 2).numpy()
    keep = np.ones(64, bool)
    keep[[31, 63]] = False
    return r2_score(pred[keep], cam[n_train:][keep])


def test_motion_trunk_idm_learns_known_shifts_where_the_plain_idm_does_not():
    frames, cam = moving_texture(400, seed=3)
    r2_motion = train_camera("micro_idm_motion", frames, cam)
    r2_plain = train_camera("micro_idm", frames, cam)
    assert r2_motion >= 0.9, r2_motion
    assert r2_plain < 0.5, r2_plain


def test_cost_volume_minimum_sits_at_the_true_shift():
    frames, _ = moving_texture(2, seed=0)
    big = torch.as_tensor(np.pad(frames[0].numpy(), ((40, 40), (40, 40), (0, 0)), mode="reflect"))
    f0 = big[40:168, 40:168]
    f1 = big[40 + 8:168 + 8, 40 - 6:168 - 6]  # content moves up 8 px and right 6 px (4 and 3 at 64x64)
    vol = MotionStem.cost_volume(torch.stack([f0, f1])[None])
    assert vol.shape == (1, 2, 3825)
    assert torch.count_nonzero(vol[0, 1]) == 0  # the last frame has no next frame
    per_shift = vol[0, 0].view(9, 25, 17).mean(0)
    dy, dx = divmod(int(per_shift.argmin()), 17)
    assert (dy - 12, dx - 8) == (-4, 3)
    # z-scored per region
    regions = vol[0, 0].view(9, -1)
    assert torch.allclose(regions.mean(1), torch.zeros(9), atol=1e-4)
    assert torch.allclose(regions.std(1), torch.ones(9), atol=1e-3)


def test_motion_idm_survives_save_and_load_with_identical_outputs(tmp_path):
    torch.manual_seed(1)
    net = IDMNet(IDM_PRESETS["micro_idm_motion"]).eval()
    with torch.no_grad():
        net.motion.camera.weight.normal_()  # zero at init: make the camera branch matter
    img = torch.randint(0, 256, (1, 8, 128, 128, 3), dtype=torch.uint8)
    save_idm(net, tmp_path / "m.model", tmp_path / "m.weights")
    back = load_idm(tmp_path / "m.model", tmp_path / "m.weights").eval()
    assert back.cfg.motion_hidden == 256 and back.cfg == net.cfg
    with torch.no_grad():
        a, b = net(img), back(img)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert {k for k in back.state_dict() if k.startswith("motion.")} == {
        f"motion.{m}.{p}" for m in ("mlp.0", "mlp.2", "embed", "camera", "buttons") for p in ("weight", "bias")}


def test_official_idm_configs_have_no_motion_key_and_bad_values_are_refused():
    for name in ("4x_idm", "tiny_idm", "micro_idm"):
        assert "motion_hidden" not in IDM_PRESETS[name].to_kwargs()
        assert not any(k.startswith("motion") for k in IDMNet(IDM_PRESETS["micro_idm"]).state_dict())
    kw = IDM_PRESETS["micro_idm_motion"].to_kwargs()
    assert kw["motion_hidden"] == 256 and IDMConfig.from_kwargs(kw) == IDM_PRESETS["micro_idm_motion"]
    with pytest.raises(ValueError, match="motion_hidden"):
        IDM_PRESETS["micro_idm"].replace(motion_hidden=-1)
    with pytest.raises(ValueError, match="128x128"):
        IDM_PRESETS["micro_idm"].replace(motion_hidden=8, img_shape=(64, 64, 8))


def test_posterior_mean_is_the_expected_bin_centre():
    c = camera_bin_centres()
    p = torch.zeros(1, 2, 11)
    p[0, 0, 10], p[0, 0, 0] = 0.75, 0.25  # pitch: 0.75 * 10 + 0.25 * -10 = 5
    p[0, 1, 7] = 1.0  # yaw: one bin
    got = camera_posterior_mean(p.clamp_min(1e-30).log())
    assert got[0, 0].item() == pytest.approx(5.0, abs=1e-4)
    assert got[0, 1].item() == pytest.approx(c[7], abs=1e-4)


def test_sign_accuracy_counts_moves_of_five_degrees_and_more():
    true = np.array([[6.0, -7.0], [-5.0, 1.0], [2.0, 9.0], [-8.0, -5.0]])
    pred_bins = discretize_camera(np.array([[3.0, -2.0], [0.0, 0.0], [-4.0, -3.0], [-1.0, 4.0]]))
    mean = np.array([[1.0, -1.0], [-0.5, 0.0], [0.0, 2.0], [2.0, -0.1]])
    zeros = np.zeros((4, 20))
    m = idm_metrics(zeros, zeros, pred_bins, true, pred_deg_mean=mean)
    # pitch moves >= 5: rows 0, 1, 3; argmax signs +, 0 (wrong), - -> 2/3; mean signs +, -, + -> 2/3
    assert m["camera_sign_accuracy_pitch"] == pytest.approx(2 / 3)
    assert m["camera_sign_accuracy_pitch_mean"] == pytest.approx(2 / 3)
    # yaw moves >= 5: rows 0, 2, 3; argmax -, -, + -> 1/3; mean -, +, - -> 1
    assert m["camera_sign_accuracy_yaw"] == pytest.approx(1 / 3)
    assert m["camera_sign_accuracy_yaw_mean"] == pytest.approx(1.0)
    assert m["camera_r2_pitch_mean"] == pytest.approx(r2_score(mean[:, 0], true[:, 0]))


def test_motion_camera_loss_is_the_masked_nll_under_prior_plus_logits():
    logits = torch.zeros(1, 3, 2, 11)
    logits[0, 0, 0, 4] = math.log(3.0)
    prior = torch.zeros(2, 11)
    cam = torch.full((1, 3, 2), 4, dtype=torch.long)
    mask = torch.tensor([[True, True, True]])
    # frame 0: pitch p = 3/13, yaw 1/11; frame 1: 1/11 both; frame 2 is the window's last: skipped
    want = (-(math.log(3 / 13) + math.log(1 / 11)) - 2 * math.log(1 / 11)) / 2
    assert motion_camera_loss(logits, prior, cam, mask).item() == pytest.approx(want, rel=1e-5)


def _bins(actions):
    return discretize_camera(np.array([a["camera"] for a in actions], dtype=np.float64))


def test_camera_noise_covers_every_bin_of_both_axes_and_is_deterministic():
    _, a1, _ = run_expert_episode(7, 600, render=False, camera_noise=0.5)
    _, a2, _ = run_expert_episode(7, 600, render=False, camera_noise=0.5)
    b = _bins(a1)
    for axis in (0, 1):
        assert set(np.unique(b[:, axis])) == set(range(11)), axis
    assert np.array_equal(b, _bins(a2))
    assert all(np.array_equal(x["camera"], y["camera"]) for x, y in zip(a1, a2))
    _, a0, _ = run_expert_episode(7, 600, render=False)
    # plain play is far more concentrated on the zero bin than contractor-like play
    assert (_bins(a0) == 5).mean() > (b == 5).mean() + 0.05


def test_expert_with_camera_noise_still_reaches_its_milestones():
    _, _, infos = run_expert_episode(1, 1500, render=False, camera_noise=0.5, stop_at="wooden_pickaxe")
    assert {"oak_log", "crafting_table", "wooden_pickaxe"} <= set(infos[-1]["milestones"])


def test_scene_independent_pitch_moves_stay_within_seventy_degrees():
    env = make_expert_env(0, 10, render=False)
    env.reset(seed=0)
    ex = ScriptedExpert(env, seed=0, camera_noise=1.0)
    for pitch in (-68.0, -40.0, 0.0, 55.0, 69.0):
        env.unwrapped.player.pitch = pitch
        moves = np.array([ex.scene_independent_camera() for _ in range(300)])
        assert (np.abs(pitch + moves[:, 0]) <= 70.0 + 1e-9).all() or abs(pitch) + 12 <= 70
        assert np.abs(moves).max() <= ex.max_turn + 1e-9
    with pytest.raises(ValueError, match="camera_noise"):
        ScriptedExpert(env, camera_noise=1.5)


def test_motion_cache_holds_each_pairs_cost_volume_and_masks_screen_frames(tmp_path):
    from vpt_rl.data.synthetic import write_synthetic_segment
    from vpt_rl.train.idm import MotionCache
    from vpt_rl.train.label import read_video_frames

    segs = [write_synthetic_segment(tmp_path / f"s{i}", 20 + 10 * i, seed=i, gui_prob=0.3) for i in range(2)]
    cache = MotionCache(segs, seed=0)
    assert len(cache) == 19 + 29 and cache.starts.tolist()[-1] == 48
    for lo, hi in zip(cache.starts[:-1].tolist(), cache.starts[1:].tolist()):
        mp4 = segs[0] if hi - lo == 19 else segs[1]
        frames = torch.from_numpy(read_video_frames(mp4))
        want = MotionStem.cost_volume(frames[None])[0, :-1]
        assert torch.allclose(cache.volumes[lo:hi].float(), want, atol=2e-2)  # float16
        gui = [json.loads(s)["isGuiOpen"] for s in mp4.with_suffix(".jsonl").read_text().splitlines()]
        assert cache.valid[lo:hi].tolist() == [not (gui[t] or gui[t + 1]) for t in range(hi - lo)]
    vol, cam, btn, mask, idx = cache.sample(50, 8, torch.Generator().manual_seed(0))
    assert vol.shape == (50, 8, 3825) and cam.shape == (50, 8, 2) and btn.shape == (50, 8, 20)
    assert torch.equal(vol, cache.volumes[idx].float()) and torch.equal(cam, cache.camera[idx])
    # every window is consecutive rows inside one segment
    starts = cache.starts.tolist()
    for row in idx.tolist():
        seg = max(i for i, s in enumerate(starts[:-1]) if s <= row[0])
        assert row == list(range(row[0], row[0] + 8)) and row[-1] < starts[seg + 1]
    assert (mask == cache.valid[idx]).all()


def test_motion_context_is_saved_and_must_be_an_odd_kernel_with_a_trunk(tmp_path):
    cfg = IDM_PRESETS["micro_idm_motion_ctx"]
    assert cfg.to_kwargs()["motion_context"] == 5 and IDMConfig.from_kwargs(cfg.to_kwargs()) == cfg
    net = IDMNet(cfg).eval()
    with torch.no_grad():
        net.motion.context.weight.normal_(0, 0.05)
    save_idm(net, tmp_path / "c.model", tmp_path / "c.weights")
    back = load_idm(tmp_path / "c.model", tmp_path / "c.weights").eval()
    img = torch.randint(0, 256, (1, 6, 128, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(net(img)["camera"], back(img)["camera"])
    with pytest.raises(ValueError, match="motion_context"):
        cfg.replace(motion_context=4)
    with pytest.raises(ValueError, match="motion_context"):
        IDM_PRESETS["micro_idm"].replace(motion_context=3)
