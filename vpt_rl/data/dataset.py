"""Streaming ``(B, T)`` training sequences over many contractor segments, decoded in worker processes.

Layout. The segments are dealt to *lanes*; a lane plays its segments one after another, and row ``b``
of consecutive batches from one stream continues lane ``b``: the memory of a recurrent policy can be
carried across batches (detached) and is cut by the ``first`` flag where a new segment starts. Every
DataLoader worker (and every DDP rank) owns its own lanes, i.e. its own shard of the segments, and
yields whole batches tagged with a ``stream`` id; a trainer keeps one memory state per stream id.

Two packings:

* ``pack=True`` (behavioural cloning): a lane is one continuous stream; a chunk may hold the end of one
  segment and the start of the next (``first`` marks it).
* ``pack=False`` (IDM): a chunk never crosses a segment; the tail of a segment is padded with
  ``mask=False``.

Each batch is a dict of tensors: ``img`` uint8 (B, T, 128, 128, 3) RGB, ``first`` bool (B, T), ``mask``
bool (B, T) (False on padding), joint agent action ``buttons``/``camera`` int64 (B, T) (8641 x 121,
:func:`vpt_rl.actions.env_to_agent`), IDM targets ``idm_buttons`` int64 (B, T, 20) and ``idm_camera``
int64 (B, T, 2) (mu-law bins), ``camera_deg`` float32 (B, T, 2) (the true camera), ``position`` int64 (B, 3)
(where each lane is after this batch, see below) and ``stream`` int.

Resuming. A trainer that keeps the ``position`` of the last batch it took from each stream
(:class:`StreamPositions`) and saves it with its checkpoint can restart the stream exactly there: a
dataset built with the same segments, seed and layout and ``start=`` those positions yields the batches an
uninterrupted run would have seen next (it replays the cheap shuffles, skips the segments already read, and
decodes only the one segment it resumes in). A lane's position is ``(epoch, index of the segment in that
epoch's order, steps of that segment already yielded)``; ``(-1, -1, -1)`` is a lane that yielded nothing.

Example::

    from vpt_rl.data.dataset import SequenceDataset, make_loader
    ds = SequenceDataset(find_segments("data/"), batch_size=8, seq_len=32, skip_null=True)
    for batch in make_loader(ds, num_workers=2):
        batch["img"].shape   # (8, 32, 128, 128, 3)
"""
from __future__ import annotations

import math
import os
import random
import signal
import zlib
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vpt_rl.actions import BUTTONS_ALL, env_to_agent, env_to_factored
from vpt_rl.data.clean_spans import SpansError, read_spans, spans_mask
from vpt_rl.data.contractor import AGENT_RESOLUTION, iter_segment, load_actions

N_IDM_BUTTONS = len(BUTTONS_ALL)


