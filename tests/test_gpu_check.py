"""benchmarks/gpu_check.py on the CPU (--quick): the JSON files and their keys, CPU-vs-CPU fixtures identical, and the
same official-fixture agreement as the parity tests; bad arguments refused."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out-dir", str(out)],
                         env=env, capture_output=True, text=True, timeout=300)
    return res, out


def _load(out, name):
    return json.loads((out / name).read_text())


def test_quick_cpu_run_passes_and_writes_the_three_files(quick_run):
    res, out = quick_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.json")) == ["gpu_fixtures.json", "gpu_throughput.json",
                                                           "gpu_train_steps.json"]
    for name in ("gpu_fixtures.json", "gpu_throughput.json", "gpu_train_steps.json"):
        data = _load(out, name)
        assert {"date", "device", "machine", "torch", "headline", "rows"} <= set(data) and data["device"] == "cpu"
        assert all(r["ok"] for r in data["rows"]), name
    assert "policy (micro, step mode)" in res.stdout and "wrote" in res.stdout


def test_cpu_against_cpu_on_the_fixtures_is_identical_and_matches_the_official_outputs(quick_run):
    head = _load(quick_run[1], "gpu_fixtures.json")["headline"]
    for net in ("policy (micro, step mode)", "idm (micro, one window)"):
        assert head[f"{net} max_abs_dlogp_vs_cpu"] == 0.0
        assert head[f"{net} argmax_agreement_vs_cpu"] == 1.0
        assert head[f"{net} max_abs_dlogp_vs_official"] < 1e-4  # the tolerance of tests/test_model.py, test_idm.py
        assert head[f"{net} argmax_agreement_vs_official"] == 1.0
    assert head["policy (micro, step mode) frames"] == 28 and head["idm (micro, one window) frames"] == 8


def test_throughput_and_training_keys(quick_run):
    head = _load(quick_run[1], "gpu_throughput.json")["headline"]
    for layout in ("default", "whole"):
        for b in (1, 8, 64):
            assert head[f"micro b{b} {layout} frames_per_s"] > 0 and head[f"micro b{b} {layout} peak_mem_mib"] > 0
        assert head[f"micro_idm fp32 {layout} frames_per_s"] > 0
        assert 0.9 <= head[f"micro_idm bf16 {layout} argmax_agreement_vs_fp32"] <= 1.0
    assert head["micro b2x8 fp32 samples_per_s"] > 0 and head["micro b2x8 bf16 samples_per_s"] > 0
    assert head["sb3 VPTPPO micro x2 envs env_steps_per_s"] > 0
    assert head["frame filter cnn w16 b256 frames_per_s"] > 0 and head["frame filter cnn w16 b256 batch"] == 256
    assert head["sample factory async micro skipped"] in ("--quick", "sample_factory not installed")
    steps = {r["case"]: r for r in _load(quick_run[1], "gpu_train_steps.json")["rows"]}
    assert steps["train-bc (1 step)"]["param_device"] == "cpu" and steps["train-bc (1 step)"]["loss"] > 0
    assert steps["sb3 VPTPPO (1 iteration)"]["env_steps"] == 16
    assert steps["train-idm (1 step)"]["n_frames"] > 0
    sf = steps["sample factory (1 iteration)"]
    assert sf.get("skipped") == "sample_factory not installed" or sf["env_steps"] >= 16


def test_bad_arguments_and_a_missing_official_checkout(tmp_path, capsys):
    mod = _module()
    if not torch.cuda.is_available():
        assert mod.main(["--device", "cuda", "--out-dir", str(tmp_path)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    assert mod.main(["--device", "cpu", "--parts", "fixtures,speed", "--out-dir", str(tmp_path)]) == 2
    assert "unknown ['speed']" in capsys.readouterr().err
    assert mod.main(["--device", "tpu", "--out-dir", str(tmp_path)]) == 2
    assert "expected cuda, cuda:N or cpu" in capsys.readouterr().err
    rc = mod.main(["--device", "cpu", "--quick", "--parts", "fixtures", "--official", str(tmp_path / "nope"),
                   "--out-dir", str(tmp_path)])
    assert rc == 1  # the fixtures still ran and were written; the official part says why it could not run
    off = _load(tmp_path, "gpu_official.json")
    assert off["rows"][0]["ok"] is False and "expected a checkout of openai/Video-Pre-Training" in off["rows"][0]["error"]
    assert _load(tmp_path, "gpu_fixtures.json")["headline"]["policy (micro, step mode) max_abs_dlogp_vs_cpu"] == 0.0
