"""Behavioural cloning (BC) of the VPT policy on (pseudo-)labelled contractor segments.

Run::

    vpt-rl train-bc data/pseudo --preset tiny --total-steps 2000 --out-dir runs/bc
    # fine-tune a foundation model on a targeted set (foundation -> task-specific BC, as in the paper)
    vpt-rl train-bc data/house --init-model runs/bc/bc.model --lr 5e-5 --out-dir runs/bc-house
    # several processes (gloo on CPU, NCCL on GPU); each rank reads its own shard of the segments
    torchrun --nproc_per_node 2 -m vpt_rl.train.bc data/pseudo --preset tiny --out-dir runs/bc-ddp

Targets are :func:`vpt_rl.actions.env_to_agent` of every non-null env action (null steps are dropped
at both levels of the official loader: the null jsonl line, then a joint action of (0, 60)). The loss is
the negative log-likelihood of the joint (buttons, camera) action under the temperature-scaled policy
(openai/Video-Pre-Training ``behavioural_cloning.py``), averaged over frames. Each batch row is a lane of consecutive segments cut into
chunks of ``seq_len`` frames; the transformer memory is carried, detached, from one chunk of a lane to
the next and cut at every segment start (``first``). Unlike the official demo, the optimizer is AdamW
(decoupled weight decay), gradient clipping actually clips, and the learning rate warms up then decays.

Writes ``OUT/NAME.model`` + ``OUT/NAME.weights`` (NAME defaults to the folder name: ``--out-dir runs/bc``
gives ``runs/bc/bc.model``; official format, atomic, readable by
:func:`vpt_rl.checkpoint.load_policy`), ``OUT/train_state.pt`` (step, optimizer, the data stream's position and,
in one process, the transformer memory of each lane; resume after a kill), ``OUT/metrics.json`` and TensorBoard
logs under ``OUT/tb`` (loss, per-head accuracy, frames/s).

**Resume and interrupts.** Rerunning the same command resumes (``--no-resume`` starts over); the data stream
continues where the checkpoint left it, so a preempted run still sees all its data. Ctrl-C or ``kill``
(SIGINT / SIGTERM; under torchrun on any rank) saves a checkpoint at the current step, prints where it is and
the command that resumes, and exits with 130 / 143.

**Collapse guard.** A share of the segments (``--val-fraction 0.1``, or ``--val-data``) is held out and
scored every ``--eval-every`` steps and at the end (:func:`evaluate_bc`): held-out NLL against the label
marginals' NLL, argmax accuracy against the majority class, and the spread of the policy's outputs over
frames. A policy that collapsed to a constant output matches the marginals and has no spread, and the
final line printed says so (:func:`collapse_report`). Training accuracy, which the attack majority
dominates, cannot show this.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from vpt_rl.actions import (
    _JOINT_BUTTONS,
    BUTTONS_ALL,
    N_BUTTON_CLASSES,
    N_CAMERA_CLASSES,
    NULL_BUTTONS,
    NULL_CAMERA,
    env_to_agent,
)
from vpt_rl.atomic import atomic_torch_save, atomic_write_json, remove_stale_temporaries
from vpt_rl.checkpoint import build_policy, load_policy, save_policy
from vpt_rl.data.contractor import find_segments
from vpt_rl.data.dataset import (
    SequenceDataset,
    StreamPositions,
    clean_actions,
    layout_key,
    make_loader,
    split_segments,
)
from vpt_rl.interrupt import Interrupted, StopFlag, run_main, stop_requested
from vpt_rl.model import action_log_prob, state_detach
from vpt_rl.model_config import POLICY_PRESETS
from vpt_rl.train.args import TRAINING_INPUTS, RunArgs, check_ranges, parse_args
from vpt_rl.train.prior import init_head_from_prior, prior_log_probs
from vpt_rl.train.runtime import (
    agreed_stop,
    all_reduce_mean,
    check_ranks_agree,
    cpu_state_dict,
    dist_env,
    eval_mode,
    files_fingerprint,
    init_distributed,
    interrupted_at,
    lr_at,
    periodic_eval_and_save,
    resolve_device,
    resume_hint,
    resumed_list,
    saved_train_state,
    seed_everything,
    summary_writer,
)

# behavioural_cloning.py constants (official demo), used as defaults
OFFICIAL_LR = 0.000181
OFFICIAL_WEIGHT_DECAY = 0.039428
OFFICIAL_MAX_GRAD_NORM = 5.0


@dataclass
class Args(RunArgs):
    """Behavioural cloning of the VPT policy: NLL of the joint action, memory carried across chunks."""

    data: list[str] = field(default_factory=list, metadata={"positional": True})
    """(pseudo-)labelled segment folders / mp4 files / index JSONs (NAME.mp4 + NAME.jsonl)"""
    preset: str = field(default="tiny", metadata={"aliases": ["config"]})
    """policy config preset from vpt_rl.model.POLICY_PRESETS when training from scratch"""
    init_model: Optional[str] = None
    """fine-tune from this policy .model (its config and temperature override preset)"""
    init_weights: Optional[str] = None
    """weights for init_model (default: init_model with the suffix .weights)"""
    temperature: float = 1.0
    """policy temperature when training from scratch (the loss uses the temperature-scaled policy)"""
    seq_len: Optional[int] = None
    """frames per chunk T (default: the config's timesteps)"""
    batch_size: int = 4
    """lanes per rank (rows of a batch)"""
    total_steps: int = field(default=1000, metadata={"aliases": ["steps"]})
    """optimizer steps"""
    lr: float = OFFICIAL_LR
    """peak learning rate (AdamW); the official demo's value"""
    weight_decay: float = OFFICIAL_WEIGHT_DECAY
    """AdamW weight decay; the official demo's value"""
    warmup_steps: int = 50
    """linear warm-up steps, then cosine decay to min_lr_ratio * lr"""
    min_lr_ratio: float = 0.1
    """final learning rate as a fraction of lr"""
    max_grad_norm: float = OFFICIAL_MAX_GRAD_NORM
    """gradient-norm clip (0 disables); the official demo's value (which never took effect there)"""
    val_data: list[str] = field(default_factory=list)
    """held-out segments for the collapse guard (default: a val_fraction split of data)"""
    val_fraction: float = 0.1
    """fraction of the segments held out when val_data is empty (at least one segment stays for training;
    0: no held-out evaluation)"""
    eval_every: int = 500
    """evaluate on the held-out segments every this many steps (and at the end)"""
    eval_max_frames: int = 4000
    """cap on held-out frames per evaluation"""
    min_label_confidence: float = 0.0
    """skip frames whose pseudo-label confidence (``idm_confidence``, written by ``vpt-rl label``: the
    probability the IDM gave its predicted buttons) is below this; true labels count as 1.0"""
    max_segment_frames: Optional[int] = None
    """train on the first this many frames of each segment only (a targeted early-game set for fine-tuning a
    foundation model, as the paper's early-game BC); default: whole segments"""
    prior_init: bool = True
    """fresh nets only: start the action heads at the training labels' joint-action frequencies with
    near-zero weights (init_head_from_prior); the official demo's lr on a from-scratch small policy
    otherwise spends its steps on the majority action"""
    freeze_cnn: bool = False
    """freeze the ImpalaCNN (net.img_process.cnn) and train the rest"""
    log_every: int = 10
    """TensorBoard logging period in steps"""
    save_every: int = 200
    """checkpoint period in steps (and at the end)"""
    num_workers: int = 0
    """data decode worker processes per rank (0: in the training process)"""
    device: str = "auto"
    """torch device: auto, cpu, cuda (with torchrun: cuda:LOCAL_RANK)"""
    out_dir: str = field(default="runs/bc", metadata={"aliases": ["out"]})
    """checkpoint, metrics.json and TensorBoard folder"""
    progress: bool = True
    """show a tqdm progress bar (rank 0)"""

    def validate(self) -> None:
        super().validate()
        check_ranges(self, count=("seq_len", "batch_size", "total_steps", "eval_max_frames", "log_every",
                                  "max_segment_frames"),
                     non_negative=("weight_decay", "warmup_steps", "max_grad_norm", "eval_every", "save_every"),
                     positive=("lr", "temperature"), fraction=("val_fraction",),
                     probability=("min_lr_ratio", "min_label_confidence"))
        if not self.init_model and self.preset not in POLICY_PRESETS:
            raise ValueError(f"preset {self.preset!r} is not a policy preset; expected one of "
                             f"{', '.join(POLICY_PRESETS)}")
        if not self.data:
            raise ValueError("training a policy needs at least one data folder, mp4 or index JSON (args.data is empty)")


def bc_loss(logp: dict, buttons: torch.Tensor, camera: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames of ``-(log p(buttons) + log p(camera))`` (joint action NLL)."""
    m = mask.to(logp["buttons"].dtype)
    return -(action_log_prob(logp, buttons, camera) * m).sum() / m.sum().clamp_min(1.0)


def head_accuracy(logp: dict, buttons: torch.Tensor, camera: torch.Tensor,
                  mask: torch.Tensor) -> tuple[float, float, float]:
    """Argmax accuracy over valid frames: (buttons head, camera head, both)."""
    with torch.no_grad():
        ok_b = (logp["buttons"].argmax(-1) == buttons) & mask
        ok_c = (logp["camera"].argmax(-1) == camera) & mask
        n = max(int(mask.sum()), 1)
        return int(ok_b.sum()) / n, int(ok_c.sum()) / n, int((ok_b & ok_c).sum()) / n


@torch.no_grad()
def evaluate_bc(policy, segments: Sequence, seq_len: int, train_counts: tuple, max_frames: Optional[int] = None,
                device="cpu") -> dict:
    """Held-out scores of a BC policy, against the label marginals, and the spread of its outputs.

    The policy runs over ``segments`` (null steps dropped as in training, memory carried and cut at
    segment starts). A collapsed policy outputs the same distribution on every frame: its NLL equals the
    marginals' and its accuracy the majority class's, and its output spread is about 0.

    :param train_counts: ``(buttons (8641,), camera (121,))`` training label counts (:func:`bc_label_counts`)
        for the marginal baseline.
    :return: ``nll`` (joint, per frame), ``nll_marginal`` (the smoothed training marginals on the same
        frames), ``accuracy_buttons/camera/joint`` (argmax), ``majority_accuracy_buttons/camera/joint``,
        ``p_attack_sd`` (sd over frames of the probability of pressing attack), ``buttons_tv_spread`` (mean
        total-variation distance of each frame's button distribution from their average) and ``n_frames``.
    """
    with eval_mode(policy):
        ds = SequenceDataset(segments, batch_size=1, seq_len=seq_len, skip_null=True, drop_agent_null=True,
                             pack=True, epochs=1, shuffle=False)
        prior_b = torch.as_tensor(prior_log_probs(train_counts[0]), dtype=torch.float32, device=device)
        prior_c = torch.as_tensor(prior_log_probs(train_counts[1]), dtype=torch.float32, device=device)
        maj_b, maj_c = int(np.argmax(train_counts[0])), int(np.argmax(train_counts[1]))
        attack_classes = torch.as_tensor(_JOINT_BUTTONS[:, BUTTONS_ALL.index("attack")] == 1, device=device)
        state = policy.initial_state(1, device=device)
        nll, nll_m, ok_b, ok_c, ok, mj_b, mj_c, mj, p_attack, probs = [], [], [], [], [], [], [], [], [], []
        n = 0
        for batch in make_loader(ds, device=device):
            m = batch["mask"][0].to(device, non_blocking=True)
            img, first = batch["img"].to(device, non_blocking=True), batch["first"].to(device, non_blocking=True)
            logp, _, state = policy(img, first, state)
            if not m.any():
                continue
            b = batch["buttons"][0].to(device, non_blocking=True)[m]
            c = batch["camera"][0].to(device, non_blocking=True)[m]
            lb, lc = logp["buttons"][0][m].float(), logp["camera"][0][m].float()
            nll.append(-action_log_prob({"buttons": lb, "camera": lc}, b, c))
            nll_m.append(-(prior_b[b] + prior_c[c]))
            pb, pc = lb.argmax(-1) == b, lc.argmax(-1) == c
            ok_b.append(pb), ok_c.append(pc), ok.append(pb & pc)
            mj_b.append(b == maj_b), mj_c.append(c == maj_c), mj.append((b == maj_b) & (c == maj_c))
            prob = lb.exp()
            p_attack.append(prob[:, attack_classes].sum(-1))
            probs.append(prob)
            n += int(m.sum())
            if max_frames and n >= max_frames:
                break
    if n == 0:
        raise ValueError("no held-out BC frames could be read for evaluation")
    cat = lambda xs: torch.cat(xs).float()  # noqa: E731
    probs_all = torch.cat(probs)
    return {
        "n_frames": n, "nll": cat(nll).mean().item(), "nll_marginal": cat(nll_m).mean().item(),
        "accuracy_buttons": cat(ok_b).mean().item(), "accuracy_camera": cat(ok_c).mean().item(),
        "accuracy_joint": cat(ok).mean().item(), "majority_accuracy_buttons": cat(mj_b).mean().item(),
        "majority_accuracy_camera": cat(mj_c).mean().item(), "majority_accuracy_joint": cat(mj).mean().item(),
        "p_attack_sd": cat(p_attack).std(unbiased=False).item(),
        "buttons_tv_spread": 0.5 * (probs_all - probs_all.mean(0)).abs().sum(-1).mean().item(),
    }


def clip_gradients(params: list, max_norm: float) -> float:
    """Clip the total gradient norm of ``params`` (a list, not a spent generator as in the official demo)
    to ``max_norm`` (0: no clipping); returns the norm before clipping."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf")))


