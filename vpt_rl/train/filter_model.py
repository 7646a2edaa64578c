"""The clean-footage frame classifier: a small CNN, or a linear probe on the frozen VPT image encoder.

The VPT paper kept only clean survival-mode play from its web videos, with a linear probe on CLIP features
trained on 8,800 hand-labelled frames. :class:`FrameFilter` is our version: one logit per frame, the log-odds
that the frame is *unclean* (a face-cam, a channel logo, borders, a menu held, another game mode). Two
backbones:

* ``"cnn"`` (default): four strided convolutions, the maximum and mean of each feature map over the frame,
  and a linear layer: about 43k parameters at ``width=16``, a detector of overlays wherever they are.
  Thousands of frames per second on one CPU core.
* ``"vpt"``: the image encoder of a VPT policy checkpoint (``.model`` / ``.weights``, e.g. the released
  foundation model or one ``vpt-rl train-bc`` wrote), frozen, with standardised features and a linear
  probe on them: our analogue of the paper's CLIP probe. Only the probe is trained and stored; the
  checkpoint names the policy files (with their size), which must be there to load it.

Checkpoints (:func:`save_filter` / :func:`load_filter`) are one ``torch.save`` file of plain data (format
tag, config, state dict, training info), written atomically and read with ``weights_only=True``.

Example::

    from vpt_rl.train.filter_model import FrameFilter, load_filter, score_frames
    filt = load_filter("runs/filter/filter.pt")
    p_unclean = score_frames(filt, frames)      # frames: uint8 (N, 128, 128, 3) -> float (N,)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import nn

from vpt_rl.atomic import atomic_torch_save
from vpt_rl.checkpoint import load_policy

__all__ = ["BACKBONES", "FILTER_FORMAT", "SmallCNN", "VPTProbe", "FrameFilter", "build_filter", "save_filter",
           "load_filter", "score_frames", "filter_stamp"]

BACKBONES = ("cnn", "vpt")
FILTER_FORMAT = "vpt-rl-frame-filter"
FILTER_VERSION = 1
PathLike = Union[str, Path]


def _check_frames(frames: torch.Tensor) -> torch.Tensor:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {tuple(frames.shape)}")
    return frames


class SmallCNN(nn.Module):
    """uint8 ``(N, H, W, 3)`` frames -> ``(N,)`` logits of *unclean*: four stride-2 convolutions with ReLU, then
    the maximum and the mean of each feature map over all positions, and one linear layer.

    The maximum makes it a detector of local patterns wherever they are (a face-cam or a logo in any corner,
    the edge of a border): an overlay seen in one corner during training is found in the others."""

    def __init__(self, width: int = 16):
        super().__init__()
        if int(width) < 1:
            raise ValueError(f"width must be >= 1 channel, got {width!r}")
        w = int(width)
        self.convs = nn.Sequential(
            nn.Conv2d(3, w, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(8 * w, 1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = _check_frames(frames).permute(0, 3, 1, 2).to(torch.float32) / 255.0 - 0.5
        x = self.convs(x).flatten(2)
        return self.head(torch.cat([x.amax(-1), x.mean(-1)], 1)).squeeze(-1)


class VPTProbe(nn.Module):
    """A linear probe on the frozen image encoder of a VPT policy (:meth:`vpt_rl.model.PolicyNet.encode`).

    ``features`` -> standardised with ``mean`` / ``std`` (set from the training features, :meth:`fit_scaler`)
    -> ``probe``. The encoder is kept out of the state dict (:meth:`state_dict` holds the probe and scaler
    only) and never trained."""

    def __init__(self, encoder: nn.Module, hidsize: int):
        super().__init__()
        object.__setattr__(self, "encoder", encoder)  # not a submodule: not saved, not trained
        encoder.requires_grad_(False)
        encoder.eval()
        self.register_buffer("mean", torch.zeros(hidsize))
        self.register_buffer("std", torch.ones(hidsize))
        self.probe = nn.Linear(hidsize, 1)

    def to(self, *args, **kwargs):  # the encoder moves with the probe
        self.encoder.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Raw encoder features ``(N, hidsize)`` of uint8 frames (no gradient)."""
        frames = _check_frames(frames)
        return self.encoder.encode(frames.unsqueeze(1)).squeeze(1).float()

    def fit_scaler(self, features: torch.Tensor) -> None:
        """Set the standardisation from training features ``(N, hidsize)``."""
        self.mean.copy_(features.mean(0))
        self.std.copy_(features.std(0).clamp_min(1e-4))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(N,)`` of raw features (what the probe is trained on: features are computed once)."""
        return self.probe((features - self.mean) / self.std).squeeze(-1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(frames))


class FrameFilter(nn.Module):
    """A clean-footage classifier: uint8 ``(N, H, W, 3)`` frames -> ``(N,)`` logits of *unclean*; ``config``
    is what :func:`build_filter` needs to make it again (JSON-able)."""

    def __init__(self, backbone: nn.Module, config: Dict[str, Any]):
        super().__init__()
        self.backbone = backbone
        self.config = dict(config)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.backbone(frames)

    @torch.no_grad()
    def p_unclean(self, frames: torch.Tensor) -> torch.Tensor:
        """``sigmoid(logits)``: the probability that each frame is unclean."""
        return torch.sigmoid(self.forward(frames))


def _file_size(path: PathLike) -> int:
    return os.stat(path).st_size


def build_filter(backbone: str = "cnn", *, width: int = 16, vpt_model: Optional[PathLike] = None,
                 vpt_weights: Optional[PathLike] = None, device: Any = "cpu") -> FrameFilter:
    """A fresh :class:`FrameFilter`.

    :param backbone: ``"cnn"`` (a :class:`SmallCNN` of ``width`` channels) or ``"vpt"`` (a :class:`VPTProbe` on
        the image encoder of the policy ``vpt_model`` / ``vpt_weights``; weights default to the model path with
        the suffix ``.weights``).
    :raises ValueError: for an unknown backbone, or ``"vpt"`` without ``vpt_model``.
    """
    if backbone == "cnn":
        return FrameFilter(SmallCNN(width), {"backbone": "cnn", "width": int(width)}).to(device)
    if backbone != "vpt":
        raise ValueError(f"backbone {backbone!r}: expected one of {', '.join(BACKBONES)}")
    if not vpt_model:
        raise ValueError("backbone 'vpt' needs the VPT policy to take the image encoder from (vpt_model, a .model "
                         "file such as foundation-model-1x.model)")
    weights = Path(vpt_weights) if vpt_weights else Path(vpt_model).with_suffix(".weights")
    for p in (Path(vpt_model), weights):
        if not p.is_file():
            raise FileNotFoundError(f"backbone 'vpt': no such file {p}")
    policy = load_policy(str(vpt_model), str(weights), device=device)
    config = {"backbone": "vpt", "vpt_model": str(Path(vpt_model).resolve()), "vpt_weights": str(weights.resolve()),
              "vpt_weights_size": _file_size(weights), "hidsize": int(policy.cfg.hidsize)}
    return FrameFilter(VPTProbe(policy, int(policy.cfg.hidsize)), config).to(device)


def save_filter(filt: FrameFilter, path: PathLike, info: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``filt`` to ``path`` atomically: its config, state dict (the probe only for ``"vpt"``) and ``info``
    (training settings and metrics, plain data)."""
    state = {k: v.detach().cpu().clone() for k, v in filt.state_dict().items()}
    return atomic_torch_save({"format": FILTER_FORMAT, "version": FILTER_VERSION, "config": filt.config,
                              "state_dict": state, "info": dict(info or {})}, path)


