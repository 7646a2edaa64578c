"""Output-head initialisation from the label prior (used by IDM and BC training)."""
from __future__ import annotations

import numpy as np
import torch


def prior_log_probs(counts: np.ndarray, smoothing: float = 0.1) -> np.ndarray:
    """Smoothed log-frequencies ``log((count + a) / (total + a * K))`` along the last axis (K classes).

    :param counts: non-negative class counts, any leading shape, classes on the last axis.
    :param smoothing: pseudo-count ``a`` added to every class (> 0, so unseen classes stay finite).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim < 1 or counts.shape[-1] < 1 or (counts < 0).any() or not np.isfinite(counts).all():
        raise ValueError(f"counts must be finite non-negative class counts, got shape {counts.shape}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}")
    k = counts.shape[-1]
    return np.log((counts + smoothing) / (counts.sum(-1, keepdims=True) + smoothing * k))


@torch.no_grad()
def init_head_from_prior(linear: torch.nn.Linear, log_prior: np.ndarray, gain: float = 0.01,
                         temperature: float = 1.0) -> None:
    """Start an action head at the label prior: weight orthogonal with ``gain``, bias = ``log_prior``.

    Why: with the PyTorch default head init, the first optimizer steps of a small IDM/policy are spent
    fitting the label marginals through the trunk, and at the learning rates short CPU runs need the
    trunk's features collapse to a constant (every frame gets the prior; measured in
    docs/experiments/2026-12-02-idm-camera.md). Starting the head at the prior with near-zero weights (the official heads'
    intended ``reset_parameters``: orthogonal, gain 0.01, which the official code never calls) leaves only
    the frame-dependent part to learn. ``log_prior`` is flattened in the head's output order; the bias is
    multiplied by ``temperature`` so that the head's output after the temperature division is the prior.
    """
    prior = torch.as_tensor(np.asarray(log_prior, dtype=np.float32).reshape(-1))
    if linear.bias is None or prior.numel() != linear.bias.numel():
        raise ValueError(f"log_prior has {prior.numel()} entries, the head has "
                         f"{None if linear.bias is None else linear.bias.numel()} outputs")
    torch.nn.init.orthogonal_(linear.weight, gain=gain)
    linear.bias.copy_(prior.to(linear.bias.device, linear.bias.dtype) * float(temperature))