def bc_label_counts(segments: Sequence) -> tuple:
    """Counts of the BC targets over the segments' jsonl files (inside their clean spans), with both official null
    filters.

    :return: ``(buttons (8641,), camera (121,))`` int64 counts of the joint agent action classes.
    """
    buttons = np.zeros(N_BUTTON_CLASSES, np.int64)
    camera = np.zeros(N_CAMERA_CLASSES, np.int64)
    for mp4 in segments:
        for env_action, is_null in clean_actions(mp4):
            if is_null:
                continue
            b, c = env_to_agent(env_action)
            if int(b) == NULL_BUTTONS and int(c) == NULL_CAMERA:
                continue
            buttons[int(b)] += 1
            camera[int(c)] += 1
    return buttons, camera


def init_policy_heads(policy, segments: Sequence) -> None:
    """Start ``policy``'s action heads at the joint-action prior of ``segments`` (:func:`init_head_from_prior`)."""
    b, c = bc_label_counts(segments)
    t = policy.temperature
    init_head_from_prior(policy.pi_head["buttons"].linear_layer, prior_log_probs(b), temperature=t)
    init_head_from_prior(policy.pi_head["camera"].linear_layer, prior_log_probs(c), temperature=t)


def _build_policy(args: Args, device):
    if args.init_model:
        weights = args.init_weights or str(Path(args.init_model).with_suffix(".weights"))
        return build_policy(model=args.init_model, weights=weights, device=str(device))
    return build_policy(preset=args.preset, temperature=args.temperature, device=device)