def load_filter(path: PathLike, device: Any = "cpu") -> FrameFilter:
    """Read a filter written by :func:`save_filter` (``weights_only=True``), in eval mode on ``device``.

    :raises ValueError: naming the file when it is not a filter checkpoint, or when a ``"vpt"`` filter's policy
        weights are gone or changed (another size).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such filter checkpoint: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds for a file that is not a checkpoint
        raise ValueError(f"{path}: not a readable filter checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or data.get("format") != FILTER_FORMAT:
        raise ValueError(f"{path}: not a frame-filter checkpoint (expected format {FILTER_FORMAT!r}, written by "
                         "vpt-rl train-filter)")
    if data.get("version") != FILTER_VERSION:
        raise ValueError(f"{path}: filter checkpoint version {data.get('version')!r}; this vpt-rl reads "
                         f"version {FILTER_VERSION}")
    cfg = data["config"]
    if cfg.get("backbone") == "vpt":
        weights = Path(cfg["vpt_weights"])
        if not weights.is_file() or _file_size(weights) != cfg.get("vpt_weights_size"):
            raise ValueError(f"{path}: a linear probe on the VPT encoder of {weights}, which is missing or has "
                             "changed since the probe was trained; train the filter again")
        filt = build_filter("vpt", vpt_model=cfg["vpt_model"], vpt_weights=weights)
    else:
        filt = build_filter(cfg.get("backbone", "cnn"), width=int(cfg.get("width", 16)))
    filt.load_state_dict(data["state_dict"])
    filt.info = data.get("info", {})
    return filt.to(device).eval()


def filter_stamp(path: PathLike) -> Dict[str, Any]:
    """What identifies a filter checkpoint in the spans files it wrote: resolved path, size and mtime."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@torch.no_grad()
def score_frames(filt: FrameFilter, frames: np.ndarray, batch_size: int = 256, device: Any = "cpu") -> np.ndarray:
    """P(unclean) ``(N,)`` float32 of uint8 frames ``(N, H, W, 3)``, ``batch_size`` frames per forward pass."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    out = np.zeros(len(frames), np.float32)
    filt.eval()
    for i in range(0, len(frames), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch_size])).to(device)
        out[i:i + len(x)] = filt.p_unclean(x).float().cpu().numpy()
    return out
