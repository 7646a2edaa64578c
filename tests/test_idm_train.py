"""IDM training: loss and metrics against hand-computed values, and a tiny IDM overfitting a tiny recording."""
import json
import math

import numpy as np
import pytest
import torch

from vpt_rl.actions import undiscretize_camera
from vpt_rl.checkpoint import load_idm, save_idm
from vpt_rl.data.synthetic import write_synthetic_segment
from vpt_rl.model import IDMConfig, IDMNet
from vpt_rl.train.args import parse_args
from vpt_rl.train.idm import Args, idm_loss, idm_metrics, r2_score, train_idm

# smaller than the tiny_idm preset so that a CPU test overfits in a few seconds
NANO_IDM = IDMConfig(hidsize=32, impala_width=1, impala_chans=(4, 4, 4), attention_heads=2, attention_memory_size=16,
                     timesteps=16, n_recurrence_layers=1, img_shape=(128, 128, 4), conv3d_outchan=4)


def test_idm_loss_is_masked_sum_of_button_and_camera_nll():
    logp = {"buttons": torch.log_softmax(torch.randn(1, 2, 20, 2), -1), "camera": torch.log_softmax(torch.randn(1, 2, 2, 11), -1)}
    buttons = torch.randint(0, 2, (1, 2, 20))
    camera = torch.randint(0, 11, (1, 2, 2))
    mask = torch.tensor([[True, False]])
    expected = -(sum(logp["buttons"][0, 0, i, buttons[0, 0, i]] for i in range(20))
                 + sum(logp["camera"][0, 0, a, camera[0, 0, a]] for a in range(2)))
    torch.testing.assert_close(idm_loss(logp, buttons, camera, mask), expected)


def test_r2_and_keypress_metrics_hand_computed():
    assert r2_score([1, 2, 3], [1, 2, 3]) == 1.0
    assert r2_score([2, 2, 2], [1, 2, 3]) == 0.0  # predicting the mean
    assert math.isclose(r2_score([1, 2, 4], [1, 2, 3]), 1 - 1 / 2)
    true_b = np.zeros((4, 20), int)
    true_b[0, 2] = 1
    pred_b = true_b.copy()
    pred_b[1, 5] = 1  # one wrong button on frame 1
    bins = np.array([[5, 5], [5, 7], [3, 5], [5, 5]])
    m = idm_metrics(pred_b, true_b, bins, undiscretize_camera(bins))
    assert m["keypress_accuracy"] == 0.75
    assert math.isclose(m["button_accuracy"], 1 - 1 / 80)
    assert m["button_accuracy_per_key"]["right"] == 0.75  # index 5 is "right"
    assert m["pressed_recall"] == 1.0
    assert math.isclose(m["camera_r2"], 1.0) and m["camera_bin_accuracy"] == 1.0


def test_cli_aliases_used_by_the_pipeline_parse():
    a = parse_args(Args, ["--data", "d", "--config", "micro_idm", "--steps", "7", "--out", "o"])
    assert (a.data, a.preset, a.total_steps, a.out_dir) == (["d"], "micro_idm", 7, "o")
    assert parse_args(Args, ["d1", "d2", "--no-resume"]).data == ["d1", "d2"]


def test_tiny_idm_overfits_tiny_recording(tmp_path):
    torch.manual_seed(0)
    seg = write_synthetic_segment(tmp_path / "data" / "rec", 16, seed=5, press_prob=0.3, camera_prob=0.6)
    init = IDMNet(NANO_IDM)
    save_idm(init, tmp_path / "init.model", tmp_path / "init.weights")
    args = Args(data=[str(seg)], val_data=[str(seg)], init_model=str(tmp_path / "init.model"), seq_len=16,
                batch_size=1, total_steps=80, lr=3e-3, weight_decay=0.0, warmup_steps=0, eval_every=0,
                save_every=0, out_dir=str(tmp_path / "idm"), device="cpu", progress=False)
    path = train_idm(args)
    assert path == tmp_path / "idm" / "idm.model"
    final = json.loads((tmp_path / "idm" / "metrics.json").read_text())["final"]
    assert final["n_frames"] == 16
    assert final["keypress_accuracy"] >= 0.9
    assert final["camera_bin_accuracy"] >= 0.9
    assert final["camera_r2"] >= 0.9
    # the checkpoint is in the official format and gives the same predictions
    net = load_idm(path, tmp_path / "idm" / "idm.weights")
    assert net.cfg == NANO_IDM
    state = torch.load(tmp_path / "idm" / "train_state.pt", weights_only=True)
    assert state["step"] == 80


def test_empty_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="args.data is empty"):
        train_idm(Args(data=[], out_dir=str(tmp_path)))


def test_prior_log_probs_hand_computed():
    from vpt_rl.train.prior import prior_log_probs

    lp = prior_log_probs(np.array([[3, 1], [0, 4]]), smoothing=0.5)
    # (count + 0.5) / (4 + 0.5 * 2)
    np.testing.assert_allclose(np.exp(lp), [[3.5 / 5, 1.5 / 5], [0.5 / 5, 4.5 / 5]])
    with pytest.raises(ValueError, match="smoothing"):
        prior_log_probs(np.ones(3), smoothing=0.0)
    with pytest.raises(ValueError, match="non-negative"):
        prior_log_probs(np.array([1, -1]))


