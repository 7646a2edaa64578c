"""VPTPPO (policies/sb3/ppo.py): segment memory storage, exact replay, GAE, KL to the frozen prior, warm-up,
learning a memory task, save/load, logging, the finetune helper and CLI."""
import os

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from conftest import CueEnv
from vpt_rl.model import POLICY_PRESETS
from vpt_rl.policies.sb3 import VPTPPO, EpisodeStatsCallback, VPTPolicy, VPTRolloutBuffer, finetune_sb3

MICRO_32PX = POLICY_PRESETS["micro"].replace(img_shape=(32, 32, 3)).to_kwargs()


def _venv(n=2, **kw):
    return DummyVecEnv([lambda i=i: Monitor(CueEnv(seed=i, **kw)) for i in range(n)])


def _start(model, steps):
    _, cb = model._setup_learn(steps, None)
    return cb


def test_replay_from_stored_segment_memory_reproduces_rollout_log_probs():
    """Two rollouts (the second starts with a full memory), 2 segments of 12 steps, chunks of 8 + 4, episode
    starts inside chunks: replaying from the stored memories gives the rollout log-probs within 1e-4."""
    model = VPTPPO(VPTPolicy, _venv(2, ep_len=6, var_len=True), n_steps=24, segment_len=12, chunk_len=8,
                   policy_kwargs=dict(config="micro"), seed=0)
    cb = _start(model, 96)
    buf = model.rollout_buffer
    for _ in range(2):
        model.collect_rollouts(model.env, cb, buf, model.n_steps)
        starts = buf.episode_starts
        assert starts[1:12].sum() > 0 and starts[13:].sum() > 0  # episode starts inside both segments
        replay = model.replay()
        np.testing.assert_allclose(replay["log_probs"], buf.log_probs, atol=1e-4, rtol=0)
    # the second rollout's stored memory is not empty: it carries frames from the first rollout
    assert any(bool(m.any()) for m, _, _ in buf.states[0].policy)


def test_buffer_stores_memory_once_per_segment_and_counts_bytes():
    model = VPTPPO(VPTPolicy, _venv(3), n_steps=16, segment_len=8, policy_kwargs=dict(config="micro"), seed=0)
    cb = _start(model, 48)
    model.collect_rollouts(model.env, cb, model.rollout_buffer, model.n_steps)
    buf = model.rollout_buffer
    cfg = POLICY_PRESETS["micro"]
    per_env = cfg.n_recurrence_layers * (cfg.maxlen * 1 + 2 * cfg.maxlen * cfg.hidsize * 4)  # bool mask + fp32 K, V
    nb = buf.nbytes()
    assert len(buf.states) == 2
    assert nb["policy_states"] == 2 * 3 * per_env and nb["prior_states"] == 2 * 3 * per_env
    assert nb["pov"] == 16 * 3 * 128 * 128 * 3  # uint8 frames, not float32
    assert nb["prior_probs"] == 16 * 3 * (8641 + 121) * 2  # float16
    assert buf.prior_probs.dtype == torch.float16
    probs = buf.prior_probs.float()
    torch.testing.assert_close(probs[..., :8641].sum(-1), torch.ones(16, 3), atol=5e-3, rtol=0)
    with pytest.raises(ValueError, match="segment_len=5"):
        VPTPPO(VPTPolicy, _venv(1), n_steps=16, segment_len=5, policy_kwargs=dict(config="micro"))
    with pytest.raises(ValueError, match="chunk_len=9"):
        VPTPPO(VPTPolicy, _venv(1), n_steps=16, chunk_len=9, policy_kwargs=dict(config="micro"))


