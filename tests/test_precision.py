"""bf16 autocast inference on the CPU stays within the tolerance documented in docs/performance.md ("Reduced
precision"), against the fp32 outputs of the official fixture checkpoints; and --precision on the commands.

Measured on 2026-12-02 (2-core x86_64 CPU, no GPU, torch 2.13.0+cpu), bf16 vs fp32 on the fixtures:
policy (2 envs x 14 frames, memory carried) max |d log p| 0.220 buttons, 0.182 camera, max |d vpred| 0.125,
argmax kept on 24/28 (buttons) and 23/28 (camera) frames; IDM (8 frames) max |d log p| 0.064 buttons, 0.057
camera, argmax kept on 156/160 buttons and 16/16 camera axes. The bounds below leave ~1/3 headroom.
"""
import json
import warnings

import numpy as np
import pytest
import torch

from vpt_rl.checkpoint import load_idm, load_policy
from vpt_rl.data.contractor import DataWarning, load_actions
from vpt_rl.data.video import write_video
from vpt_rl.evaluate import PolicyAgent
from vpt_rl.train import label as label_mod
from vpt_rl.train.runtime import autocast

# the documented tolerances (docs/performance.md, "Reduced precision")
POLICY_MAX_DLOGP = 0.3
POLICY_MAX_DVPRED = 0.2
POLICY_MIN_ARGMAX_AGREEMENT = 0.75  # the fixture's random net is nearly flat: top-1 leads down to 3e-5
IDM_MAX_DLOGP = 0.1
IDM_MIN_ARGMAX_AGREEMENT = 0.95
BF16_MIN_EFFECT = 1e-3  # bf16 must change the numbers at all (else autocast was not applied)


@pytest.fixture(scope="module")
def policy(fixtures_dir):
    return load_policy(fixtures_dir / "policy.model", fixtures_dir / "policy.weights").eval()


@pytest.fixture(scope="module")
def idm(fixtures_dir):
    return load_idm(fixtures_dir / "idm.model", fixtures_dir / "idm.weights").eval()


def _policy_outputs(net, expected, chunk, precision):
    """(buttons, camera, vpred) over the fixture's 14 frames fed ``chunk`` at a time, memory carried in float32."""
    state, outs = net.initial_state(2), []
    with torch.no_grad():
        for i in range(0, 14, chunk):
            with autocast("cpu", precision):
                logp, vpred, state = net(expected["img"][:, i:i + chunk], expected["first"][:, i:i + chunk], state)
            state = [(m, k.float(), v.float()) for m, k, v in state]
            outs.append((logp["buttons"].float(), logp["camera"].float(), vpred.float()))
    return [torch.cat([o[j] for o in outs], dim=1) for j in range(3)]


@pytest.mark.parametrize("chunk", [1, 14], ids=["step_by_step", "one_chunk"])
def test_bf16_policy_stays_within_the_documented_tolerance(policy, fixtures_dir, chunk):
    expected = torch.load(fixtures_dir / "policy_expected.pt", weights_only=True)
    b32, c32, v32 = _policy_outputs(policy, expected, chunk, "fp32")
    b16, c16, v16 = _policy_outputs(policy, expected, chunk, "bf16")
    assert (b32 - expected["step"]["buttons"][:, :, 0]).abs().max() < 1e-4  # the reference is the official one
    for ref, low in ((b32, b16), (c32, c16)):
        err = (low - ref).abs().max().item()
        assert BF16_MIN_EFFECT < err <= POLICY_MAX_DLOGP
        assert (low.argmax(-1) == ref.argmax(-1)).float().mean().item() >= POLICY_MIN_ARGMAX_AGREEMENT
    assert (v16 - v32).abs().max().item() <= POLICY_MAX_DVPRED


def test_bf16_idm_stays_within_the_documented_tolerance(idm, fixtures_dir):
    expected = torch.load(fixtures_dir / "idm_expected.pt", weights_only=True)
    with torch.no_grad():
        ref = idm(expected["img"])
        with autocast("cpu", "bf16"):
            low = idm(expected["img"])
    assert (ref["buttons"] - expected["logp"]["buttons"]).abs().max() < 1e-4
    for head in ("buttons", "camera"):
        err = (low[head].float() - ref[head]).abs().max().item()
        assert BF16_MIN_EFFECT < err <= IDM_MAX_DLOGP, head
        agree = (low[head].float().argmax(-1) == ref[head].argmax(-1)).float().mean().item()
        assert agree >= IDM_MIN_ARGMAX_AGREEMENT, head


# ------------------------------------------------------------------------------------------ the commands


def _video(folder, n=12, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, size=(n, 128, 128, 3), dtype=np.uint8)
    return write_video(folder / "v0.mp4", frames)


