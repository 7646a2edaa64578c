"""Tests of the Sample Factory plug-in (vpt_rl.policies.sample_factory).

Core checks run in-process on tiny random networks; the end-to-end checks start real SF runs (async with
2 rollout workers, then a resume) in a subprocess on a tiny config.
"""
import copy
import glob
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sample_factory")

from sample_factory.algo.learning.rnn_utils import build_core_out_from_seq, build_rnn_inputs  # noqa: E402

from conftest import FIXTURES, REPO  # noqa: E402
from vpt_rl.model import PolicyNet  # noqa: E402
from vpt_rl.policies.sample_factory import register_vpt_components  # noqa: E402
from vpt_rl.policies.sample_factory.actor_critic import VPTActorCritic, make_vpt_actor_critic  # noqa: E402
from vpt_rl.policies.sample_factory.envs import DebugVPTEnv, TupleActionWrapper, sf_action_space  # noqa: E402
from vpt_rl.policies.sample_factory.learner import kl_prior_coef, kl_prior_per_sample  # noqa: E402
from vpt_rl.policies.sample_factory.memory_budget import (  # noqa: E402
    MemoryBudgetError,
    check_budget,
    estimate_memory,
)
from vpt_rl.policies.sample_factory.state_layout import StateLayout  # noqa: E402
from vpt_rl.policies.sample_factory.train import parse_vpt_cfg, prepare_cfg, run_in_own_process_group  # noqa: E402

OBS_SPACE = DebugVPTEnv(episode_len=2).observation_space
ACT_SPACE = sf_action_space()


def _cfg(*extra):
    # an explicit KL: these checks need the prior, which a random init only gets when asked for
    cfg = parse_vpt_cfg(["--env", "vpt_debug", "--preset", "micro", "--experiment", "unit", "--kl_coef", "0.2", *extra])
    prepare_cfg(cfg, verbose=False)
    return cfg


def _perturbed(net: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """A copy with every parameter nudged, so that prior != policy and norm/bias wiring shows."""
    out = copy.deepcopy(net)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return out


def _frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, t, 128, 128, 3), dtype=torch.uint8, generator=g)


# ----------------------------------------------------------------------------------------------- state layout
def test_state_layout_round_trip_and_zero_is_empty_memory():
    layout = StateLayout(n_layers=2, maxlen=4, hidsize=8, with_prior=True)
    assert layout.net_size == 2 * 4 * (2 * 8 + 1) == 136 and layout.size == 272
    g = torch.Generator().manual_seed(0)
    state = [(torch.rand(3, 4, generator=g) > 0.5, torch.randn(3, 4, 8, generator=g), torch.randn(3, 4, 8, generator=g))
             for _ in range(2)]
    flat = layout.pack(state)
    assert flat.shape == (3, 136)
    for (m0, k0, v0), (m1, k1, v1) in zip(state, layout.unpack(flat)):
        assert torch.equal(m0, m1) and torch.equal(k0, k1) and torch.equal(v0, v1)
    empty = layout.unpack(torch.zeros(5, 136))
    assert all(not m.any() for m, _, _ in empty)
    pol, prior = layout.split(torch.arange(272.0).view(1, 272))
    assert pol[0, -1].item() == 135 and prior[0, 0].item() == 136
    with pytest.raises(ValueError, match="272"):
        layout.split(torch.zeros(1, 100))


def test_state_layout_size_of_1x_model_is_4_mib():
    from vpt_rl.model import POLICY_PRESETS

    layout = StateLayout.from_config(POLICY_PRESETS["foundation-model-1x"])
    assert layout.nbytes == 4 * 4 * 128 * (2 * 1024 + 1)  # 4 layers x 128 frames x (K, V, mask)
    assert abs(layout.nbytes / 2**20 - 4.0) < 0.01


