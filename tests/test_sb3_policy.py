"""VPTPolicy (policies/sb3/policy.py): strict loading, image layout, per-env memory through predict/evaluate_policy."""
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

from conftest import CueEnv
from vpt_rl.checkpoint import load_policy
from vpt_rl.model import POLICY_PRESETS
from vpt_rl.policies.sb3 import VPTPPO, VPTPolicy, VPTStates, check_vpt_spaces

ACTIONS = spaces.MultiDiscrete([8641, 121])
OBS = spaces.Dict({"pov": spaces.Box(0, 255, (128, 128, 3), np.uint8)})


def _lr(_):
    return 1e-4


def _fixture_policy(fixtures_dir, **kw):
    return VPTPolicy(OBS, ACTIONS, _lr, model=str(fixtures_dir / "policy.model"), weights=str(fixtures_dir / "policy.weights"), **kw)


def test_released_weights_load_strictly_without_reinit(fixtures_dir):
    sd = torch.load(fixtures_dir / "policy.weights", weights_only=True)
    pol = _fixture_policy(fixtures_dir, reset_value_head=False)
    got = pol.vpt.state_dict()
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert torch.equal(got[k], v), k  # no orthogonal re-init, no silent non-strict load
    assert pol.vpt.temperature == 2.0  # from the .model file
    for k, v in pol.prior.state_dict().items():
        assert torch.equal(v, sd[k]), k  # the prior is the starting network


def test_value_head_zeroed_by_default_rest_untouched(fixtures_dir):
    sd = torch.load(fixtures_dir / "policy.weights", weights_only=True)
    pol = _fixture_policy(fixtures_dir)
    got = pol.vpt.state_dict()
    for k, v in sd.items():
        if k.startswith("value_head."):
            assert torch.count_nonzero(got[k]) == 0, k
        else:
            assert torch.equal(got[k], v), k
    assert all(p.requires_grad is False for p in pol.prior.parameters())
    trainable = {id(p) for p in pol.trainable_parameters()}
    optimized = {id(p) for g in pol.optimizer.param_groups for p in g["params"]}
    assert optimized == trainable and not trainable & {id(p) for p in pol.prior.parameters()}
    assert isinstance(pol.optimizer, torch.optim.AdamW) and pol.optimizer.defaults["weight_decay"] == 0.04


def test_config_from_preset_and_model_file(fixtures_dir):
    from_file = VPTPolicy(OBS, ACTIONS, _lr, config=str(fixtures_dir / "policy.model"))
    official = load_policy(fixtures_dir / "policy.model")
    assert from_file.cfg == official.cfg and from_file.vpt.temperature == 2.0
    assert from_file.cfg == POLICY_PRESETS["micro"]  # the fixture is the micro preset
    preset = VPTPolicy(OBS, ACTIONS, _lr, config="micro", with_prior=False)
    assert preset.cfg == POLICY_PRESETS["micro"] and preset.prior is None and preset.vpt.temperature == 1.0
    with pytest.raises(ValueError, match="nope"):
        VPTPolicy(OBS, ACTIONS, _lr, config="nope")
    with pytest.raises(ValueError, match="either model"):
        VPTPolicy(OBS, ACTIONS, _lr, model=str(fixtures_dir / "policy.model"), config="micro")


def test_freeze_cnn_keeps_cnn_out_of_the_optimizer():
    pol = VPTPolicy(OBS, ACTIONS, _lr, config="micro", freeze_cnn=True)
    cnn = {id(p) for p in pol.vpt.net.img_process.parameters()}
    optimized = {id(p) for g in pol.optimizer.param_groups for p in g["params"]}
    assert cnn and not cnn & optimized
    assert {id(p) for p in pol.vpt.net.recurrent_layer.parameters()} <= optimized


@pytest.mark.parametrize(
    "obs_space, act_space, match",
    [
        (OBS, spaces.Discrete(5), r"MultiDiscrete\(\[8641, 121\]\)"),
        (OBS, spaces.MultiDiscrete([8641, 120]), r"MultiDiscrete\(\[8641, 121\]\)"),
        (spaces.Dict({"pov": spaces.Box(0, 255, (64, 64, 3), np.uint8)}), ACTIONS, r"\(128, 128, 3\)"),
        (spaces.Dict({"rgb": spaces.Box(0, 255, (128, 128, 3), np.uint8)}), ACTIONS, "no 'pov' key"),
        (spaces.Dict({"pov": spaces.Box(0, 1, (128, 128, 3), np.float32)}), ACTIONS, "uint8"),
    ],
)
def test_spaces_that_do_not_fit_raise_clear_errors(obs_space, act_space, match):
    with pytest.raises(ValueError, match=match):
        check_vpt_spaces(obs_space, act_space)
    with pytest.raises(ValueError, match=match):
        VPTPolicy(obs_space, act_space, _lr, config="micro")


def test_predict_carries_memory_like_the_official_step_outputs(fixtures_dir):
    """Stepping predict() with the returned state and the fixture's episode starts (env 1 restarts at
    step 7) picks the argmax of the official step-by-step log-probs at every step."""
    exp = torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)
    img, first = exp["img"], exp["first"]  # (2, 14, 128, 128, 3), (2, 14)
    want_b = exp["step"]["buttons"].reshape(2, 14, -1).argmax(-1)
    want_c = exp["step"]["camera"].reshape(2, 14, -1).argmax(-1)
    pol = _fixture_policy(fixtures_dir)
    state = None
    for t in range(img.shape[1]):
        actions, state = pol.predict({"pov": img[:, t].numpy()}, state, episode_start=first[:, t].numpy(), deterministic=True)
        assert isinstance(state, VPTStates)
        assert actions.shape == (2, 2) and actions.dtype == np.int64
        np.testing.assert_array_equal(actions[:, 0], want_b[:, t].numpy())
        np.testing.assert_array_equal(actions[:, 1], want_c[:, t].numpy())
    # without memory (a fresh state every step) the actions differ somewhere: the memory is really used
    fresh = [pol.predict({"pov": img[:, t].numpy()}, None, deterministic=True)[0] for t in range(img.shape[1])]
    assert any(not np.array_equal(f[:, 0], want_b[:, t].numpy()) for t, f in enumerate(fresh))