def test_gae_matches_hand_computed_values():
    buf = VPTRolloutBuffer(3, 1, 3, pov_shape=(4, 4, 3), gamma=0.9, gae_lambda=0.8, store_prior=False)
    buf.rewards[:, 0] = [1.0, 2.0, 3.0]
    buf.values[:, 0] = [0.5, 1.0, 1.5]
    buf.episode_starts[:, 0] = [1.0, 0.0, 1.0]  # a new episode starts at step 2
    buf.compute_returns_and_advantage(np.array([2.0]), np.array([False]))
    a2 = 3.0 + 0.9 * 2.0 - 1.5  # bootstraps from the last value
    a1 = 2.0 - 1.0  # step 2 starts a new episode: no bootstrap, no GAE carry
    a0 = (1.0 + 0.9 * 1.0 - 0.5) + 0.9 * 0.8 * a1
    np.testing.assert_allclose(buf.advantages[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(buf.returns[:, 0], [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_kl_to_prior_is_zero_at_start_and_grows_when_the_policy_is_pushed():
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=12, learning_rate=3e-3, kl_coef=1e-4, n_epochs=2,
                   policy_kwargs=dict(config="micro"), seed=0)
    cb = _start(model, 24)
    model.collect_rollouts(model.env, cb, model.rollout_buffer, model.n_steps)
    kl0 = model.replay()["kl_prior"]
    assert np.abs(kl0).max() < 2e-3  # float16 prior probabilities; exactly the same network
    kls = []
    for _ in range(3):
        model.learn(24, reset_num_timesteps=False)
        kls.append(float(model.replay()["kl_prior"].mean()))
    assert kls[0] > 1e-3 and kls[2] > kls[0], kls
    assert model._last_kl_prior > 0


def test_kl_coef_decays_per_iteration_and_zero_disables_the_prior():
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=6, policy_kwargs=dict(config="micro"), seed=0)
    assert model.kl_coef == 0.2 and model.policy.prior is not None
    model.learn(36)  # 3 iterations
    assert model.kl_coef == pytest.approx(0.2 * 0.9995 ** 3, rel=1e-12)
    no_prior = VPTPPO(VPTPolicy, _venv(2), n_steps=6, kl_coef=0.0, ent_coef=0.01, policy_kwargs=dict(config="micro"))
    assert no_prior.policy.prior is None and not no_prior.rollout_buffer.store_prior
    no_prior.learn(12)
    with pytest.raises(ValueError, match="with_prior=False"):
        VPTPPO(VPTPolicy, _venv(1), n_steps=6, kl_coef=0.2, policy_kwargs=dict(config="micro", with_prior=False))


def test_value_warmup_iterations_train_only_the_value_head():
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=6, value_warmup_iters=1, learning_rate=1e-2,
                   policy_kwargs=dict(config="micro"), seed=0)
    before = {k: v.clone() for k, v in model.policy.vpt.state_dict().items()}
    model.learn(12)  # one iteration = warm-up
    after = model.policy.vpt.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("value_head.") for k in changed), changed
    model.learn(12, reset_num_timesteps=False)  # second iteration trains everything
    changed = {k for k in before if not torch.equal(before[k], model.policy.vpt.state_dict()[k])}
    assert any(k.startswith("net.") for k in changed) and any(k.startswith("pi_head.") for k in changed)


def test_tiny_config_learns_a_task_where_memory_matters():
    """Only the first frame shows the cue, so on the grey frames a memoryless policy picks the right camera
    side half of the time at best; the transformer memory lets VPTPPO (random init, no KL) exceed 80 %
    within a few thousand steps. (8 seeds tried: all pass within 11-23 iterations.)"""
    torch.manual_seed(0)
    venv = DummyVecEnv([lambda i=i: Monitor(CueEnv(seed=i, size=32, cue_reward=True)) for i in range(8)])
    model = VPTPPO(VPTPolicy, venv, n_steps=12, batch_size=24, n_epochs=4, learning_rate=3e-3, gamma=0.9,
                   kl_coef=0.0, policy_kwargs=dict(config=MICRO_32PX), seed=0)
    grey_success = []  # per iteration: fraction of grey-frame steps with the cue's camera side (8 envs x 8 steps)
    for _ in range(40):
        model.learn(96, reset_num_timesteps=False)
        buf = model.rollout_buffer
        grey = buf.episode_starts == 0
        grey_success.append(float((buf.rewards[grey] > 0).mean()))
        if len(grey_success) >= 5 and np.mean(grey_success[-5:]) > 0.8:
            break
    assert np.mean(grey_success[:3]) < 0.65, grey_success
    assert np.mean(grey_success[-5:]) > 0.8, grey_success
    assert model.num_timesteps <= 40 * 96