def _step_targets(env_action: dict) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(joint buttons, joint camera, 20 button flags, 2 camera bins, camera degrees) of one env action."""
    b, c = env_to_agent(env_action)
    flags, bins = env_to_factored(env_action)
    cam = np.asarray(env_action["camera"], dtype=np.float32).reshape(2)
    return int(b), int(c), flags, bins, cam


class _Chunk:
    """Preallocated arrays of one (T,) lane chunk."""

    def __init__(self, t: int, hw: tuple):
        w, h = hw
        self.img = np.zeros((t, h, w, 3), np.uint8)
        self.first = np.zeros(t, bool)
        self.mask = np.zeros(t, bool)
        self.buttons = np.zeros(t, np.int64)
        self.camera = np.full(t, 60, np.int64)
        self.idm_buttons = np.zeros((t, N_IDM_BUTTONS), np.int64)
        self.idm_camera = np.full((t, 2), 5, np.int64)
        self.camera_deg = np.zeros((t, 2), np.float32)
        self.position = np.full(3, -1, np.int64)  # the lane's position after the last step put here
        self.n = 0


FIELDS = ("img", "first", "mask", "buttons", "camera", "idm_buttons", "idm_camera", "camera_deg", "position")


class SequenceDataset(IterableDataset):
    """An ``IterableDataset`` of ``(B, T)`` batches streamed from contractor segments.

    :param segments: the ``*.mp4`` paths (each with ``NAME.jsonl`` beside it), e.g. from
        :func:`vpt_rl.data.contractor.find_segments`.
    :param batch_size: ``B``, lanes per stream (per worker, per rank).
    :param seq_len: ``T``, frames per chunk.
    :param skip_null: drop null steps (official rule; True for BC, False for the IDM which must see
        every frame).
    :param drop_agent_null: also drop steps whose joint action is the null action (0, 60), the second
        filter of behavioural_cloning.py (ESC/swapHands/pickItem-only steps, sub-threshold camera).
    :param pack: see the module docstring (True: continuous lanes for BC; False: chunks within one
        segment for the IDM).
    :param epochs: passes over the shard; ``None`` repeats forever (step-based training).
    :param shuffle: shuffle each lane's segment order every epoch.
    :param seed: base seed of the shuffles (mixed with rank, worker and epoch).
    :param rank: this process's DDP rank; ``world_size`` ranks each read a disjoint shard.
    :param cursor: draw the cursor while a GUI is open (None: unless the segment's options file says the
        video already shows it, see :func:`vpt_rl.data.contractor.iter_segment`).
    :param resolution: (width, height) of the frames fed to the network.
    :param min_confidence: drop steps whose pseudo-label confidence (the ``idm_confidence`` that ``vpt-rl
        label`` writes on each line) is below this; true labels count as 1.0. 0 keeps everything.
    :param max_segment_frames: read only the first this many frames (lines) of each segment, e.g. the early
        game of each episode for a targeted fine-tuning set; ``None`` reads whole segments.
    :param start: ``{stream id: (batch_size, 3) lane positions}``, the ``position`` of the last batch a
        trainer took from each stream (:meth:`StreamPositions.resume_from`): those streams continue right after
        it. Streams not in it start from the beginning.
    """

    def __init__(
        self,
        segments: Sequence,
        batch_size: int,
        seq_len: int,
        *,
        skip_null: bool = True,
        drop_agent_null: bool = False,
        pack: bool = True,
        epochs: Optional[int] = 1,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        cursor: Optional[bool] = None,
        resolution: tuple = AGENT_RESOLUTION,
        min_confidence: float = 0.0,
        max_segment_frames: Optional[int] = None,
        start: Optional[dict] = None,
    ):
        super().__init__()
        if max_segment_frames is not None and int(max_segment_frames) < 1:
            raise ValueError(f"max_segment_frames must be >= 1 or None (whole segments), got {max_segment_frames!r}")
        self.max_segment_frames = None if max_segment_frames is None else int(max_segment_frames)
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
        self.min_confidence = float(min_confidence)
        self.segments = [Path(s) for s in segments]
        if not self.segments:
            raise ValueError("SequenceDataset needs at least one segment, got an empty list")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None (forever), got {epochs}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.batch_size, self.seq_len = batch_size, seq_len
        self.skip_null, self.drop_agent_null, self.pack = skip_null, drop_agent_null, pack
        self.epochs, self.shuffle, self.seed = epochs, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.cursor, self.resolution = cursor, tuple(resolution)
        self.start = {int(k): np.asarray(v, np.int64).reshape(batch_size, 3) for k, v in (start or {}).items()}

    # -- sharding -------------------------------------------------------------------------------------
    def lane_segments(self, stream: int, n_streams: int) -> list[list[Path]]:
        """The segments of each of the ``batch_size`` lanes of stream ``stream`` (of ``n_streams``).

        Global lane ``g`` gets ``segments[g::n_lanes]``. When there are fewer segments than lanes, the
        extra lanes wrap around and share segments if the dataset repeats forever (``epochs=None``), and
        stay empty (rows of padding) otherwise, so that a finite pass reads every segment exactly
        ``epochs`` times.
        """
        n_lanes = n_streams * self.batch_size
        n_seg = len(self.segments)
        out = []
        for b in range(self.batch_size):
            g = stream * self.batch_size + b
            if n_seg >= n_lanes or g < n_seg:
                mine = self.segments[g::n_lanes]
            else:
                mine = [self.segments[g % n_seg]] if self.epochs is None else []
            out.append(list(mine))
        return out

    def _stream_id(self) -> tuple[int, int]:
        info = get_worker_info()
        n_workers = info.num_workers if info is not None else 1
        worker = info.id if info is not None else 0
        return self.rank * n_workers + worker, self.world_size * n_workers

    # -- one lane -------------------------------------------------------------------------------------
    def _lane_steps(self, segs: list[Path], rng: random.Random, start: Optional[tuple] = None) -> Iterator[tuple]:
        """Yield ``(frame, first, targets, position)`` for a lane, epoch after epoch; ``None`` marks a segment
        end. ``position`` is the lane's position after the step (module docstring); ``start`` is a position to
        continue after (None: the beginning)."""
        epoch, begin, skip = (int(v) for v in start) if start is not None and start[0] >= 0 else (0, 0, 0)
        if self.shuffle:
            for _ in range(epoch):  # replay the shuffles of the epochs already read: the same orders as before
                rng.shuffle(list(segs))
        while self.epochs is None or epoch < self.epochs:
            order = list(segs)
            if self.shuffle:
                rng.shuffle(order)
            produced = begin > 0 or skip > 0  # resuming mid-epoch: this epoch already gave something
            for idx in range(begin, len(order)):
                first, n, span = True, 0, 0
                for step in iter_segment(order[idx], skip_null=self.skip_null, cursor=self.cursor,
                                         resolution=self.resolution):
                    if self.max_segment_frames is not None and step.index >= self.max_segment_frames:
                        break
                    if step.confidence < self.min_confidence:
                        continue
                    targets = _step_targets(step.env_action)
                    if self.drop_agent_null and targets[0] == 0 and targets[1] == 60:
                        continue
                    if step.span != span:  # a new clean span: the footage between was filtered out
                        first, span = True, step.span
                    n += 1
                    if n > skip:  # steps up to ``skip`` were read before the resume
                        yield step.frame, first, targets, (epoch, idx, n)
                        produced = True
                    first = False
                skip = 0
                yield None
            begin = 0
            epoch += 1
            if not produced:  # every segment of this lane is unusable: stop instead of spinning
                return

    def _lane_chunks(self, segs: list[Path], rng: random.Random, start: Optional[tuple] = None) -> Iterator[_Chunk]:
        t = self.seq_len
        chunk = _Chunk(t, self.resolution)
        for item in self._lane_steps(segs, rng, start):
            if item is None:
                if not self.pack and chunk.n > 0:
                    yield chunk
                    chunk = _Chunk(t, self.resolution)
                continue
            frame, first, (b, c, flags, bins, deg), position = item
            i = chunk.n
            chunk.img[i] = frame
            chunk.first[i] = first
            chunk.mask[i] = True
            chunk.position[:] = position
            chunk.buttons[i], chunk.camera[i] = b, c
            chunk.idm_buttons[i], chunk.idm_camera[i], chunk.camera_deg[i] = flags, bins, deg
            chunk.n += 1
            if chunk.n == t:
                yield chunk
                chunk = _Chunk(t, self.resolution)
        if chunk.n > 0:
            yield chunk

    # -- batches --------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        stream, n_streams = self._stream_id()
        lanes = self.lane_segments(stream, n_streams)
        rngs = [random.Random(hash((self.seed, stream, b)) & 0xFFFFFFFF) for b in range(self.batch_size)]
        starts = self.start.get(stream, np.full((self.batch_size, 3), -1, np.int64))
        gens = [self._lane_chunks(segs, rng, tuple(pos)) for segs, rng, pos in zip(lanes, rngs, starts)]
        alive = [True] * self.batch_size
        while True:
            rows = []
            for b, gen in enumerate(gens):
                chunk = next(gen, None) if alive[b] else None
                if chunk is None:
                    alive[b] = False
                    chunk = _Chunk(self.seq_len, self.resolution)  # padding, mask False
                rows.append(chunk)
            if not any(alive):
                return
            batch = {name: torch.from_numpy(np.stack([getattr(r, name) for r in rows])) for name in FIELDS}
            batch["stream"] = stream
            yield batch


def layout_key(segments: Sequence, batch_size: int, n_streams: int, **filters) -> list[int]:
    """What saved stream positions depend on: ``[crc32 of the resolved segment paths, their number, batch_size,
    n_streams, crc32 of the filters]``. Positions saved under another key (other data, batch size, worker or rank
    count, or another frame filter such as ``min_confidence`` / ``max_segment_frames`` / ``seq_len``, which
    change what a step count means) do not apply. Paths are resolved, so ``data`` and ``./data`` are the same. The
    segments' clean spans (``NAME.spans.json``, :mod:`vpt_rl.data.clean_spans`) count as a filter too."""
    names = "\n".join(str(Path(s).resolve()) for s in segments).encode("utf-8")
    spans = [_spans_or_fault(s) for s in segments]
    settings = repr(sorted(filters.items()) + ([("clean_spans", spans)] if any(spans) else [])).encode("utf-8")
    return [zlib.crc32(names), len(segments), int(batch_size), int(n_streams), zlib.crc32(settings)]