# ----------------------------------------------------------------------------------------------- env glue
def test_tuple_action_wrapper_passes_pairs_and_rejects_bad_actions():
    env = TupleActionWrapper(DebugVPTEnv(episode_len=3, seed=1))
    assert env.action_space == ACT_SPACE
    obs, _ = env.reset(seed=3)
    assert obs["pov"].shape == (128, 128, 3) and obs["pov"].dtype == np.uint8
    _, r, _, _, _ = env.step(np.array([7, 60], dtype=np.int32))
    assert r == 1.0
    _, r, _, trunc, info = env.step([7, 3])
    assert r == 0.0 and not trunc
    _, _, _, trunc, info = env.step((0, 60))
    assert trunc and info["episode_extra_stats"] == {"debug_milestone": 1.0}
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([8641, 0]))
    with pytest.raises(TypeError, match="MultiDiscrete"):
        TupleActionWrapper(TupleActionWrapper(DebugVPTEnv()))


# ----------------------------------------------------------------------------------------------- the core
def _rollout(ac: VPTActorCritic, obs: torch.Tensor, dones: torch.Tensor, heads: torch.Tensor = None):
    """SF's rollout: one step per call, state stored before each step, zeroed after an episode end.

    ``heads`` (B, T, D): precomputed encoder outputs (the CNN is the slow part, and its float results depend
    slightly on the batch size when torch uses several threads).
    """
    B, T = dones.shape
    state = torch.zeros(B, ac.layout.size)
    states, cores, logits, prior_logp = [], [], [], []
    with torch.no_grad():
        for t in range(T):
            states.append(state.clone())
            head = ac.forward_head({"pov": obs[:, t]}) if heads is None else heads[:, t]
            core, state = ac.forward_core(head, state)
            res = ac.forward_tail(core, values_only=False, sample_actions=False)
            cores.append(core)
            logits.append(res["action_logits"])
            prior_logp.append(ac.prior_log_probs())
            state = state * (~dones[:, t]).float().unsqueeze(1)
    prior = torch.stack(prior_logp, 1) if ac.prior is not None else None
    return torch.stack(states, 1), torch.stack(cores, 1), torch.stack(logits, 1), prior


@pytest.mark.parametrize("recurrence", [12, 4])
def test_core_stepwise_equals_learner_packed_path_with_episode_ends(recurrence):
    torch.manual_seed(0)
    cfg = _cfg("--rollout", "12", "--recurrence", str(recurrence), "--batch_size", "36")
    policy = _perturbed(PolicyNet("micro"), 1)
    ac = VPTActorCritic(cfg, OBS_SPACE, ACT_SPACE, policy, _perturbed(policy, 2, 0.2))
    B, T = 3, 12
    dones = torch.zeros(B, T, dtype=torch.bool)
    dones[0, 3] = dones[0, 9] = True  # two episode ends inside env 0's sequence
    dones[1, 5] = True
    dones[2, 11] = True
    # the core alone: encoder outputs [policy | prior] stand-ins, identical for both paths
    head = torch.randn(B * T, 2 * ac.hidsize, generator=torch.Generator().manual_seed(4))
    states, cores, logits, prior_logp = _rollout(ac, None, dones, heads=head.view(B, T, -1))
    # the learner's path: (B*T) flattened env-major as in SF's batch, PackedSequence cut at dones
    assert prior_logp.abs().sum() > 0
    with torch.no_grad():
        seq, seq_states, inv = build_rnn_inputs(head, dones.reshape(-1).float(), states.reshape(B * T, -1), recurrence)
        core_seq, _ = ac.forward_core(seq, seq_states)
        core = build_core_out_from_seq(core_seq, inv)
        res = ac.forward_tail(core, values_only=False, sample_actions=False)
    # sequences were really cut at the episode ends: more sequences than trajectory chunks
    assert int(seq.batch_sizes[0]) > B * T // recurrence
    torch.testing.assert_close(core, cores.reshape(B * T, -1), atol=1e-5, rtol=0)
    # log-probs over 8641 classes are ~ -9: allow float32 rounding of that magnitude
    torch.testing.assert_close(res["action_logits"], logits.reshape(B * T, -1), atol=3e-5, rtol=0)
    torch.testing.assert_close(ac.prior_log_probs(), prior_logp.reshape(B * T, -1), atol=3e-5, rtol=0)

    # memory really matters: ignoring the stored states (all zeros) changes the outputs after step 0
    with torch.no_grad():
        core_seq0, _ = ac.forward_core(seq, torch.zeros_like(seq_states))
    diff = (build_core_out_from_seq(core_seq0, inv) - core).abs().max().item()
    assert recurrence == T or diff > 1e-3