def test_sequence_replay_in_chunks_matches_official_step_logprobs(fixtures_dir):
    """evaluate_actions over the whole sequence in chunks of the net's timesteps (8), carrying the state,
    gives the official per-step log-probs of any action (episode start mid-chunk included)."""
    exp = torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)
    img, first = exp["img"], exp["first"]
    lb = exp["step"]["buttons"].reshape(2, 14, -1)
    lc = exp["step"]["camera"].reshape(2, 14, -1)
    g = torch.Generator().manual_seed(0)
    actions = torch.stack([torch.randint(0, 8641, (2, 14), generator=g), torch.randint(0, 121, (2, 14), generator=g)], -1)
    want = lb.gather(-1, actions[..., :1])[..., 0] + lc.gather(-1, actions[..., 1:])[..., 0]
    pol = _fixture_policy(fixtures_dir)
    state, got = pol.initial_state(2).policy, []
    with torch.no_grad():
        for c0 in range(0, 14, 8):
            _, lp, ent, _, state = pol.evaluate_actions(img[:, c0:c0 + 8], actions[:, c0:c0 + 8], first[:, c0:c0 + 8], state)
            got.append(lp)
    torch.testing.assert_close(torch.cat(got, 1), want, atol=1e-4, rtol=0)


def test_transposed_and_unbatched_observations_give_the_same_actions(fixtures_dir):
    exp = torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)
    frames = exp["img"][:, 0].numpy()  # (2, 128, 128, 3)
    hwc = _fixture_policy(fixtures_dir)
    chw_space = spaces.Dict({"pov": spaces.Box(0, 255, (3, 128, 128), np.uint8)})
    chw = VPTPolicy(chw_space, ACTIONS, _lr, model=str(fixtures_dir / "policy.model"), weights=str(fixtures_dir / "policy.weights"))
    a_hwc, _ = hwc.predict({"pov": frames}, deterministic=True)
    a_chw, _ = chw.predict({"pov": frames.transpose(0, 3, 1, 2)}, deterministic=True)
    np.testing.assert_array_equal(a_hwc, a_chw)
    single, _ = hwc.predict({"pov": frames[1]}, deterministic=True)
    assert single.shape == (2,)
    np.testing.assert_array_equal(single, a_hwc[1])
    with pytest.raises(ValueError, match="shape"):
        hwc.predict({"pov": frames[:, :64]})


def test_vptppo_keeps_images_channel_last():
    model = VPTPPO(VPTPolicy, DummyVecEnv([lambda: CueEnv(seed=0)]), n_steps=6, policy_kwargs=dict(config="micro"), kl_coef=0.0)
    assert not isinstance(model.env, VecTransposeImage)
    assert model.observation_space["pov"].shape == (128, 128, 3)
    # an env that SB3 already transposed still works
    transposed = VecTransposeImage(DummyVecEnv([lambda: CueEnv(seed=0)]))
    model2 = VPTPPO(VPTPolicy, transposed, n_steps=6, policy_kwargs=dict(config="micro"), kl_coef=0.0, seed=0)
    model2.learn(6)
    assert model2.num_timesteps == 6


def test_evaluate_policy_matches_a_manual_loop():
    def venv():
        return DummyVecEnv([lambda i=i: Monitor(CueEnv(seed=10 + i)) for i in range(2)])

    model = VPTPPO(VPTPolicy, venv(), n_steps=6, policy_kwargs=dict(config="micro"), kl_coef=0.0, seed=0)
    rewards, lengths = evaluate_policy(model, venv(), n_eval_episodes=4, deterministic=True, return_episode_rewards=True)
    assert lengths == [3, 3, 3, 3]
    # the same deterministic rollout by hand, with the state and episode starts threaded through predict
    env = venv()
    obs, state, starts = env.reset(), None, np.ones(2, dtype=bool)
    totals, done_eps, cur = [], [0, 0], np.zeros(2)
    while min(done_eps) < 2:
        actions, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        obs, r, dones, _ = env.step(actions)
        cur += r
        for i in range(2):
            if dones[i] and done_eps[i] < 2:
                totals.append((i, done_eps[i], cur[i]))
                done_eps[i] += 1
            if dones[i]:
                cur[i] = 0.0
        starts = dones
    manual = sorted(t for _, _, t in totals)
    assert sorted(rewards) == pytest.approx(manual)


def test_model_without_weights_loads_the_weights_beside_it_or_fails(fixtures_dir, tmp_path):
    import shutil

    from vpt_rl.checkpoint import CheckpointError

    model = tmp_path / "start.model"
    shutil.copy(fixtures_dir / "policy.model", model)
    with pytest.raises(CheckpointError, match="without weights.*start.weights"):
        VPTPolicy(OBS, ACTIONS, _lr, model=str(model))
    shutil.copy(fixtures_dir / "policy.weights", tmp_path / "start.weights")
    pol = VPTPolicy(OBS, ACTIONS, _lr, model=str(model), reset_value_head=False)
    sd = torch.load(fixtures_dir / "policy.weights", weights_only=True)
    assert all(torch.equal(pol.vpt.state_dict()[k], v) for k, v in sd.items())