def train_bc(args: Args) -> Path:
    """Run behavioural cloning as described by ``args``; returns the path of the ``.model`` file.

    See :func:`run_bc`, which also returns the trained network.
    """
    return run_bc(args)[0]


def run_bc(args: Args):
    """Run behavioural cloning; returns ``(model_path, trained PolicyNet)``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel, each rank
    reads the shard ``segments[lane::lanes]`` of its own lanes, and rank 0 writes checkpoints and logs.
    On SIGINT / SIGTERM it saves at the current step and raises :class:`vpt_rl.interrupt.Interrupted`.
    """
    with stop_requested() as stop:
        return _run_bc(args, stop)


def _run_bc(args: Args, stop: StopFlag):
    if not args.data:
        raise ValueError("train_bc needs at least one data folder or segment (args.data is empty)")
    device = resolve_device(args.device)
    rank, world = init_distributed(device)
    if device.type == "cuda" and world > 1:

        device = torch.device("cuda", dist_env()[2])
        torch.cuda.set_device(device)
    seed_everything(args.seed)  # same initial weights on every rank (DDP also broadcasts them)
    out = Path(args.out_dir)
    stem = args.name or out.resolve().name
    model_path, weights_path, state_path = out / f"{stem}.model", out / f"{stem}.weights", out / "train_state.pt"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        for tmp in remove_stale_temporaries(out):
            print(f"removed {tmp}, left by an interrupted write", file=sys.stderr)

    segments = find_segments(args.data)
    if not segments:
        raise ValueError(f"no labelled segments found under {args.data}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {args.val_fraction!r}")
    if args.val_data:
        val_segs = find_segments(args.val_data)
    elif args.val_fraction > 0 and len(segments) > 1:
        segments, val_segs = split_segments(segments, args.val_fraction, seed=args.seed)
    else:
        val_segs = []

    state = saved_train_state(state_path, weights_path) if args.resume else None  # resume after a kill
    if state is None:
        policy = _build_policy(args, device)
        if args.prior_init and not args.init_model:
            init_policy_heads(policy, segments)  # the same on every rank: all ranks count all segments
    else:
        policy = load_policy(str(model_path), str(weights_path), device=str(device))
        if "model" in state:  # the weights saved with this state (a kill can fall between the two files' writes)
            policy.load_state_dict(state["model"])
    step = int(state["step"]) if state is not None else 0
    # every rank reads the data and the checkpoint itself: on several nodes they must all see the same ones
    check_ranks_agree({"resume step": step, "segments (count, crc of names and sizes)": files_fingerprint(segments)},
                      world, hint=f"Every node must see --out ({out}) and the data at the same paths (shared storage)")
    # the value head gets no BC gradient (as in the official demo); freeze it so DDP sees no unused params
    for p in policy.value_head.parameters():
        p.requires_grad_(False)
    if args.freeze_cnn:
        for p in policy.net.img_process.cnn.parameters():
            p.requires_grad_(False)
    policy.train()
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])

    model = policy
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            policy, device_ids=[device.index] if device.type == "cuda" else None)

    seq_len = int(args.seq_len or policy.cfg.timesteps)
    n_streams = world * max(1, args.num_workers)
    filters = dict(seq_len=seq_len, min_confidence=args.min_label_confidence,
                   max_segment_frames=args.max_segment_frames)
    positions = StreamPositions(layout_key(segments, args.batch_size, n_streams, **filters), seed=args.seed)
    start = positions.resume_from(state.get("data")) if state is not None else None
    if state is not None and start is None:  # saved by an older version or another layout: reshuffle instead
        positions.seed = args.seed + 1000 * step
        if rank == 0:
            print(f"resuming at step {step}: the data or its layout changed since the checkpoint, so the data stream "
                  "is reshuffled instead of continued at its position", file=sys.stderr)
    ds = SequenceDataset(segments, batch_size=args.batch_size, seq_len=seq_len, skip_null=True,
                         drop_agent_null=True, pack=True, epochs=None, shuffle=True,
                         seed=positions.seed, start=start, rank=rank, world_size=world,
                         min_confidence=args.min_label_confidence, max_segment_frames=args.max_segment_frames)
    loader = iter(make_loader(ds, num_workers=args.num_workers, device=device))
    writer = summary_writer(out / "tb" if rank == 0 else None)
    history = resumed_list(state, "history", out / "metrics.json")
    evals = resumed_list(state, "heldout_history", out / "metrics.json")
    train_counts = bc_label_counts(segments) if val_segs and rank == 0 else None

    def run_eval():
        if not val_segs or rank != 0:
            return None
        m = evaluate_bc(policy, val_segs, seq_len, train_counts, args.eval_max_frames, device)
        for k in ("nll", "nll_marginal", "accuracy_joint", "majority_accuracy_joint", "p_attack_sd",
                  "buttons_tv_spread"):
            writer.add_scalar(f"heldout/{k}", m[k], step)
        evals.append({"step": step, **m})
        return m

    def save(final=None):
        if world > 1:  # rank 0 saves every rank's stream positions (a collective: every rank calls save)
            shards = [None] * world
            torch.distributed.all_gather_object(shards, positions.positions)
            for shard in shards:
                positions.positions.update(shard)
        if rank != 0:
            return
        # the training state first, whole: it is what a resume reads, so a kill between the files costs nothing
        train_state = {"step": step, "model": cpu_state_dict(policy), "optimizer": opt.state_dict(),
                       "data": positions.state_dict(), "history": history, "heldout_history": evals}
        if world == 1:  # one process: every stream's memory is here, so a resume continues exactly
            train_state["memory"] = {k: [tuple(t.cpu() for t in layer) for layer in v] for k, v in memories.items()}
        atomic_torch_save(train_state, state_path)
        save_policy(policy, str(model_path), str(weights_path))
        payload = {"args": asdict(args), "world_size": world, "step": step, "history": history,
                   "heldout_history": evals, "train_segments": [str(p) for p in segments],
                   "val_segments": [str(p) for p in val_segs]}
        if final is not None:
            payload["final"] = final
        atomic_write_json(out / "metrics.json", payload, indent=1)

    memories: dict = {}  # stream id -> detached transformer memory of its lanes
    if start is not None and world == 1 and "memory" in state:  # the memory goes with the data position
        memories = {int(k): [tuple(t.to(device) for t in layer) for layer in v] for k, v in state["memory"].items()}
    warmup = min(args.warmup_steps, args.total_steps // 4)  # short runs still get to the peak lr
    bar = tqdm(total=args.total_steps, initial=step, desc="train-bc", disable=not (args.progress and rank == 0))
    t0, frames = time.time(), 0

    def stop_if_asked():
        signum = agreed_stop(stop, world)  # under torchrun: all ranks stop after the same step
        if signum:
            save()
            writer.close()
            if world > 1:
                torch.distributed.destroy_process_group()
            if rank != 0:
                raise Interrupted(signum, f"rank {rank} stopped at step {step} (rank 0 saved)")
            raise interrupted_at(signum, step, out.resolve())

    while step < args.total_steps:
        stop_if_asked()
        batch = next(loader, None)
        if batch is None:  # every lane's segments failed to decode (each failure was warned about)
            raise RuntimeError(f"no usable frames in {args.data}: every segment was unreadable or held only "
                               "null actions (see the warnings)")
        positions.update(batch)
        stream = int(batch["stream"])
        # pinned batches (make_loader pins them for a CUDA device): the copies overlap with the GPU's work
        mask, img, first, buttons, camera = (batch[k].to(device, non_blocking=True)
                                             for k in ("mask", "img", "first", "buttons", "camera"))
        mem = memories.get(stream)
        if mem is None:
            mem = policy.initial_state(img.shape[0], device=device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, warmup, args.total_steps, args.min_lr_ratio)
        logp, _, new_mem = model(img, first, mem)
        memories[stream] = state_detach(new_mem)
        loss = bc_loss(logp, buttons, camera, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = clip_gradients(params, args.max_grad_norm)
        opt.step()
        step += 1
        frames += int(mask.sum()) * world
        acc_b, acc_c, acc = head_accuracy(logp, buttons, camera, mask)
        if step % args.log_every == 0 or step == args.total_steps:
            loss_m, acc_b, acc_c, acc = all_reduce_mean([loss.item(), acc_b, acc_c, acc], world)
            fps = frames / max(time.time() - t0, 1e-9)
            if rank == 0:
                writer.add_scalar("train/loss", loss_m, step)
                writer.add_scalar("train/accuracy_buttons", acc_b, step)
                writer.add_scalar("train/accuracy_camera", acc_c, step)
                writer.add_scalar("train/accuracy_joint", acc, step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
                writer.add_scalar("train/frames_per_s", fps, step)
                history.append({"step": step, "loss": loss_m, "grad_norm": grad_norm, "accuracy_buttons": acc_b,
                                "accuracy_camera": acc_c, "accuracy_joint": acc, "frames_per_s": fps})
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        periodic_eval_and_save(step, args, run_eval, save)
    bar.close()
    stop_if_asked()
    save(run_eval())
    writer.close()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return model_path, policy


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(Args, argv, prog="vpt-rl train-bc", paths=TRAINING_INPUTS)
    with resume_hint("vpt-rl train-bc", args):
        path = train_bc(args)

    if dist_env()[0] == 0:
        final = json.loads((path.parent / "metrics.json").read_text()).get("final")
        if final:
            print(collapse_report(final))
        print(f"wrote {path}")
    return 0


def collapse_report(m: dict) -> str:
    """One line of held-out scores against the marginal baseline, flagging a collapsed policy."""
    line = (f"held-out NLL {m['nll']:.3f} (label marginals {m['nll_marginal']:.3f}), joint accuracy "
            f"{m['accuracy_joint']:.3f} (majority {m['majority_accuracy_joint']:.3f}), output spread: sd of "
            f"p(attack) {m['p_attack_sd']:.3f}, buttons TV {m['buttons_tv_spread']:.3f}")
    if m["nll"] >= m["nll_marginal"] - 0.01 or m["buttons_tv_spread"] < 0.02:
        line += ("\nWARNING: the policy looks collapsed (no better than the label marginals, or the same output "
                 "on every frame); try a lower --lr")
    return line


if __name__ == "__main__":
    sys.exit(run_main(main, sys.argv[1:], "vpt-rl train-bc"))
