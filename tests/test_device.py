"""``--device`` / ``device=`` and ``--precision``: the device names resolve_device takes and refuses, the auto
choice (CUDA mocked), the Sample Factory spelling, the precision check, and pinned loaders for CUDA."""
import pytest
import torch
from torch.utils.data import IterableDataset

from vpt_rl.data.dataset import make_loader
from vpt_rl.train import bc, idm
from vpt_rl.train.runtime import autocast, check_device_name, check_precision, resolve_device, sf_device


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend the machine has two GPUs (nothing is put on them: torch.device objects only)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_auto_is_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_is_cuda_when_cuda_is_available(fake_cuda):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")  # cpu stays cpu


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_refused(no_cuda, name):
    with pytest.raises(ValueError, match=rf"device '{name}': CUDA is not available on this machine; expected auto "
                                         r"or cpu"):
        resolve_device(name)


def test_cuda_index_past_the_last_gpu_is_refused(fake_cuda):
    with pytest.raises(ValueError, match=r"device 'cuda:2': this machine has 2 CUDA device\(s\); expected cuda:0 "
                                         r"to cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["gpu", "GPU", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "mps", "", " cpu", 0, None])
def test_misspelt_devices_are_refused(fake_cuda, name):
    with pytest.raises(ValueError, match=rf"device {name!r}: expected auto, cpu, cuda or cuda:N"):
        resolve_device(name)
    with pytest.raises(ValueError, match="expected auto, cpu, cuda or cuda:N"):
        check_device_name(name)


def test_check_device_name_does_not_need_cuda(no_cuda):
    # argument checks run before the device is needed: the spelling only
    assert check_device_name("cuda:7") == "cuda:7"
    assert check_device_name(torch.device("cuda", 1)) == "cuda:1"


def test_training_args_refuse_a_misspelt_device():
    with pytest.raises(ValueError, match="device 'gpu': expected auto, cpu, cuda or cuda:N"):
        bc.Args(data=["x"], device="gpu")
    with pytest.raises(ValueError, match="device 'cuda0': expected"):
        idm.Args(data=["x"], device="cuda0")
    assert idm.Args(data=["x"]).device == "auto" and bc.Args(data=["x"]).device == "auto"


# ------------------------------------------------------------------ Sample Factory's --device gpu|cpu


def test_sf_device_maps_auto_to_cpu_without_cuda(no_cuda):
    assert sf_device("auto") == "cpu"
    assert sf_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device 'gpu': CUDA is not available on this machine"):
        sf_device("gpu")
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available on this machine"):
        sf_device("cuda")


def test_sf_device_maps_auto_to_gpu_with_cuda(fake_cuda):
    assert sf_device("auto") == "gpu"
    assert sf_device("cuda") == "gpu"
    assert sf_device("gpu") == "gpu"  # SF's own spelling is taken as it is
    assert sf_device("cpu") == "cpu"


def test_sf_device_refuses_a_gpu_index_and_misspellings(fake_cuda):
    with pytest.raises(ValueError, match=r"device 'cuda:1': Sample Factory places its processes on GPUs itself; "
                                         r"use cuda \(or auto\) and CUDA_VISIBLE_DEVICES=1"):
        sf_device("cuda:1")
    with pytest.raises(ValueError, match="device 'tpu': expected auto, cpu, cuda or cuda:N"):
        sf_device("tpu")


# ------------------------------------------------------------------ precision


def test_precision_names():
    assert [check_precision(p) for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    with pytest.raises(ValueError, match="precision 'fp8': expected one of fp32, bf16, fp16"):
        check_precision("fp8")
    with pytest.raises(ValueError, match="precision 'float16': expected one of fp32, bf16, fp16"):
        autocast("cpu", "float16")


def test_fp16_needs_cuda(no_cuda):
    with pytest.raises(ValueError, match="precision 'fp16' on device 'cpu': fp16 autocast needs CUDA; use bf16"):
        autocast("cpu", "fp16")
    with pytest.raises(ValueError, match="fp16 autocast needs CUDA"):
        check_precision("fp16", "auto")  # auto is the CPU here


def test_fp16_is_accepted_for_cuda(fake_cuda):
    assert check_precision("fp16", "auto") == "fp16"
    assert check_precision("fp16", torch.device("cuda", 1)) == "fp16"


def test_autocast_turns_cpu_matmuls_to_bf16_and_fp32_leaves_them():
    a = torch.randn(4, 4)
    with autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (a @ a).dtype == torch.float32
    assert (a @ a).dtype == torch.float32  # nothing leaks out of the block


# ------------------------------------------------------------------ pinned loaders


class _Batches(IterableDataset):
    def __iter__(self):
        yield {"img": torch.zeros(2, 3, dtype=torch.uint8), "stream": 0}


def test_loader_pins_memory_for_cuda_only():
    ds = _Batches()
    assert make_loader(ds).pin_memory is False
    assert make_loader(ds, device=torch.device("cpu")).pin_memory is False
    assert make_loader(ds, device="cuda").pin_memory is True
    assert make_loader(ds, device=torch.device("cuda", 1)).pin_memory is True
    assert make_loader(ds, device="cuda", pin_memory=False).pin_memory is False
    assert make_loader(ds, device="cpu", pin_memory=True).pin_memory is True


def test_cpu_loader_batches_are_unchanged():
    batch = next(iter(make_loader(_Batches(), device="cpu")))
    assert batch["stream"] == 0 and torch.equal(batch["img"], torch.zeros(2, 3, dtype=torch.uint8))