def _spans_or_fault(segment) -> object:
    try:
        return read_spans(segment)
    except SpansError:
        return "unreadable"


class StreamPositions:
    """The position of the last batch a trainer took from each stream of a :class:`SequenceDataset`, to save
    with a checkpoint and resume the data exactly there.

    :param layout: :func:`layout_key` of the run's data and stream layout.
    :param seed: the dataset's seed (saved too: the positions only hold with the same shuffles).

    >>> positions = StreamPositions(layout_key(segments, batch_size=4, n_streams=1))   # doctest: +SKIP
    >>> for batch in loader: positions.update(batch); ...
    >>> torch.save({"step": step, "data": positions.state_dict()}, "train_state.pt")
    """

    def __init__(self, layout: Sequence[int], seed: int = 0):
        self.layout = [int(v) for v in layout]
        self.seed = int(seed)
        self.positions: dict = {}

    def update(self, batch: dict) -> None:
        """Record ``batch`` as the last one taken from its stream."""
        self.positions[int(batch["stream"])] = batch["position"].clone()

    def state_dict(self) -> dict:
        """Plain tensors and ints, loadable with ``torch.load(weights_only=True)``."""
        return {"layout": torch.tensor(self.layout, dtype=torch.int64), "seed": self.seed,
                "positions": dict(self.positions)}

    def resume_from(self, saved: Optional[dict]) -> Optional[dict]:
        """Take over ``saved`` (a :meth:`state_dict`) and return its positions for ``SequenceDataset(start=...)``;
        ``None`` when there is nothing saved or it was saved under another layout (the caller then reshuffles)."""
        if not saved or [int(v) for v in saved["layout"]] != self.layout:
            return None
        self.seed = int(saved["seed"])
        self.positions = {int(k): v.clone() for k, v in saved["positions"].items()}
        return {k: v.numpy() for k, v in self.positions.items()}