def test_episode_start_hides_previous_episode_from_the_core():
    torch.manual_seed(0)
    cfg = _cfg()
    ac = VPTActorCritic(cfg, OBS_SPACE, ACT_SPACE, _perturbed(PolicyNet("micro"), 3), None)
    obs = _frames(1, 6, seed=5)
    other = _frames(1, 6, seed=6)
    obs_b = torch.cat([other[:, :3], obs[:, 3:]], 1)  # different first episode, same second episode
    dones = torch.zeros(1, 6, dtype=torch.bool)
    dones[0, 2] = True
    with torch.no_grad():
        heads_a = ac.forward_head({"pov": obs.reshape(6, 128, 128, 3)}).view(1, 6, -1)
        heads_b = torch.cat([ac.forward_head({"pov": other[0, :3]})[None], heads_a[:, 3:]], 1)
    _, cores_a, _, _ = _rollout(ac, obs, dones, heads_a)
    _, cores_b, _, _ = _rollout(ac, obs_b, dones, heads_b)
    torch.testing.assert_close(cores_a[:, 3:], cores_b[:, 3:], atol=1e-6, rtol=0)
    assert (cores_a[:, :3] - cores_b[:, :3]).abs().max() > 1e-3


# ----------------------------------------------------------------------------------------------- pretrained init
def test_pretrained_init_gives_the_logits_of_vpt_model_and_the_official_fixture():
    pytest.importorskip("vpt_rl.checkpoint")
    from vpt_rl.checkpoint import load_policy

    model, weights = str(FIXTURES / "policy.model"), str(FIXTURES / "policy.weights")
    cfg = _cfg("--model", model, "--weights", weights, "--kl_coef", "0.2")
    ac = make_vpt_actor_critic(cfg, OBS_SPACE, ACT_SPACE)
    ref = load_policy(model, weights)
    expected = torch.load(FIXTURES / "policy_expected.pt", weights_only=True)
    img, first = expected["img"], expected["first"]
    B, T = first.shape
    dones = torch.zeros(B, T, dtype=torch.bool)
    dones[:, :-1] = first[:, 1:]  # SF zeroes the state after the step that ends an episode
    with torch.no_grad():  # the encoder on all frames at once (as the learner does), the core step by step
        heads = ac.forward_head({"pov": img.reshape(B * T, 128, 128, 3)}).view(B, T, -1)
    _, _, logits, prior_logp = _rollout(ac, img, dones, heads)
    with torch.no_grad():
        logp, vpred, _ = ref(img, first, ref.initial_state(B))
    ref_logits = torch.cat([logp["buttons"], logp["camera"]], -1)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(prior_logp, ref_logits, atol=1e-5, rtol=0)  # the prior starts as the policy
    official = torch.cat([expected["step"]["buttons"][:, :, 0], expected["step"]["camera"][:, :, 0]], -1)
    torch.testing.assert_close(logits, official, atol=1e-5, rtol=0)
    # the value head is VPT's (normalised value)
    with torch.no_grad():
        res = ac(dict(pov=img[:, 0]), torch.zeros(B, ac.layout.size), values_only=True)
    torch.testing.assert_close(res["values"], expected["step"]["vpred"][:, 0, 0], atol=1e-5, rtol=0)


def test_factory_rejects_spaces_the_vpt_model_cannot_use():
    from gymnasium import spaces

    cfg = _cfg()
    with pytest.raises(TypeError, match="Tuple"):
        make_vpt_actor_critic(cfg, OBS_SPACE, spaces.Discrete(5))
    with pytest.raises(TypeError, match="pov"):
        make_vpt_actor_critic(cfg, spaces.Dict({"obs": OBS_SPACE["pov"]}), ACT_SPACE)


