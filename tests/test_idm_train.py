"""IDM training: loss and metrics against hand-computed values, and a tiny IDM overfitting a tiny recording."""
import json
import math

import numpy as np
import pytest
import torch

from vpt_rl.actions import undiscretize_camera
from vpt_rl.checkpoint import load_idm, save_idm
from vpt_rl.model import IDMConfig, IDMNet
from vpt_rl.train.common import parse_args, write_synthetic_segment
from vpt_rl.train.idm import Args, idm_loss, idm_metrics, r2_score, train_idm

# smaller than the tiny_idm preset so that a CPU test overfits in a few seconds
NANO_IDM = IDMConfig(hidsize=32, impala_width=1, impala_chans=(4, 4, 4), attention_heads=2, attention_memory_size=16,
                     timesteps=16, n_recurrence_layers=1, img_shape=(128, 128, 4), conv3d_outchan=4)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded shared CPU two spinning threads are many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