class _Record(KVWriter):
    def __init__(self):
        self.rows = []

    def write(self, key_values, key_excluded, step=0):
        self.rows.append(dict(key_values))


def test_logs_kl_explained_variance_fps_and_milestones():
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=6, policy_kwargs=dict(config="micro"), seed=0)
    rec = _Record()
    model.set_logger(Logger(folder=None, output_formats=[rec]))
    cb = EpisodeStatsCallback(prefix="cb_milestones")
    model.learn(36, callback=cb)
    keys = set().union(*rec.rows)
    for k in ("train/kl_prior", "train/kl_coef", "train/explained_variance", "time/fps", "train/policy_gradient_loss",
              "train/value_loss", "train/clip_fraction", "rollout/ep_rew_mean", "milestones/milestone_cue_red",
              "milestones/episode_length", "cb_milestones/milestone_cue_red"):
        assert k in keys, k
    last = rec.rows[-1]
    assert last["milestones/episode_length"] == 3.0
    assert 0.0 <= last["milestones/milestone_cue_red"] <= 1.0
    # the last dump (before iteration 3 trains) shows iteration 2's train logs: rho after one decay
    assert last["train/kl_coef"] == pytest.approx(0.2 * 0.9995)


def test_save_load_round_trip_keeps_prior_and_optimizer_and_learning_continues(tmp_path, fixtures_dir):
    import shutil

    mfile, wfile = tmp_path / "start.model", tmp_path / "start.weights"
    shutil.copy(fixtures_dir / "policy.model", mfile)
    shutil.copy(fixtures_dir / "policy.weights", wfile)
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=6, learning_rate=1e-3, policy_kwargs=dict(model=str(mfile), weights=str(wfile)), seed=0)
    model.learn(24)
    assert "weights" not in model.policy_kwargs and "model" not in model.policy_kwargs
    model.save(tmp_path / "ppo.zip")
    os.remove(mfile)
    os.remove(wfile)  # loading must not re-read the starting files

    loaded = VPTPPO.load(tmp_path / "ppo.zip", env=_venv(2))
    for a, b in ((model.policy.vpt, loaded.policy.vpt), (model.policy.prior, loaded.policy.prior)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    opt_a, opt_b = model.policy.optimizer.state_dict(), loaded.policy.optimizer.state_dict()
    assert opt_a["state"].keys() == opt_b["state"].keys() and len(opt_a["state"]) > 0
    for i in opt_a["state"]:
        assert torch.equal(opt_a["state"][i]["exp_avg"], opt_b["state"][i]["exp_avg"])
    assert loaded.kl_coef == model.kl_coef and loaded._n_iterations == model._n_iterations
    # the prior is still the starting network, which the policy has left
    official = torch.load(fixtures_dir / "policy.weights", weights_only=True)
    prior_sd = loaded.policy.prior.state_dict()
    assert all(torch.equal(prior_sd[k], official[k]) for k in official if not k.startswith("value_head."))
    assert not torch.equal(loaded.policy.vpt.state_dict()["pi_head.camera.linear_layer.weight"], official["pi_head.camera.linear_layer.weight"])

    pol_before = {k: v.clone() for k, v in loaded.policy.vpt.state_dict().items()}
    loaded.learn(12, reset_num_timesteps=False)
    assert loaded.num_timesteps == 36
    assert all(torch.equal(loaded.policy.prior.state_dict()[k], prior_sd[k]) for k in prior_sd)  # prior untouched
    assert any(not torch.equal(loaded.policy.vpt.state_dict()[k], pol_before[k]) for k in pol_before)

    loaded.export_vpt(str(tmp_path / "ft.model"), str(tmp_path / "ft.weights"))
    from vpt_rl.checkpoint import load_policy

    ft = load_policy(tmp_path / "ft.model", tmp_path / "ft.weights")
    assert ft.temperature == 2.0
    assert all(torch.equal(ft.state_dict()[k], v) for k, v in loaded.policy.vpt.state_dict().items())


def test_env_whose_spaces_do_not_fit_is_rejected():
    class Wrong(CueEnv):
        def __init__(self):
            super().__init__()
            self.action_space = spaces.Discrete(4)

    with pytest.raises(ValueError, match=r"expected MultiDiscrete\(\[8641, 121\]\)"):
        VPTPPO(VPTPolicy, Wrong(), policy_kwargs=dict(config="micro"))
    model = VPTPPO(VPTPolicy, _venv(1), n_steps=6, policy_kwargs=dict(config="micro"))
    with pytest.raises(ValueError, match=r"\(128, 128, 3\)"):
        model.set_env(DummyVecEnv([lambda: CueEnv(size=64)]))


def test_finetune_helper_and_cli_run_on_minelite_and_resume(tmp_path):
    from vpt_rl.checkpoint import load_policy
    from vpt_rl.cli import main

    out = tmp_path / "run"
    path = finetune_sb3("vpt_rl/MineLite-v0", 8, config="micro", n_envs=2, n_steps=4, out_dir=str(out), seed=0,
                        ppo_kwargs=dict(n_epochs=1), max_steps=5, world_size=(16, 24, 16))
    assert path == str(out / "final.zip") and os.path.isfile(path)
    assert os.path.isfile(out / "checkpoint.zip")
    net = load_policy(out / "policy.model", out / "policy.weights")
    assert net.cfg == POLICY_PRESETS["micro"]
    assert os.listdir(out / "tb")
    # resume: the checkpoint holds 8 steps, so asking for 16 runs one more iteration of 8
    rc = main(["finetune", "--backend", "sb3", "--env", "vpt_rl/MineLite-v0", "--steps", "16", "--config", "micro",
               "--n-envs", "2", "--n-steps", "4", "--out-dir", str(out), "--n-epochs", "1",
               "--env-kwargs", '{"max_steps": 5, "world_size": [16, 24, 16]}'])
    assert rc == 0
    assert VPTPPO.load(out / "final.zip").num_timesteps == 16


def test_finetune_episodes_csv_logs_each_episode_at_its_env_step_and_resumes(tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    from vpt_rl.policies.sb3 import read_episodes_csv

    class Count(BaseCallback):
        def __init__(self):
            super().__init__()
            self.steps = []

        def _on_step(self):
            self.steps.append(self.num_timesteps)
            return True

    out = tmp_path / "run"
    kw = dict(config="micro", n_envs=2, n_steps=4, out_dir=str(out), seed=0, ppo_kwargs=dict(n_epochs=1),
              episodes_csv="episodes.csv", max_steps=3, world_size=(16, 24, 16))
    first = Count()
    finetune_sb3("vpt_rl/MineLite-v0", 8, callbacks=[first], **kw)
    assert first.steps == [2, 4, 6, 8]  # the extra callback sees every vec step (2 envs per step)
    # 3-tick episodes in 2 envs: both end at vec step 3, i.e. after 6 env steps in total
    rows = read_episodes_csv(out / "episodes.csv")
    assert [(r[0], r[2]) for r in rows] == [(6, 3), (6, 3)]
    assert (out / "episodes.csv").read_text().splitlines()[0] == "steps,return,length,milestones"
    # 3 ticks get no log: each row names the milestones reached, none here
    assert [r[3] for r in read_episodes_csv(out / "episodes.csv", milestones=True)] == [(), ()]
    # rows past the checkpoint (as after a crash between a flush and a checkpoint) are dropped on resume
    with open(out / "episodes.csv", "a") as f:
        f.write("999,5.0,3,log;planks\n")
    second = Count()
    finetune_sb3("vpt_rl/MineLite-v0", 16, callbacks=[second], **kw)
    assert second.steps == [10, 12, 14, 16]
    rows2 = read_episodes_csv(out / "episodes.csv")
    # resuming resets the envs (the episodes begun at step 8 are abandoned), so the next ones run
    # over vec steps 5-7 and end after 14 env steps
    assert rows2[:2] == rows and [(r[0], r[2]) for r in rows2[2:]] == [(14, 3), (14, 3)]
    # the returns are the Monitor's episode returns: the tech-tree reward is never negative
    assert all(r[1] >= 0.0 for r in rows2)
    (out / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="steps,return,length"):
        read_episodes_csv(out / "bad.csv")


def test_finetune_cli_dispatches_sf_backend_with_the_other_arguments(monkeypatch):
    import vpt_rl.policies.sample_factory.train as sf_train
    from vpt_rl.commands.finetune import main

    seen = []
    monkeypatch.setattr(sf_train, "main", lambda argv: seen.append(list(argv)) or 0)
    assert main(["--backend", "sf", "--env", "vpt_minelite", "--train_for_env_steps", "64"]) == 0
    assert main(["--backend=sf", "--kl_coef", "0.2"]) == 0
    assert seen == [["--env", "vpt_minelite", "--train_for_env_steps", "64"], ["--kl_coef", "0.2"]]
    assert main(["--backend", "jax", "--steps", "1"]) == 2


def test_bf16_autocast_and_frozen_cnn_train_without_touching_the_cnn():
    model = VPTPPO(VPTPolicy, _venv(2), n_steps=8, learning_rate=1e-3, policy_kwargs=dict(config="micro", freeze_cnn=True, autocast_bf16=True), seed=0)
    cnn_before = {k: v.clone() for k, v in model.policy.vpt.net.img_process.state_dict().items()}
    rest_before = model.policy.vpt.net.recurrent_layer.state_dict()["blocks.0.r.orc_block.q_layer.weight"].clone()
    model.learn(16)
    assert all(torch.equal(v, model.policy.vpt.net.img_process.state_dict()[k]) for k, v in cnn_before.items())
    assert not torch.equal(rest_before, model.policy.vpt.net.recurrent_layer.state_dict()["blocks.0.r.orc_block.q_layer.weight"])
    assert all(k.dtype == torch.float32 for _, k, _ in model._last_states.policy)  # carried memory stays fp32
    replay = model.replay()  # bf16 replay of a bf16 rollout: close, not bit-exact (chunked vs stepwise matmuls)
    assert np.isfinite(replay["log_probs"]).all()


def test_episodes_csv_names_the_milestones_of_each_episode_and_reads_old_files(tmp_path):
    from vpt_rl.policies.sb3 import EpisodeCSVCallback, read_episodes_csv

    cb = EpisodeCSVCallback(tmp_path / "ep.csv")
    cb.num_timesteps = 40
    cb.locals = {"infos": [{"episode": {"r": 1.5, "l": 20}, "milestones": {"log": True, "planks": False,
                                                                            "crafting_table": True}},
                           {"other": 1},  # an env mid-episode
                           {"episode": {"r": 0.0, "l": 20}, "milestones": {"log": False}}]}
    cb._on_step()
    cb.flush()
    assert (tmp_path / "ep.csv").read_text().splitlines() == [
        "steps,return,length,milestones", "40,1.5,20,log;crafting_table", "40,0.0,20,"]
    assert read_episodes_csv(tmp_path / "ep.csv", milestones=True) == [(40, 1.5, 20, ("log", "crafting_table")),
                                                                       (40, 0.0, 20, ())]
    assert read_episodes_csv(tmp_path / "ep.csv") == [(40, 1.5, 20), (40, 0.0, 20)]
    (tmp_path / "old.csv").write_text("steps,return,length\n8,2.0,4\n")  # before the milestones column
    assert read_episodes_csv(tmp_path / "old.csv", milestones=True) == [(8, 2.0, 4, ())]
    (tmp_path / "bad.csv").write_text("steps,return,length,milestones\n8,2.0\n")
    with pytest.raises(ValueError, match="line 2"):
        read_episodes_csv(tmp_path / "bad.csv")