# ----------------------------------------------------------------------------------------------- KL to prior
def test_kl_prior_term_matches_hand_computation_and_schedule():
    p = torch.log_softmax(torch.tensor([[1.0, 2.0, 0.0, 0.5, -1.0]]), -1)
    q = torch.log_softmax(torch.tensor([[0.0, 0.0, 1.0, 2.0, 0.0]]), -1)
    # heads (3, 2): split and renormalise each head
    pp = torch.cat([torch.log_softmax(p[:, :3], -1), torch.log_softmax(p[:, 3:], -1)], 1)
    qq = torch.cat([torch.log_softmax(q[:, :3], -1), torch.log_softmax(q[:, 3:], -1)], 1)
    want = sum(
        float((a.exp() * (a - b)).sum()) for a, b in [(pp[0, :3], qq[0, :3]), (pp[0, 3:], qq[0, 3:])]
    )
    got = kl_prior_per_sample(pp, qq, (3, 2))
    assert abs(float(got) - want) < 1e-6 and want > 0
    assert float(kl_prior_per_sample(pp, pp, (3, 2))) == pytest.approx(0.0, abs=1e-7)
    assert kl_prior_coef(0.2, 0.9995, 0) == 0.2
    assert kl_prior_coef(0.2, 0.9995, 1000) == pytest.approx(0.2 * 0.9995**1000)


# ----------------------------------------------------------------------------------------------- memory budget
def test_memory_estimate_follows_sf_buffer_formulas_and_refuses_big_configs():
    cfg = _cfg("--num_workers", "2", "--num_envs_per_worker", "2", "--rollout", "8", "--batch_size", "32")
    S = 1000
    est = estimate_memory(cfg, S)
    step_out = 4 * (2 + 8762 + 3)
    traj = 9 * (49152 + 4 * S + 5) + 8 * (step_out + 10)
    # async: max(4 envs x 2, 2 accumulated batches x 4 trajectories) = 8 buffers
    assert est.num_traj_buffers == 8
    assert est.shared_bytes == 8 * traj + 4 * (step_out + 4 * S)
    assert est.learner_bytes == 2 * 4 * traj
    check_budget(est, est.total_bytes, with_prior=True, serial_mode=False)
    with pytest.raises(MemoryBudgetError, match="--rollout.*--kl_coef 0"):
        check_budget(est, est.total_bytes - 1, with_prior=True, serial_mode=False)


def test_prepare_cfg_sets_rnn_size_and_refuses_the_1x_model_with_many_envs():
    cfg = _cfg("--kl_coef", "0")
    assert cfg.rnn_size == StateLayout(2, 4, 32).size and cfg.recurrence == cfg.rollout
    big = parse_vpt_cfg(["--env", "vpt_debug", "--preset", "foundation-model-1x", "--num_workers", "16",
                         "--num_envs_per_worker", "8", "--rollout", "64", "--memory_budget_mb", "4096"])
    with pytest.raises(MemoryBudgetError, match="exceeds the memory budget of 4096 MiB"):
        prepare_cfg(big, verbose=False)
    bad = parse_vpt_cfg(["--env", "vpt_debug", "--normalize_input", "True"])
    with pytest.raises(ValueError, match="normalize_input"):
        prepare_cfg(bad, verbose=False)


def test_kl_coef_defaults_like_sb3_and_a_model_takes_the_weights_beside_it(tmp_path):
    import shutil

    def resolved(*args):
        cfg = parse_vpt_cfg(["--env", "vpt_debug", "--experiment", "unit", *args])
        prepare_cfg(cfg, verbose=False)
        return cfg

    scratch = resolved("--preset", "micro")
    assert scratch.kl_coef == 0.0 and scratch.weights is None  # no KL to a frozen random net
    assert scratch.rnn_size == StateLayout(2, 4, 32, with_prior=False).size  # nor its memory
    model, weights = str(FIXTURES / "policy.model"), str(FIXTURES / "policy.weights")
    pretrained = resolved("--model", model, "--weights", weights)
    assert pretrained.kl_coef == 0.2 and pretrained.rnn_size == StateLayout(2, 4, 32, with_prior=True).size
    assert resolved("--model", model, "--weights", weights, "--kl_coef", "0").kl_coef == 0.0
    # --model alone: the .weights beside it, or an error naming both paths
    alone = tmp_path / "start.model"
    shutil.copy(model, alone)
    with pytest.raises(ValueError, match=f"{alone}.*{tmp_path / 'start.weights'}.*--preset"):
        resolved("--model", str(alone))
    shutil.copy(weights, tmp_path / "start.weights")
    beside = resolved("--model", str(alone))
    assert beside.weights == str(tmp_path / "start.weights") and beside.kl_coef == 0.2