def test_idm_label_counts_match_the_dataset_targets(tmp_path):
    from vpt_rl.data.dataset import SequenceDataset, make_loader
    from vpt_rl.train.idm import idm_label_counts

    seg = write_synthetic_segment(tmp_path / "rec", 24, seed=3, press_prob=0.3, camera_prob=0.6)
    b, c = idm_label_counts([seg])
    assert b.sum(1).tolist() == [24] * 20 and c.sum(1).tolist() == [24, 24]
    ds = SequenceDataset([seg], batch_size=1, seq_len=24, skip_null=False, pack=False, epochs=1, shuffle=False)
    batch = next(iter(make_loader(ds)))
    m = batch["mask"][0]
    flags, bins = batch["idm_buttons"][0][m].numpy(), batch["idm_camera"][0][m].numpy()
    np.testing.assert_array_equal(b[:, 1], flags.sum(0))
    for axis in range(2):
        np.testing.assert_array_equal(c[axis], np.bincount(bins[:, axis], minlength=11))


def test_prior_init_makes_a_fresh_idm_predict_the_label_frequencies(tmp_path):
    from vpt_rl.train.idm import idm_label_counts, init_idm_heads

    torch.manual_seed(0)
    seg = write_synthetic_segment(tmp_path / "rec", 16, seed=5, press_prob=0.3, camera_prob=0.6)
    net = IDMNet(NANO_IDM, temperature=2.0)
    init_idm_heads(net, [seg])
    b, c = idm_label_counts([seg])
    with torch.no_grad():
        logp = net(torch.randint(0, 256, (1, 16, 128, 128, 3), dtype=torch.uint8))
    p_b = logp["buttons"].exp().mean((0, 1)).numpy()  # (20, 2)
    p_c = logp["camera"].exp().mean((0, 1)).numpy()  # (2, 11)
    # smoothed frequencies (pseudo-count 0.1); the near-zero head weights move them by < 0.01
    np.testing.assert_allclose(p_b, (b + 0.1) / (16 + 0.2), atol=0.01)
    np.testing.assert_allclose(p_c, (c + 0.1) / (16 + 1.1), atol=0.01)


def test_mirror_batch_flips_frames_and_swaps_mirrored_labels():
    from vpt_rl.actions import BUTTONS_ALL
    from vpt_rl.train.idm import mirror_batch

    img = torch.zeros(2, 1, 128, 128, 3, dtype=torch.uint8)
    img[:, 0, 5, 0] = 200  # a bright pixel in the left-most column
    buttons = torch.zeros(2, 1, 20, dtype=torch.long)
    for name in ("left", "hotbar.2", "attack"):
        buttons[:, 0, BUTTONS_ALL.index(name)] = 1
    camera = torch.tensor([[[3, 8]], [[3, 8]]])
    deg = torch.tensor([[[-1.5, 4.0]], [[-1.5, 4.0]]])
    batch = {"img": img, "idm_buttons": buttons, "idm_camera": camera, "camera_deg": deg}
    out = mirror_batch(batch, torch.tensor([True, False]))
    assert out["img"][0, 0, 5, 127].tolist() == [200, 200, 200] and out["img"][0, 0, 5, 0].sum() == 0
    pressed = {BUTTONS_ALL[i] for i in torch.nonzero(out["idm_buttons"][0, 0]).flatten().tolist()}
    assert pressed == {"right", "hotbar.8", "attack"}
    assert out["idm_camera"][0, 0].tolist() == [3, 2]  # pitch kept, yaw bin 8 -> 10 - 8
    assert out["camera_deg"][0, 0].tolist() == [-1.5, -4.0]
    for k in ("img", "idm_buttons", "idm_camera", "camera_deg"):  # the unselected row and the input are untouched
        assert torch.equal(out[k][1], batch[k][1])
    assert batch["img"][0, 0, 5, 0].tolist() == [200, 200, 200] and batch["idm_camera"][0, 0, 1] == 8
    twice = mirror_batch(out, torch.tensor([True, False]))
    for k in ("img", "idm_buttons", "idm_camera", "camera_deg"):
        assert torch.equal(twice[k], batch[k])


def test_mirror_aug_outside_zero_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mirror_aug must be a probability"):
        train_idm(Args(data=[str(tmp_path)], mirror_aug=1.5, out_dir=str(tmp_path / "out")))


def test_idm_training_layout_gives_the_same_outputs_as_the_exact_layout():
    # with autograd on the IDM CNN runs on channels-last memory (fast backward); values match the exact path
    torch.manual_seed(0)
    net = IDMNet(NANO_IDM).eval()
    img = torch.randint(0, 256, (1, 8, 128, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        exact = net(img)
    train = net(img)
    for k in ("buttons", "camera"):
        assert torch.allclose(train[k], exact[k], atol=1e-4), (k, (train[k] - exact[k]).abs().max())