def test_label_videos_in_bf16_agree_with_fp32_and_are_not_reused_for_fp32(tmp_path, fixtures_dir, idm, monkeypatch):
    video = _video(tmp_path)
    frames = label_mod.read_video_frames(video)
    ref_b, _, ref_cam, ref_conf = label_mod.predict_video(idm, frames, 8, batch_size=2, details=True)
    low_b, _, low_cam, low_conf = label_mod.predict_video(idm, frames, 8, batch_size=2, details=True,
                                                          precision="bf16")
    assert (low_b == ref_b).mean() >= IDM_MIN_ARGMAX_AGREEMENT
    # the confidence is the product of the 20 buttons' top probabilities: its log moves by at most 20 x the bound
    d_log_conf = np.abs(np.log(low_conf) - np.log(ref_conf)).max()
    assert BF16_MIN_EFFECT < d_log_conf <= 20 * IDM_MAX_DLOGP and low_conf.dtype == np.float64

    kw = dict(batch_size=2, device="cpu", progress=False)
    label_mod.label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", precision="bf16",
                           **kw)
    assert json.loads((tmp_path / "v0.label.json").read_text())["precision"] == "bf16"
    assert len(load_actions(tmp_path / "v0.jsonl")) == 12
    calls = []
    real = label_mod.predict_video
    monkeypatch.setattr(label_mod, "predict_video", lambda *a, **k: calls.append(k["precision"]) or real(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        label_mod.label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
        label_mod.label_videos([tmp_path], fixtures_dir / "idm.model", fixtures_dir / "idm.weights", **kw)
    assert calls == ["fp32"]  # relabelled once in fp32, then skipped
    assert "precision" not in json.loads((tmp_path / "v0.label.json").read_text())  # fp32 markers as before


def test_fp16_and_unknown_precisions_are_refused_before_any_work(tmp_path, fixtures_dir, capsys):
    _video(tmp_path)
    with pytest.raises(ValueError, match="fp16 autocast needs CUDA; use bf16"):
        label_mod.label_videos([tmp_path], fixtures_dir / "idm.model", precision="fp16", device="cpu", progress=False)
    with pytest.raises(SystemExit) as e:
        label_mod.main(["--model", str(fixtures_dir / "idm.model"), str(tmp_path), "--precision", "fp16",
                        "--device", "cpu"])
    assert e.value.code == 2
    assert "vpt-rl label: error: precision 'fp16' on device 'cpu': fp16 autocast needs CUDA" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        label_mod.main(["--model", str(fixtures_dir / "idm.model"), str(tmp_path), "--precision", "half"])
    assert "precision 'half': expected one of fp32, bf16, fp16" in capsys.readouterr().err
    assert not (tmp_path / "v0.jsonl").exists()


def test_policy_agent_in_bf16_keeps_a_float32_memory(fixtures_dir):
    agent = PolicyAgent(str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights"), device="cpu",
                        precision="bf16", deterministic=True)
    assert agent.device == torch.device("cpu")
    agent.start(2)
    obs = [{"pov": np.full((128, 128, 3), 40 * i, np.uint8)} for i in range(2)]
    for step in range(3):
        actions = agent.act(obs, np.array([step == 0] * 2), np.ones(2, bool))
    assert [a.shape for a in actions] == [(2,), (2,)]
    assert all(k.dtype == torch.float32 and v.dtype == torch.float32 for _, k, v in agent.state)
    with pytest.raises(ValueError, match="fp16 autocast needs CUDA"):
        PolicyAgent(str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights"), device="cpu",
                    precision="fp16")


def test_demo_and_evaluate_take_precision_and_device(fixtures_dir, capsys, monkeypatch):
    from vpt_rl.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, weights = str(fixtures_dir / "policy.model"), str(fixtures_dir / "policy.weights")
    values = {}
    for precision in ("fp32", "bf16"):
        assert main(["demo", "--model", model, "--weights", weights, "--steps", "3", "--precision", precision]) == 0
        lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step")]
        values[precision] = np.array([float(ln.rsplit("value ", 1)[1].rstrip(")")) for ln in lines])
    assert len(values["bf16"]) == 3
    # the printed value is denormalised: its scale times the vpred tolerance bounds it
    scale = float(load_policy(model, weights).denormalize_value(torch.ones(1)) -
                  load_policy(model, weights).denormalize_value(torch.zeros(1)))
    assert np.abs(values["bf16"] - values["fp32"]).max() <= POLICY_MAX_DVPRED * abs(scale) + 1e-3
    assert main(["demo", "--model", model, "--weights", weights, "--precision", "fp16"]) == 2
    assert "vpt-rl demo: precision 'fp16' on device 'cpu': fp16 autocast needs CUDA" in capsys.readouterr().err
    assert main(["demo", "--model", model, "--weights", weights, "--device", "cuda"]) == 2
    assert "vpt-rl demo: device 'cuda': CUDA is not available on this machine" in capsys.readouterr().err
    assert main(["evaluate", "--agent", model, "--weights", weights, "--precision", "fp16", "--episodes", "1"]) == 2
    assert "vpt-rl evaluate: precision 'fp16' on device 'cpu': fp16 autocast needs CUDA" in capsys.readouterr().err
    assert main(["evaluate", "--agent", model, "--weights", weights, "--device", "gpu", "--episodes", "1"]) == 2
    assert "vpt-rl evaluate: device 'gpu': expected auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert main(["finetune", "--preset", "micro", "--steps", "8", "--device", "cuda:0"]) == 2
    assert "vpt-rl finetune: device 'cuda:0': CUDA is not available" in capsys.readouterr().err