def test_device_follows_auto_without_cuda_and_takes_vpt_rl_spellings(monkeypatch):
    from vpt_rl.policies.sample_factory.train import sf_device_argv

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    default = _cfg()  # no --device: auto, which is SF's cpu without CUDA
    assert default.device == "cpu"
    assert _cfg("--device", "auto").device == "cpu" and _cfg("--device=cpu").device == "cpu"
    assert sf_device_argv(["--env", "x", "--device", "auto", "--seed", "1"]) == ["--env", "x", "--device", "cpu",
                                                                                "--seed", "1"]
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available on this machine"):
        parse_vpt_cfg(["--env", "vpt_debug", "--device", "cuda"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert sf_device_argv(["--device=auto"]) == ["--device=gpu"]
    assert parse_vpt_cfg(["--env", "vpt_debug", "--device", "cuda"]).device == "gpu"


def test_entry_point_exits_2_naming_a_device_sf_cannot_use(capsys, monkeypatch, tmp_path):
    from vpt_rl.policies.sample_factory.train import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["--env", "vpt_debug", "--preset", "micro", "--device", "gpu0", "--train_dir", str(tmp_path)])
    assert rc == 2
    assert "[vpt-sf] error: device 'gpu0': expected auto, cpu, cuda or cuda:N" in capsys.readouterr().err


def test_entry_point_prints_estimate_and_exits_2_on_a_config_that_cannot_fit(capsys, tmp_path):
    from vpt_rl.policies.sample_factory.train import main

    rc = main(["--env", "vpt_debug", "--preset", "foundation-model-1x", "--num_workers", "8",
               "--rollout", "128", "--memory_budget_mb", "1024", "--experiment", "never_runs",
               "--train_dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 2
    assert "VPT memory estimate" in captured.out and "--num_workers" in captured.err
    assert not (tmp_path / "never_runs").exists()  # refused before SF created anything


def test_register_vpt_components_registers_envs_and_model_factory():
    from sample_factory.algo.utils.context import global_env_registry, global_model_factory

    register_vpt_components()
    reg = global_env_registry()
    assert {"vpt_minelite", "vpt_debug"} <= set(reg)
    assert global_model_factory().make_actor_critic_func is make_vpt_actor_critic


# ----------------------------------------------------------------------------------------------- end to end
def _sf_run(tmp_path: Path, *extra: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run the entry point in a subprocess (SF starts its own worker processes; all end with it)."""
    cmd = [sys.executable, "-m", "vpt_rl.policies.sample_factory.train", "--env", "vpt_minelite",
           "--model", str(FIXTURES / "policy.model"), "--weights", str(FIXTURES / "policy.weights"),
           "--experiment", "e2e", "--train_dir", str(tmp_path), "--rollout", "8", "--batch_size", "32",
           "--num_envs_per_worker", "2", "--episode_steps", "8", "--stats_avg", "2", "--seed", "1",
           "--experiment_summaries_interval", "1", "--save_every_sec", "5", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out, err = tmp_path / "sf_stdout.txt", tmp_path / "sf_stderr.txt"
    with open(out, "w") as fo, open(err, "w") as fe:
        rc = run_in_own_process_group(cmd, timeout=timeout, stdout=fo, stderr=fe, env=env, cwd=str(tmp_path))
    proc = subprocess.CompletedProcess(cmd, rc, out.read_text(), err.read_text())
    assert rc == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _scalars(summary_dir: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(summary_dir))
    ea.Reload()
    return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


@pytest.mark.slow
def test_async_run_on_minelite_trains_logs_kl_and_milestones_then_resumes_and_exports(tmp_path, capfd, monkeypatch):
    pytest.importorskip("vpt_rl.envs.minelite.env")
    pytest.importorskip("vpt_rl.checkpoint")
    from vpt_rl.checkpoint import load_policy
    from vpt_rl.policies.sample_factory import finetune_sf

    # 1) async, 2 rollout workers (+ inference worker + learner processes), through the entry point
    proc = _sf_run(tmp_path, "--num_workers", "2", "--train_for_env_steps", "64")
    assert "VPT memory estimate" in proc.stdout
    exp = tmp_path / "e2e"
    ckpts = sorted(glob.glob(str(exp / "checkpoint_p0" / "checkpoint_*.pth")))
    assert ckpts, "no checkpoint written"
    first = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    assert first["env_steps"] >= 64 and first["vpt_kl_iteration"] >= 1
    # the learner really updated the policy, and not the frozen prior
    init = torch.load(FIXTURES / "policy.weights", weights_only=True)
    moved = max((first["model"]["policy." + k] - v).abs().max().item() for k, v in init.items())
    assert moved > 0
    for k, v in init.items():
        assert torch.equal(first["model"]["prior." + k], v), k
    tags = _scalars(exp / ".summary" / "0")
    assert "train/kl_prior" in tags and "train/kl_prior_coef" in tags and "train/policy_loss" in tags
    assert tags["train/kl_prior_coef"][0][1] <= 0.2 + 1e-7
    assert any(t.startswith("policy_stats/avg_milestone_") for t in tags), sorted(tags)

    # 2) resume through the Python API (serial runner this time): continues from the checkpoint
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    capfd.readouterr()
    weights = finetune_sf(
        "vpt_rl/MineLite-v0", 128, model=str(FIXTURES / "policy.model"), weights=str(FIXTURES / "policy.weights"),
        kl_coef=0.2, num_workers=0, out_dir=str(tmp_path), seed=1, experiment="e2e",
        extra_args={"rollout": 8, "batch_size": 32, "num_envs_per_worker": 2, "episode_steps": 8}, env_kwargs={})
    out = "".join(capfd.readouterr())
    assert f"Loaded experiment state at self.train_step={first['train_step']}" in out
    last = torch.load(sorted(glob.glob(str(exp / "checkpoint_p0" / "checkpoint_*.pth")))[-1], weights_only=True)
    assert last["env_steps"] >= 128 and last["vpt_kl_iteration"] > first["vpt_kl_iteration"]

    # 3) the export is an official-format pair holding the trained policy
    assert weights == str(exp / "export" / "policy.weights")
    net = load_policy(str(exp / "export" / "policy.model"), weights)
    for k, v in net.state_dict().items():
        if not k.startswith("value_head.normalizer."):
            assert torch.equal(v, last["model"]["policy." + k]), k
    mean = last["model"]["returns_normalizer.running_mean"].float()
    torch.testing.assert_close(net.value_head.normalizer.mean_var()[0], mean.reshape(1), atol=1e-6, rtol=0)
    assert net.temperature == load_policy(str(FIXTURES / "policy.model")).temperature == 2.0


@pytest.mark.slow
def test_sigkill_of_the_main_process_ends_every_worker(tmp_path):
    import signal
    import time

    psutil = pytest.importorskip("psutil")
    cmd = [sys.executable, "-m", "vpt_rl.policies.sample_factory.train", "--env", "vpt_debug", "--preset", "micro",
           "--experiment", "killed", "--train_dir", str(tmp_path), "--num_workers", "2", "--num_envs_per_worker", "2",
           "--rollout", "8", "--batch_size", "32", "--train_for_env_steps", "100000000", "--save_every_sec", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, env=env, cwd=str(tmp_path), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        main = psutil.Process(proc.pid)
        deadline = time.time() + 180
        # training under way: a checkpoint after env steps (checkpoint_<train step>_<env steps>.pth)
        while not [c for c in glob.glob(str(tmp_path / "killed" / "checkpoint_p0" / "checkpoint_*.pth"))
                   if not c.endswith("_0.pth")]:
            assert proc.poll() is None and time.time() < deadline, "SF did not start training"
            time.sleep(0.5)
        children = main.children(recursive=True)
        # learner + inference worker + 2 rollout workers + the resource tracker, every one alive and working
        assert len(children) >= 5 and all(c.status() != psutil.STATUS_ZOMBIE for c in children), children
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [f"{p.pid} {p.name()}" for p in alive]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started, if anything is left in it
        except ProcessLookupError:
            pass
