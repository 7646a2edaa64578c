"""One way to build a policy net (checkpoint.build_policy), its public encode/core path, one KL and one schedule."""
import math
import shutil

import pytest
import torch

from vpt_rl.checkpoint import CheckpointError, build_policy, load_policy, policy_config, save_policy
from vpt_rl.model import POLICY_PRESETS, PolicyNet, kl_coef_at, kl_divergence


def test_build_from_model_file_equals_load_policy(fixtures_dir):
    model, weights = fixtures_dir / "policy.model", fixtures_dir / "policy.weights"
    a, b = build_policy(model=model, weights=weights), load_policy(model, weights)
    assert a.cfg == b.cfg and a.temperature == b.temperature == 2.0
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    assert build_policy(model=model, weights=weights, temperature=0.5).temperature == 0.5


def test_build_from_preset_config_alias_and_file(fixtures_dir):
    torch.manual_seed(0)
    net = build_policy(preset="micro", temperature=3.0)
    torch.manual_seed(0)
    ref = PolicyNet(POLICY_PRESETS["micro"], temperature=3.0)  # same random init, same draws
    assert net.temperature == 3.0 and all(torch.equal(net.state_dict()[k], v) for k, v in ref.state_dict().items())
    assert build_policy(config="micro").cfg == POLICY_PRESETS["micro"]  # the old name still works
    assert build_policy(preset=POLICY_PRESETS["micro"].to_kwargs()).cfg == POLICY_PRESETS["micro"]
    from_file = build_policy(preset=str(fixtures_dir / "policy.model"), weights=fixtures_dir / "policy.weights")
    assert from_file.temperature == 2.0 and policy_config(str(fixtures_dir / "policy.model")) == (from_file.cfg, 2.0)


def test_build_errors_name_the_problem(fixtures_dir, tmp_path):
    with pytest.raises(ValueError, match="either model"):
        build_policy(model=fixtures_dir / "policy.model", preset="micro")
    with pytest.raises(ValueError, match="model=<.model file>"):
        build_policy()
    with pytest.raises(ValueError, match="nope"):
        build_policy(preset="nope")
    with pytest.raises(ValueError, match="old name"):
        build_policy(preset="micro", config="tiny")
    save_policy(PolicyNet("micro"), tmp_path / "m.model", tmp_path / "m.weights")
    with pytest.raises(CheckpointError, match="missing keys|wrong shapes"):
        build_policy(preset="tiny", weights=tmp_path / "m.weights")  # strict, weights_only, named keys


def test_features_is_encode_then_core():
    torch.manual_seed(0)
    net = PolicyNet("micro").eval()
    img = torch.randint(0, 256, (2, 3, 128, 128, 3), dtype=torch.uint8)
    first = torch.tensor([[True, False, False], [True, False, True]])
    state = net.initial_state(2)
    with torch.no_grad():
        latent, new_state = net.features(img, first, state)
        latent2, new_state2 = net.core(net.encode(img), first, state)
        trunk, trunk_state = net.net(img, first, state)  # the trunk's own forward gives the same numbers
    assert torch.equal(latent, latent2) and torch.equal(latent, trunk)
    for a, b in zip(new_state, trunk_state):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_one_kl_in_three_forms_and_the_schedule():
    torch.manual_seed(0)
    p = {"buttons": torch.log_softmax(torch.randn(2, 5), -1), "camera": torch.log_softmax(torch.randn(2, 3), -1)}
    q = {"buttons": torch.log_softmax(torch.randn(2, 5), -1), "camera": torch.log_softmax(torch.randn(2, 3), -1)}
    by_dict = kl_divergence(p, q)
    by_split = kl_divergence((p["buttons"], p["camera"]), (q["buttons"], q["camera"]))
    assert torch.equal(by_dict, by_split)
    flat_p, flat_q = torch.cat([p["buttons"], p["camera"]], -1), torch.cat([q["buttons"], q["camera"]], -1)
    by_probs = kl_divergence(flat_p, flat_q, probs_p=flat_p.exp())
    assert torch.allclose(by_dict, by_probs, atol=1e-6) and (by_dict > 0).all()
    assert kl_coef_at(0.2, 0.9995, 0) == 0.2
    assert kl_coef_at(0.2, 0.9995, 1) == 0.2 * 0.9995
    assert math.isclose(kl_coef_at(0.2, 0.9995, 1000), 0.2 * 0.9995 ** 1000)


def test_model_without_weights_takes_the_weights_beside_it_or_fails_naming_both(fixtures_dir, tmp_path):
    model, weights = tmp_path / "start.model", tmp_path / "start.weights"
    shutil.copy(fixtures_dir / "policy.model", model)
    with pytest.raises(CheckpointError) as e:
        build_policy(model=model)  # never a silent random init
    assert str(model) in str(e.value) and str(weights) in str(e.value) and f"preset={str(model)!r}" in str(e.value)
    shutil.copy(fixtures_dir / "policy.weights", weights)
    net, ref = build_policy(model=model), load_policy(fixtures_dir / "policy.model", fixtures_dir / "policy.weights")
    assert all(torch.equal(net.state_dict()[k], v) for k, v in ref.state_dict().items())
    # a random net of that architecture is still there, when asked for by name
    torch.manual_seed(0)
    fresh = build_policy(preset=str(model))
    assert fresh.cfg == ref.cfg and not torch.equal(fresh.state_dict()["pi_head.camera.linear_layer.weight"],
                                                    ref.state_dict()["pi_head.camera.linear_layer.weight"])
