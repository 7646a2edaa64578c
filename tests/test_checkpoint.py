"""Checkpoint I/O: safe .model reading, strict .weights loading, round trips, released-name resolver."""
import os
import pickle

import numpy as np
import pytest
import torch

from vpt_rl.checkpoint import (
    DOWNLOAD_URL,
    CheckpointError,
    load_idm,
    load_policy,
    read_model_file,
    resolve_released,
    save_idm,
    save_policy,
)
from vpt_rl.model import IDMNet, PolicyNet


class _Payload:
    """Pickles to ``os.system('touch <marker>')``: running it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_model(path, marker):
    d = {"model": {"args": {"net": {"args": {"hidsize": _Payload(marker)}}, "pi_head_opts": {"temperature": 1.0}}}}
    path.write_bytes(pickle.dumps(d))


def _policy_outputs(net, img, first):
    with torch.no_grad():
        logp, vpred, _ = net(img, first, net.initial_state(img.shape[0]))
    return logp, vpred


def test_fixture_checkpoint_loads_and_reproduces_official_outputs(fixtures_dir):
    net = load_policy(fixtures_dir / "policy.model", fixtures_dir / "policy.weights")
    assert net.temperature == 2.0 and net.cfg.hidsize == 32 and net.cfg.maxlen == 4
    exp = torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)
    # first call of chunk mode: 8 frames from an empty memory, flags at chunk start only
    logp, _ = _policy_outputs(net, exp["img"][:, :8], exp["chunk_first"][:, :8])
    assert (logp["buttons"] - exp["chunk"]["buttons"][:, :8, 0]).abs().max() < 1e-4
    assert (logp["camera"] - exp["chunk"]["camera"][:, :8, 0]).abs().max() < 1e-4
    idm = load_idm(fixtures_dir / "idm.model", fixtures_dir / "idm.weights")
    iexp = torch.load(fixtures_dir / "idm_expected.pt", weights_only=True)
    with torch.no_grad():
        ilogp = idm(iexp["img"])
    assert (ilogp["buttons"] - iexp["logp"]["buttons"]).abs().max() < 1e-4


def test_hostile_model_pickle_is_refused_without_running_payload(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.model"
    _hostile_model(bad, marker)
    with pytest.raises(CheckpointError, match="refus.*posix.system|refus.*os.system|refusing to import"):
        read_model_file(bad)
    with pytest.raises(CheckpointError, match="refusing to import"):
        load_policy(bad, None)
    assert not marker.exists()
    # sanity: the file really is hostile (plain pickle.load would run it)
    pickle.loads(bad.read_bytes())
    assert marker.exists()


def test_model_pickle_importing_builtins_is_refused(tmp_path):
    bad = tmp_path / "eval.model"
    bad.write_bytes(pickle.dumps({"model": {"args": {"net": {"args": {"f": print}}}}}))
    with pytest.raises(CheckpointError, match="builtins.print"):
        read_model_file(bad)


def test_truncated_files_are_refused(tmp_path, fixtures_dir):
    w = (fixtures_dir / "policy.weights").read_bytes()
    (tmp_path / "cut.weights").write_bytes(w[: len(w) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_policy(fixtures_dir / "policy.model", tmp_path / "cut.weights")
    m = (fixtures_dir / "policy.model").read_bytes()
    (tmp_path / "cut.model").write_bytes(m[: len(m) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_model_file(tmp_path / "cut.model")
    with pytest.raises(CheckpointError, match="not found"):
        load_policy(tmp_path / "nope.model")


def test_weights_with_code_are_refused_by_weights_only(tmp_path, fixtures_dir):
    marker = tmp_path / "pwned"
    torch.save({"net.x": _Payload(marker)}, tmp_path / "evil.weights")
    with pytest.raises(CheckpointError, match="unsafe|corrupt"):
        load_policy(fixtures_dir / "policy.model", tmp_path / "evil.weights")
    assert not marker.exists()


def test_key_and_shape_mismatches_name_the_keys(tmp_path, fixtures_dir):
    sd = torch.load(fixtures_dir / "policy.weights", weights_only=True)
    sd.pop("net.final_ln.bias")
    sd["net.extra.weight"] = torch.zeros(3)
    sd["value_head.linear.weight"] = torch.zeros(2, 32)
    torch.save(sd, tmp_path / "bad.weights")
    with pytest.raises(CheckpointError) as e:
        load_policy(fixtures_dir / "policy.model", tmp_path / "bad.weights")
    msg = str(e.value)
    assert "missing keys (1): net.final_ln.bias" in msg
    assert "unexpected keys (1): net.extra.weight" in msg
    assert "value_head.linear.weight: file (2, 32) vs net (1, 32)" in msg


def test_unknown_config_key_and_wrong_kind_are_refused(tmp_path, fixtures_dir):
    d = read_model_file(fixtures_dir / "policy.model")
    d["model"]["args"]["net"]["args"]["hidsize_typo"] = 3
    (tmp_path / "typo.model").write_bytes(pickle.dumps(d))
    with pytest.raises(CheckpointError, match="hidsize_typo"):
        load_policy(tmp_path / "typo.model")
    with pytest.raises(CheckpointError, match="use load_idm"):
        load_policy(fixtures_dir / "idm.model")
    with pytest.raises(CheckpointError, match="use load_policy"):
        load_idm(fixtures_dir / "policy.model")


def test_policy_round_trip_gives_identical_outputs(tmp_path, fixtures_dir):
    net = load_policy(fixtures_dir / "policy.model", fixtures_dir / "policy.weights")
    net.update_value_normalizer(torch.tensor([3.0, 5.0]))  # non-default normaliser must survive too
    save_policy(net, tmp_path / "out" / "p.model", tmp_path / "out" / "p.weights")
    assert sorted(os.listdir(tmp_path / "out")) == ["p.model", "p.weights"]  # no temp files left behind
    back = load_policy(tmp_path / "out" / "p.model", tmp_path / "out" / "p.weights")
    assert back.cfg == net.cfg and back.temperature == net.temperature
    img = torch.randint(0, 256, (2, 3, 128, 128, 3), dtype=torch.uint8)
    first = torch.tensor([[True, False, False], [True, False, True]])
    a, va = _policy_outputs(net, img, first)
    b, vb = _policy_outputs(back, img, first)
    assert torch.equal(a["buttons"], b["buttons"]) and torch.equal(a["camera"], b["camera"])
    assert torch.equal(net.denormalize_value(va), back.denormalize_value(vb))
    # the written .model is plain data in the official layout
    d = read_model_file(tmp_path / "out" / "p.model")
    assert d["model"]["args"]["pi_head_opts"] == {"temperature": 2.0}
    assert d["model"]["args"]["net"]["args"]["hidsize"] == 32


def test_idm_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    net = IDMNet("micro_idm")
    save_idm(net, tmp_path / "i.model", tmp_path / "i.weights")
    back = load_idm(tmp_path / "i.model", tmp_path / "i.weights")
    img = torch.randint(0, 256, (1, 6, 128, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        a, b = net(img), back(img)
    assert torch.equal(a["buttons"], b["buttons"]) and torch.equal(a["camera"], b["camera"])
    with pytest.raises(TypeError, match="IDMNet"):
        save_idm(PolicyNet("micro"), tmp_path / "x.model", tmp_path / "x.weights")


def test_resolve_released_finds_files_or_says_where_to_download(tmp_path):
    with pytest.raises(CheckpointError) as e:
        resolve_released("rl-from-house-2x", tmp_path)
    assert DOWNLOAD_URL.format(file="2x.model") in str(e.value)
    assert DOWNLOAD_URL.format(file="rl-from-house-2x.weights") in str(e.value)
    (tmp_path / "2x.model").write_bytes(b"x")
    (tmp_path / "rl-from-house-2x.weights").write_bytes(b"x")
    assert resolve_released("rl-from-house-2x", tmp_path) == (str(tmp_path / "2x.model"),
                                                              str(tmp_path / "rl-from-house-2x.weights"))
    (tmp_path / "rl-from-house-2x.model").write_bytes(b"x")  # a model file of its own wins
    assert resolve_released("rl-from-house-2x", tmp_path)[0] == str(tmp_path / "rl-from-house-2x.model")
    with pytest.raises(CheckpointError, match="unknown released checkpoint"):
        resolve_released("foundation-model-9x", tmp_path)
    with pytest.raises(CheckpointError, match="4x_idm.weights"):
        resolve_released("4x_idm", tmp_path)


# ---------------------------------------------------------------------------------------- `vpt-rl demo`


def test_demo_cli_prints_the_policy_actions_on_the_fixture_checkpoint(fixtures_dir, capsys):
    from vpt_rl.actions import agent_to_env
    from vpt_rl.cli import main
    from vpt_rl.commands.demo import random_frames

    model, weights = str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights")
    assert main(["demo", "--model", model, "--weights", weights, "--random", "--steps", "4", "--deterministic"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step")]
    assert len(lines) == 4
    # recompute the deterministic actions directly from the network on the same frames
    net = load_policy(model, weights)
    state = net.initial_state(1)
    for n, (frame, line) in enumerate(zip(random_frames(4, 0), lines)):
        img = torch.from_numpy(frame).view(1, 1, 128, 128, 3)
        with torch.no_grad():
            logp, _, state = net(img, torch.tensor([[n == 0]]), state)
        b, c = int(logp["buttons"].argmax()), int(logp["camera"].argmax())
        assert f"(buttons {b}, camera {c}," in line
        pressed = [k for k, v in agent_to_env(b, c).items() if k != "camera" and v]
        assert line.split(": ", 1)[1].startswith(" ".join(pressed) or "(no buttons)")


def test_demo_cli_reads_a_video_as_rgb(tmp_path, fixtures_dir, capsys):
    import cv2

    from vpt_rl.cli import main
    from vpt_rl.commands.demo import video_frames

    path = str(tmp_path / "blue.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), (255, 0, 0), dtype=np.uint8))  # pure blue in OpenCV's BGR
    writer.release()
    frames = list(video_frames(path, 10))
    assert len(frames) == 3 and frames[0].shape == (128, 128, 3)
    assert frames[0][..., 2].min() > 200 and frames[0][..., 0].max() < 60  # blue lands in the RGB B channel
    rc = main(["demo", "--model", str(fixtures_dir / "policy.model"), "--weights", str(fixtures_dir / "policy.weights"),
               "--video", path, "--steps", "5"])
    out = capsys.readouterr().out
    assert rc == 0 and out.count("\nstep") == 3 and "video ended after 3 frames" in out
    assert main(["demo", "--model", str(fixtures_dir / "policy.model"), "--weights", str(tmp_path / "none.weights")]) == 1
