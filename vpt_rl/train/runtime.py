"""The plumbing every training loop shares: seeding, device choice, the learning-rate schedule, TensorBoard,
stopping on Ctrl-C / ``kill`` with a checkpoint, and torch.distributed (torchrun) helpers."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import re
import shlex
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from vpt_rl.interrupt import Interrupted, StopFlag


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def lr_at(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up for ``warmup_steps``, then cosine decay to ``min_ratio * base_lr`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
"""what a ``--device`` / ``device=`` takes (:func:`resolve_device`)"""

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def check_device_name(name: Union[str, torch.device]) -> str:
    """``name`` as a string after checking its spelling only (``auto``, ``cpu``, ``cuda`` or ``cuda:N``; a
    :class:`torch.device` of type cpu or cuda), without asking whether CUDA is there: for argument checks that
    run before the device is needed (:func:`resolve_device` checks the machine).

    :raises ValueError: naming the value and what is expected.
    """
    text = str(name) if isinstance(name, torch.device) else name
    match = _DEVICE_RE.match(text) if isinstance(text, str) else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"device {name!r}: expected {DEVICE_CHOICES}")
    return text


def resolve_device(name: Union[str, torch.device] = "auto") -> torch.device:
    """The torch device a ``--device`` value names: ``"auto"`` -> ``cuda`` when ``torch.cuda.is_available()``,
    else ``cpu``; ``"cpu"``; ``"cuda"`` / ``"cuda:N"`` (a :class:`torch.device` is checked the same way).

    :raises ValueError: naming the value and what was expected, for a misspelt device (``"gpu"``), a CUDA
        device on a machine without CUDA, or ``cuda:N`` with N past the last GPU.
    """
    text = check_device_name(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {text!r}: CUDA is not available on this machine; expected auto or cpu "
                             f"(auto picks cuda when there is a GPU)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {text!r}: this machine has {count} CUDA device(s); expected cuda:0 to "
                             f"cuda:{count - 1}, cuda or auto")
    return device


def sf_device(name: Union[str, torch.device] = "auto") -> str:
    """A ``--device`` value in Sample Factory's spelling (its ``--device gpu|cpu``): ``auto`` -> ``gpu`` when
    CUDA is available, else ``cpu``; ``cuda`` (or SF's own ``gpu``) -> ``gpu``; ``cpu`` -> ``cpu``.

    :raises ValueError: naming the value: a CUDA device without CUDA, a misspelt device, or ``cuda:N`` (SF
        puts its learner and inference workers on the visible GPUs itself; ``CUDA_VISIBLE_DEVICES`` picks them).
    """
    if name == "gpu":  # SF's own spelling
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available on this machine; expected auto or cpu")
        return "gpu"
    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None:
        raise ValueError(f"device {name!r}: Sample Factory places its processes on GPUs itself; use cuda (or auto) "
                         f"and CUDA_VISIBLE_DEVICES={device.index} to pick that GPU")
    return "gpu" if device.type == "cuda" else "cpu"


PRECISIONS = ("fp32", "bf16", "fp16")
"""inference precisions (:func:`autocast`): float32, or bfloat16 / float16 autocast"""

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: Union[str, torch.device, None] = None) -> str:
    """``precision`` after checking it is one of :data:`PRECISIONS` and, when ``device`` is given (a resolved
    device or a ``--device`` value), that it can run there: fp16 autocast needs CUDA.

    :raises ValueError: naming the value and what is expected.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device is not None:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        if dev.type != "cuda":
            raise ValueError(f"precision 'fp16' on device {str(dev)!r}: fp16 autocast needs CUDA; use bf16 on "
                             "the CPU (or fp32)")
    return precision


def autocast(device: Union[str, torch.device], precision: str = "fp32") -> contextlib.AbstractContextManager:
    """The context to run inference in at ``precision`` on ``device``: :func:`torch.autocast` to bfloat16
    (``"bf16"``) or float16 (``"fp16"``, CUDA only), or a no-op for ``"fp32"``. Outputs made inside may be
    bf16/fp16: call ``.float()`` on what leaves it. docs/performance.md ("Reduced precision") gives the measured
    change in log-probabilities.

    :raises ValueError: for an unknown precision, or fp16 on a CPU (:func:`check_precision`).
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    check_precision(precision, dev)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=_AUTOCAST_DTYPES[precision])


def summary_writer(logdir: Optional[Union[str, Path]]):
    """A TensorBoard ``SummaryWriter`` for ``logdir`` (None: a writer that drops everything)."""
    if not logdir:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(logdir))


class _NullWriter:
    def add_scalar(self, *a, **k):
        pass

    def add_text(self, *a, **k):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def saved_train_state(state_path: Union[str, Path], weights_path: Union[str, Path]) -> Optional[dict]:
    """The training state a run saved beside its weights, to resume from (``step``, ``optimizer``; from this version
    also ``model``, ``data``, ``history``); ``None`` unless both files exist (a run killed before its first checkpoint
    starts over). Read with ``weights_only=True``."""
    if not (Path(state_path).is_file() and Path(weights_path).is_file()):
        return None
    return torch.load(state_path, map_location="cpu", weights_only=True)


def cpu_state_dict(net: torch.nn.Module) -> dict:
    """A copy of ``net``'s state dict on the CPU, to save in a training state."""
    return {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}


def resumed_list(state: Optional[dict], key: str, metrics_path: Union[str, Path]) -> list:
    """The list ``key`` (a metrics history) of a run being resumed: from its training state, or, for states saved
    before they held it, from its ``metrics.json``; ``[]`` for a fresh run."""
    if state is None:
        return []
    if key in state:
        return list(state[key])
    return json.loads(Path(metrics_path).read_text()).get(key, []) if Path(metrics_path).is_file() else []


@contextlib.contextmanager
def eval_mode(net: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``net.eval()`` inside the block; the train/eval mode it had is restored after (also on error)."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def periodic_eval_and_save(step: int, args, run_eval: Callable[[], Any], save: Callable[[], Any]) -> None:
    """The periodic work after training step ``step``: ``run_eval()`` every ``args.eval_every`` steps and
    ``save()`` every ``args.save_every`` (0: never). The last step is left to the caller, which evaluates
    and saves once at the end."""
    if args.eval_every and step % args.eval_every == 0 and step < args.total_steps:
        run_eval()
    if args.save_every and step % args.save_every == 0 and step < args.total_steps:
        save()


def command_line(prog: str, args) -> str:
    """The shell command that runs ``prog`` with the dataclass ``args`` (only the fields that differ from their
    defaults, as ``--flag value``; positional list fields first), e.g. to tell the user how to resume."""
    words, flags = shlex.split(prog), []
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore
        if value == default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.metadata.get("positional"):
            words += [str(v) for v in value]
        elif isinstance(value, bool):
            flags.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            flags += [flag, *(str(v) for v in value)]
        else:
            flags += [flag, "none" if value is None else str(value)]
    return shlex.join(words + flags)


def agreed_stop(stop: StopFlag, world: int) -> Optional[int]:
    """The signal number if this process or, under torchrun, any rank was asked to stop (else None); every
    rank gets the same answer, so all stop after the same step and save together."""
    if world <= 1:
        return stop.signum
    t = torch.tensor([stop.signum or 0], dtype=torch.int64)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return int(t.item()) or None


def interrupted_at(signum: int, step: int, where: Union[str, Path]) -> Interrupted:
    """The :class:`Interrupted` a training loop raises after saving on a signal: the step and the folder of the
    checkpoint (a command's ``main`` adds how to resume, :func:`resume_hint`)."""
    return Interrupted(signum, f"stopped at step {step}; checkpoint saved in {where}", checkpoint=str(where))


@contextlib.contextmanager
def resume_hint(prog: str, args) -> Iterator[None]:
    """Inside the block, an :class:`Interrupted` that saved a checkpoint gets ``; resume with: COMMAND`` added
    (:func:`command_line` of ``prog`` and ``args``). For a command's ``main``: a caller such as the pipeline
    resumes its own way."""
    try:
        yield
    except Interrupted as e:
        if e.checkpoint is None:
            raise
        raise Interrupted(e.signum, f"{e}; resume with: {command_line(prog, args)}", e.checkpoint) from None


# Distributed (torchrun) helpers: torch.distributed, nothing home-made


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) outside torchrun."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device, timeout=None) -> tuple[int, int]:
    """Initialise the default process group when launched by torchrun (gloo on CPU, NCCL on CUDA).

    :param timeout: a ``datetime.timedelta`` for the group's collectives (None: torch's default, 30 min for gloo).
    """
    rank, world, _ = dist_env()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {} if timeout is None else {"timeout": timeout}
        torch.distributed.init_process_group(backend=backend, **kwargs)
    return rank, world


def all_reduce_mean(values: Sequence[float], world: int) -> list[float]:
    """Average a few floats over the process group (identity with one process)."""
    if world <= 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return (t / world).tolist()


def check_ranks_agree(values: dict, world: int, hint: str = "") -> None:
    """Raise the same ``RuntimeError`` on every rank when any rank's ``values`` differ from rank 0's.

    For what every rank reads on its own at start-up and must see alike, or the ranks fall out of step and hang
    in a collective (e.g. the step a resumed run starts from: a node that does not see the checkpoint would start
    from 0). A collective: every rank calls it. ``hint`` is added to the message (what to fix)."""
    if world <= 1:
        return
    gathered: list = [None] * world
    torch.distributed.all_gather_object(gathered, dict(values))
    problems = [f"rank {r} has {key} {v.get(key)!r} where rank 0 has {gathered[0].get(key)!r}"
                for r, v in enumerate(gathered) for key in values if v.get(key) != gathered[0].get(key)]
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise RuntimeError("the ranks disagree: " + "; ".join(problems[:4]) + more + (f". {hint}" if hint else ""))


def files_fingerprint(paths: Sequence[Union[str, Path]]) -> list[int]:
    """``[number of files, crc32 of their names and sizes in order]``: equal for the same files wherever they are
    mounted (unlike their absolute paths), to compare what several nodes see."""
    text = "\n".join(f"{Path(p).name}:{os.path.getsize(p)}" for p in paths)
    return [len(paths), zlib.crc32(text.encode("utf-8"))]