def make_loader(dataset: SequenceDataset, num_workers: int = 0, prefetch_factor: int = 2,
                multiprocessing_context: Optional[str] = None, pin_memory: Optional[bool] = None,
                device: Union[str, torch.device, None] = None) -> DataLoader:
    """A ``DataLoader`` over :class:`SequenceDataset` batches: each worker streams its own shard.

    Batches from different workers interleave; use ``batch["stream"]`` to keep one recurrent state per
    stream. ``num_workers=0`` decodes in the calling process (stream 0). Workers ignore Ctrl-C (the terminal
    sends it to the whole process group): the trainer decides when to stop, and stops them.

    :param pin_memory: put batches in page-locked memory, so that ``.to(device, non_blocking=True)`` copies to
        the GPU overlap with compute; default (None): pinned when ``device`` (the device the batches go to, a
        resolved one) is a CUDA device, else not.
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if pin_memory is None:
        pin_memory = device is not None and torch.device(device).type == "cuda"
    kwargs = {"pin_memory": bool(pin_memory)}
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False,
                      multiprocessing_context=multiprocessing_context, worker_init_fn=_ignore_ctrl_c)
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, **kwargs)


def _ignore_ctrl_c(worker_id: int) -> None:
    # a worker killed by the Ctrl-C (or the group-wide SIGTERM of timeout, Slurm, systemd) meant for its trainer
    # would fail the trainer's next fetch before it can save; workers still end with the loader, or with their
    # parent through torch's watchdog
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def clean_actions(segment) -> list:
    """``(env_action, is_null)`` of every jsonl line of ``segment`` inside its clean spans (all lines without a spans
    file, none when its spans file cannot be read): what the label-prior counts of IDM and BC training read."""
    spans = _spans_or_fault(segment)
    if spans == "unreadable":
        return []
    actions = load_actions(Path(segment).with_suffix(".jsonl"))
    inside = spans_mask(spans, len(actions))
    return [a for a, ok in zip(actions, inside) if ok]


def count_steps(segments: Sequence, skip_null: bool = False) -> int:
    """Number of jsonl lines (``skip_null=False``) or non-null lines over ``segments`` (no decoding), inside the
    clean spans of segments that have a spans file (none for a segment whose spans file cannot be read)."""
    return sum(1 for mp4 in segments for _, null in clean_actions(mp4) if not (skip_null and null))


def split_segments(segments: Sequence, val_fraction: float, seed: int = 0) -> tuple[list, list]:
    """Split segments into (train, held-out) with a seeded shuffle; at least one of each when possible."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    segs = sorted(Path(s) for s in segments)
    random.Random(seed).shuffle(segs)
    n_val = int(math.ceil(len(segs) * val_fraction)) if val_fraction > 0 else 0
    if n_val >= len(segs):
        n_val = len(segs) - 1
    return segs[n_val:], segs[:n_val]


def default_workers() -> int:
    """Decode workers to use by default: CPU count minus one for the trainer, at least 0."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))
