"""Inverse dynamics model: parity with the official code (fixture), the discarded lastlayer, env actions."""
import numpy as np
import pytest
import torch

from vpt_rl.checkpoint import load_idm
from vpt_rl.model import IDM_PRESETS, IDMConfig, IDMNet, idm_argmax, idm_to_env_actions


@pytest.fixture(scope="module")
def idm(fixtures_dir):
    return load_idm(fixtures_dir / "idm.model", fixtures_dir / "idm.weights").eval()


@pytest.fixture(scope="module")
def expected(fixtures_dir):
    return torch.load(fixtures_dir / "idm_expected.pt", weights_only=True)


FAST_PATHS = {
    "default_winograd": dict(),
    "exact_order": dict(winograd=False, micro_batch=8),
    "reference_attention_one_pass": dict(sdpa=False, fast_pool=False, winograd=False, micro_batch=0),
}


@pytest.mark.parametrize("path", list(FAST_PATHS))
def test_idm_log_probs_match_official_fixture(idm, expected, path):
    idm.set_fast(**FAST_PATHS[path])
    try:
        with torch.no_grad():
            logp = idm(expected["img"])
    finally:
        idm.set_fast()
    assert logp["buttons"].shape == (1, 8, 20, 2) and logp["camera"].shape == (1, 8, 2, 11)
    assert (logp["buttons"] - expected["logp"]["buttons"]).abs().max() < 1e-4
    assert (logp["camera"] - expected["logp"]["camera"]).abs().max() < 1e-4
    if path != "default_winograd":  # the exact-order paths reproduce the official numbers much more tightly
        assert (logp["buttons"] - expected["logp"]["buttons"]).abs().max() < 5e-6


def test_idm_windows_with_conv3d_halo_equal_one_pass(idm):
    # 20 frames: the exact path splits them into conv3d windows of 8 with a 2-frame halo each side
    img = torch.randint(0, 256, (1, 20, 128, 128, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        idm.set_fast(winograd=False, micro_batch=0)
        whole = idm(img)
        idm.set_fast(winograd=False, micro_batch=3)
        windowed = idm(img)
        idm.set_fast()
        default = idm(img)
    assert (whole["buttons"] - windowed["buttons"]).abs().max() < 2e-6
    assert (whole["camera"] - windowed["camera"]).abs().max() < 2e-6
    assert (whole["buttons"] - default["buttons"]).abs().max() < 1e-4


def test_idm_argmax_matches_official_fixture(idm, expected):
    buttons, camera = idm.predict(expected["img"])
    assert torch.equal(buttons, expected["argmax"]["buttons"])
    assert torch.equal(camera, expected["argmax"]["camera"])


def test_idm_env_actions_match_official_fixture(idm, expected):
    with torch.no_grad():
        actions = idm_to_env_actions(idm(expected["img"]))
    assert len(actions) == 1 and len(actions[0]) == 8
    want = expected["env_action"]
    for t, act in enumerate(actions[0]):
        for key, arr in want.items():
            if key == "camera":
                np.testing.assert_allclose(np.asarray(act["camera"], dtype=np.float64), arr[0, t].numpy(), atol=1e-4)
            else:
                assert int(act[key]) == int(arr[0, t]), (t, key)
        assert act["ESC"] == 0 and act["pickItem"] == 0 and act["swapHands"] == 0
    # the fixture presses some buttons and moves the camera, so this is not a no-op comparison
    assert any(int(want[k].sum()) > 0 for k in want if k != "camera")
    assert (want["camera"].abs() > 0).any()


def test_idm_discards_lastlayer_as_official(idm, expected):
    # parity: InverseActionNet.forward computes lastlayer and returns final_ln(relu(x)) instead
    with torch.no_grad():
        before = idm(expected["img"])
        saved = idm.net.lastlayer.layer.weight.clone()
        idm.net.lastlayer.layer.weight.mul_(-3.0)
        after = idm(expected["img"])
        idm.net.lastlayer.layer.weight.copy_(saved)
    assert torch.equal(before["buttons"], after["buttons"])


def test_idm_attention_is_bidirectional_within_window(idm, expected):
    img = expected["img"].clone()
    img[:, 7] = 255 - img[:, 7]  # change only the last frame
    with torch.no_grad():
        a, b = idm(expected["img"]), idm(img)
    # frame 0 is outside the temporal conv's reach (kernel 5) but sees frame 7 through attention
    assert (a["buttons"][:, 0] - b["buttons"][:, 0]).abs().max() > 1e-6


def test_idm_config_from_official_kwargs_and_errors():
    kw = IDM_PRESETS["4x_idm"].to_kwargs()
    assert kw["conv3d_params"] == {"inchan": 3, "kernel_size": [5, 1, 1], "outchan": 128, "padding": [2, 0, 0]}
    assert IDMConfig.from_kwargs(kw) == IDM_PRESETS["4x_idm"]
    with pytest.raises(ValueError, match="bidirectional"):
        IDMConfig(attention_memory_size=256)
    with pytest.raises(ValueError, match="img shape|img must have shape"):
        IDMNet("micro_idm")(torch.zeros(1, 4, 64, 64, 3, dtype=torch.uint8))


def test_idm_argmax_of_hand_made_log_probs():
    lb = torch.log(torch.tensor([[0.9, 0.1], [0.2, 0.8]])).repeat(10, 1).view(1, 1, 20, 2)
    lc = torch.log_softmax(torch.zeros(1, 1, 2, 11).index_fill(-1, torch.tensor([7]), 5.0), -1)
    buttons, camera = idm_argmax({"buttons": lb, "camera": lc})
    assert buttons[0, 0].tolist() == [0, 1] * 10 and camera[0, 0].tolist() == [7, 7]
