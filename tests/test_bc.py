"""Behavioural cloning: loss, a tiny run that learns and checkpoints, resume, fine-tuning, frozen CNN, DDP."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vpt_rl.train.bc as bc_mod
from vpt_rl.checkpoint import load_policy
from vpt_rl.data.synthetic import write_synthetic_segment
from vpt_rl.model import POLICY_PRESETS, PolicyNet
from vpt_rl.train.bc import Args, bc_loss, clip_gradients, head_accuracy, run_bc

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bcdata")
    for i in range(4):
        write_synthetic_segment(root / f"seg{i}", 48, seed=30 + i, press_prob=0.2)
    return root


def _args(data, out, **kw):
    base = dict(data=[str(data)], preset="micro", batch_size=2, seq_len=8, total_steps=30, lr=3e-3, warmup_steps=0,
                log_every=1, save_every=0, out_dir=str(out), device="cpu", progress=False,
                prior_init=False)  # default head init: the loss starts high, so "it learns" is a clear drop
    base.update(kw)
    return Args(**base)


def _history(out):
    return json.loads((Path(out) / "metrics.json").read_text())["history"]


def test_bc_loss_is_mean_negative_joint_log_prob_over_valid_frames():
    logp = {"buttons": torch.log_softmax(torch.randn(2, 3, 8641), -1), "camera": torch.log_softmax(torch.randn(2, 3, 121), -1)}
    b = torch.randint(0, 8641, (2, 3))
    c = torch.randint(0, 121, (2, 3))
    mask = torch.tensor([[True, True, False], [True, False, False]])
    terms = [-(logp["buttons"][i, j, b[i, j]] + logp["camera"][i, j, c[i, j]]) for i, j in [(0, 0), (0, 1), (1, 0)]]
    torch.testing.assert_close(bc_loss(logp, b, c, mask), sum(terms) / 3)
    acc_b, acc_c, acc = head_accuracy({"buttons": torch.nn.functional.one_hot(b, 8641).float(),
                                       "camera": torch.zeros(2, 3, 121)}, b, c, mask)
    assert acc_b == 1.0 and acc_c == pytest.approx(float(((c == 0) & mask).sum()) / 3)


def test_gradient_clipping_clips_the_total_norm():
    w = torch.nn.Parameter(torch.ones(10))
    (w * 100.0).sum().backward()
    before = clip_gradients([w], 5.0)
    assert before == pytest.approx(100.0 * np.sqrt(10))
    assert float(w.grad.norm()) == pytest.approx(5.0, rel=1e-5)


def test_tiny_bc_lowers_loss_and_writes_a_checkpoint_that_reproduces_outputs(data, tmp_path):
    path, net = run_bc(_args(data, tmp_path / "bc"))
    assert path == tmp_path / "bc" / "bc.model" and (tmp_path / "bc" / "bc.weights").is_file()
    losses = [h["loss"] for h in _history(tmp_path / "bc")]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert list((tmp_path / "bc" / "tb").glob("events.out.tfevents.*"))  # TensorBoard logs
    loaded = load_policy(path, tmp_path / "bc" / "bc.weights")
    net.eval()
    img = torch.randint(0, 256, (2, 8, 128, 128, 3), dtype=torch.uint8)
    first = torch.zeros(2, 8, dtype=torch.bool)
    first[:, 0] = True
    with torch.no_grad():
        a, va, _ = net(img, first, net.initial_state(2))
        b, vb, _ = loaded(img, first, loaded.initial_state(2))
    torch.testing.assert_close(a["buttons"], b["buttons"], rtol=0, atol=0)
    torch.testing.assert_close(a["camera"], b["camera"], rtol=0, atol=0)


def test_resume_after_a_kill_continues_from_the_saved_step(data, tmp_path, monkeypatch):
    out = tmp_path / "bc"
    real_loss, calls = bc_mod.bc_loss, []

    def dying_loss(*a, **k):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt("killed")
        return real_loss(*a, **k)

    monkeypatch.setattr(bc_mod, "bc_loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        run_bc(_args(data, out, total_steps=12, save_every=3))
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == 6
    monkeypatch.setattr(bc_mod, "bc_loss", real_loss)
    saved = load_policy(out / "bc.model", out / "bc.weights").state_dict()
    loaded, seen = [], []
    orig_load, real_opt_step = bc_mod.load_policy, torch.optim.AdamW.step

    def load_and_keep(*a, **k):
        loaded.append(orig_load(*a, **k))
        return loaded[-1]

    def spy_step(self, *a, **k):
        if not seen:  # the first step after resuming starts from the saved weights and optimizer state
            seen.append(all(torch.equal(p.detach(), saved[n]) for n, p in loaded[0].named_parameters()))
            seen.append(all(len(self.state[p]) > 0 for g in self.param_groups for p in g["params"]))
        return real_opt_step(self, *a, **k)

    monkeypatch.setattr(bc_mod, "load_policy", load_and_keep)  # the name train.bc resumes with
    monkeypatch.setattr(torch.optim.AdamW, "step", spy_step)
    run_bc(_args(data, out, total_steps=12, save_every=3))
    assert len(loaded) == 1 and seen == [True, True]
    steps = [h["step"] for h in _history(out)]
    assert steps == list(range(1, 13))  # 1..6 before the kill, 7..12 after (the unsaved 7 is redone)
    assert torch.load(out / "train_state.pt", weights_only=True)["step"] == 12


def test_finetune_from_checkpoint_with_frozen_cnn(data, tmp_path):
    torch.manual_seed(0)
    base = PolicyNet(POLICY_PRESETS["micro"], temperature=2.0)
    from vpt_rl.checkpoint import save_policy

    save_policy(base, tmp_path / "base.model", tmp_path / "base.weights")
    path, net = run_bc(_args(data, tmp_path / "ft", init_model=str(tmp_path / "base.model"), freeze_cnn=True,
                             total_steps=4))
    assert net.temperature == 2.0  # config and temperature come from the checkpoint
    sd, sd0 = net.state_dict(), base.state_dict()
    cnn = [k for k in sd if k.startswith("net.img_process.cnn.")]
    assert cnn and all(torch.equal(sd[k], sd0[k]) for k in cnn)
    assert not torch.equal(sd["pi_head.buttons.linear_layer.weight"], sd0["pi_head.buttons.linear_layer.weight"])
    assert all(torch.equal(sd[k], sd0[k]) for k in sd if k.startswith("value_head."))


def _run_cli(args, nproc):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if nproc == 1:
        cmd = [sys.executable, "-m", "vpt_rl.train.bc", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "vpt_rl.train.bc", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_ddp_two_processes_give_the_same_loss_curve_shape_as_one(data, tmp_path):
    common = [str(data), "--preset", "micro", "--seq-len", "8", "--steps", "24", "--lr", "3e-3", "--warmup-steps", "0",
              "--log-every", "4", "--device", "cpu", "--no-progress", "--seed", "3", "--no-prior-init"]
    _run_cli(common + ["--batch-size", "4", "--out", str(tmp_path / "single")], nproc=1)
    _run_cli(common + ["--batch-size", "2", "--out", str(tmp_path / "ddp")], nproc=2)
    single, ddp = _history(tmp_path / "single"), _history(tmp_path / "ddp")
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["world_size"] == 2
    assert [h["step"] for h in ddp] == [h["step"] for h in single] == [4, 8, 12, 16, 20, 24]
    ls, ld = np.array([h["loss"] for h in single]), np.array([h["loss"] for h in ddp])
    assert ld[-1] < 0.8 * ld[0] and ls[-1] < 0.8 * ls[0]  # both learn
    assert abs(ld[-1] - ls[-1]) < 0.25 * ls[-1]  # to about the same level
    assert np.corrcoef(ls, ld)[0, 1] > 0.8  # same shape
    assert load_policy(tmp_path / "ddp" / "ddp.model", tmp_path / "ddp" / "ddp.weights") is not None


def test_bc_label_counts_apply_both_null_filters(tmp_path):
    from vpt_rl.actions import env_to_agent
    from vpt_rl.data.contractor import load_actions
    from vpt_rl.train.bc import bc_label_counts

    seg = write_synthetic_segment(tmp_path / "rec", 40, seed=7, press_prob=0.2, camera_prob=0.3)
    b, c = bc_label_counts([seg])
    kept = [env_to_agent(a) for a, null in load_actions(seg.with_suffix(".jsonl")) if not null]
    kept = [(int(x), int(y)) for x, y in kept if (int(x), int(y)) != (0, 60)]
    assert 0 < len(kept) < 40  # the recording has null steps, and they are not counted
    assert b.sum() == c.sum() == len(kept)
    for x, y in set(kept):
        assert b[x] == sum(1 for k in kept if k[0] == x) and c[y] == sum(1 for k in kept if k[1] == y)


def test_prior_init_makes_a_fresh_policy_predict_the_action_frequencies(data):
    from vpt_rl.data.contractor import find_segments
    from vpt_rl.train.bc import bc_label_counts, init_policy_heads

    torch.manual_seed(0)
    segs = find_segments([str(data)])
    net = PolicyNet(POLICY_PRESETS["micro"], temperature=2.0).eval()
    init_policy_heads(net, segs)
    b, c = bc_label_counts(segs)
    img = torch.randint(0, 256, (1, 8, 128, 128, 3), dtype=torch.uint8)
    with torch.no_grad():
        logp, _, _ = net(img, torch.zeros(1, 8, dtype=torch.bool), net.initial_state(1))
    pb, pc = logp["buttons"].exp().mean((0, 1)).numpy(), logp["camera"].exp().mean((0, 1)).numpy()
    np.testing.assert_allclose(pb, (b + 0.1) / (b.sum() + 0.1 * len(b)), atol=0.01)
    np.testing.assert_allclose(pc, (c + 0.1) / (c.sum() + 0.1 * len(c)), atol=0.01)
    assert pb.argmax() == b.argmax() and pc.argmax() == c.argmax()  # argmax = the majority class from step 0


def test_heldout_scores_show_a_prior_only_policy_as_collapsed(data):
    from vpt_rl.actions import NULL_BUTTONS, NULL_CAMERA, env_to_agent
    from vpt_rl.data.contractor import find_segments, load_actions
    from vpt_rl.train.bc import bc_label_counts, collapse_report, evaluate_bc, init_policy_heads

    torch.manual_seed(0)
    segs = find_segments([str(data)])
    train, val = segs[:3], segs[3:]
    net = PolicyNet(POLICY_PRESETS["micro"]).eval()
    init_policy_heads(net, train)  # heads at the marginals with near-zero weights: a collapsed policy
    counts = bc_label_counts(train)
    m = evaluate_bc(net, val, seq_len=8, train_counts=counts)
    labels = [env_to_agent(a) for a, null in load_actions(val[0].with_suffix(".jsonl")) if not null]
    labels = [(b, c) for b, c in labels if not (b == NULL_BUTTONS and c == NULL_CAMERA)]
    assert m["n_frames"] == len(labels)
    maj_b, maj_c = int(np.argmax(counts[0])), int(np.argmax(counts[1]))
    assert m["majority_accuracy_joint"] == pytest.approx(np.mean([(b, c) == (maj_b, maj_c) for b, c in labels]))
    assert m["nll"] == pytest.approx(m["nll_marginal"], abs=0.05)
    assert m["p_attack_sd"] < 0.01 and m["buttons_tv_spread"] < 0.02
    assert "collapsed" in collapse_report(m)
    healthy = dict(m, nll=m["nll_marginal"] - 1.0, buttons_tv_spread=0.3)
    assert "collapsed" not in collapse_report(healthy)


def test_bc_run_writes_heldout_scores_to_metrics(data, tmp_path):
    out = tmp_path / "bc"
    run_bc(_args(data, out, total_steps=6, val_fraction=0.25, eval_every=3))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["val_segments"]) == 1 and len(metrics["train_segments"]) == 3
    assert [h["step"] for h in metrics["heldout_history"]] == [3, 6]
    assert {"nll", "nll_marginal", "accuracy_joint", "majority_accuracy_joint", "p_attack_sd",
            "buttons_tv_spread"} <= set(metrics["final"])
    with pytest.raises(ValueError, match="val_fraction"):
        run_bc(_args(data, tmp_path / "bad", val_fraction=1.0))
