"""The IDM's optional motion trunk (:class:`MotionStem`; ours, not in any released IDM).

Re-exported by :mod:`vpt_rl.model`, the usual import path; enabled by ``IDMConfig.motion_hidden > 0``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vpt_rl.actions import N_BUTTONS, N_CAMERA_BINS
from vpt_rl.model_config import AGENT_RESOLUTION

__all__ = ["MotionStem"]


class MotionStem(nn.Module):
    """A motion trunk for the IDM (ours; no released IDM has one): image motion between frames t and t+1.

    The camera action of line t shows as a shift of the image between frames t and t+1 (about 1 px per
    degree of yaw and 1.6 px per degree of pitch at 128x128). A plain IDM learns to read this slowly and,
    on scripted play, prefers to guess the turn from the scene (docs/experiments/2026-12-02-idm-camera.md).
    This trunk hands it the evidence directly, as optical-flow networks do with a cost volume:

    1. **Cost volume (fixed, no parameters).** Both frames to grey, 2x2 average-pooled to 64x64. A
       reference window of frame t (rows 12..50, columns 8..55) is compared with frame t+1 shifted by every
       ``dy`` in -12..12 and ``dx`` in -8..8 (425 shifts): the mean absolute difference, averaged
       separately over a 3x3 grid of regions of the window, then z-scored per region over its 425 shifts.
       That is 9 x 25 x 17 = 3825 numbers per frame; the last frame of a window (no t+1) gets zeros.
    2. **MLP** 3825 -> ``hidden`` -> ``hidden`` (ReLU), one frame pair at a time, with two outputs:
       ``embed`` (``hidsize`` numbers added to frame t's image embedding before the attention layers),
       ``camera`` (2 x 11 logits added to the camera head's logits) and ``buttons`` (20 x 2 logits added to
       the buttons head's: walking shows as the regions' shifts spreading apart); both zero at init.

    3. Optionally (``context`` = ``IDMConfig.motion_context`` > 0) a residual temporal conv over the window's
       per-pair features before the outputs, zero at init: a pair with little texture (sky, a GUI) can
       borrow from its neighbours.

    Keys: ``motion.mlp.{0,2}.*``, ``motion.embed.*``, ``motion.camera.*``, ``motion.buttons.*`` (and
    ``motion.context.*``).
    """

    FRAME_SHAPE = AGENT_RESOLUTION
    SHIFTS_Y, SHIFTS_X = 12, 8  # dy in -12..12, dx in -8..8 (64x64 pixels)
    WIN_Y, WIN_X = (12, 51), (8, 56)  # reference window rows / columns (64x64 pixels)
    GRID = 3
    N_FEATURES = GRID * GRID * (2 * SHIFTS_Y + 1) * (2 * SHIFTS_X + 1)  # 3825

    def __init__(self, hidden: int, hidsize: int, context: int = 0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(self.N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.context = None
        if context:
            self.context = nn.Conv1d(hidden, hidden, context, padding=context // 2)
            nn.init.zeros_(self.context.weight)  # starts as the per-pair trunk
            nn.init.zeros_(self.context.bias)
        self.embed = nn.Linear(hidden, hidsize)
        self.camera = nn.Linear(hidden, 2 * N_CAMERA_BINS)
        self.buttons = nn.Linear(hidden, N_BUTTONS * 2)
        for layer in (self.camera, self.buttons):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    @torch.no_grad()
    def cost_volume(cls, img: torch.Tensor) -> torch.Tensor:
        """uint8 (B, T, 128, 128, 3) -> float32 (B, T, 3825) z-scored matching costs (see the class doc)."""
        b, t, h, w, _ = img.shape
        out = torch.zeros(b, t, cls.N_FEATURES, device=img.device)
        if t < 2:
            return out
        weights = torch.tensor([0.299, 0.587, 0.114], device=img.device) / 255.0
        grey = (img.reshape(b * t, h, w, 3).to(torch.float32) @ weights).view(b * t, 1, h, w)
        grey = F.avg_pool2d(grey, 2).view(b, t, h // 2, w // 2)
        cur, nxt = grey[:, :-1].reshape(-1, h // 2, w // 2), grey[:, 1:].reshape(-1, h // 2, w // 2)
        (y0, y1), (x0, x1) = cls.WIN_Y, cls.WIN_X
        ref = cur[:, y0:y1, x0:x1]  # (N, 39, 48)
        ny, nx, g = y1 - y0, x1 - x0, cls.GRID
        sx = cls.SHIFTS_X
        costs = []
        for dy in range(-cls.SHIFTS_Y, cls.SHIFTS_Y + 1):
            rows = nxt[:, y0 + dy:y1 + dy, x0 - sx:x1 + sx]  # (N, 39, 48 + 2 sx)
            cand = rows.unfold(2, nx, 1)  # (N, 39, 17, 48): dx = index - sx
            diff = (cand - ref.unsqueeze(2)).abs()
            diff = diff.view(-1, g, ny // g, 2 * sx + 1, g, nx // g).mean(dim=(2, 5))  # (N, g, 17, g)
            costs.append(diff.permute(0, 1, 3, 2).reshape(-1, g * g, 2 * sx + 1))
        vol = torch.stack(costs, dim=2)  # (N, 9, 25, 17)
        flat = vol.reshape(vol.shape[0], g * g, -1)
        flat = (flat - flat.mean(-1, keepdim=True)) / (flat.std(-1, keepdim=True) + 1e-5)
        out[:, :-1] = flat.reshape(b, t - 1, -1)
        return out

    def forward(self, img: torch.Tensor, volume: Optional[torch.Tensor] = None):
        """:return: ``(embed (B, T, hidsize), camera logits (B, T, 2, 11), button logits (B, T, 20, 2))`` for a
        uint8 window, or from a precomputed :meth:`cost_volume` ``volume``."""
        if volume is None:
            volume = self.cost_volume(img)
        h = self.mlp(volume)
        if self.context is not None:  # residual temporal conv over the window, (B, T, H) -> (B, T, H)
            h = h + F.relu(self.context(h.transpose(-1, -2))).transpose(-1, -2)
        return (self.embed(h), self.camera(h).view(*h.shape[:-1], 2, N_CAMERA_BINS),
                self.buttons(h).view(*h.shape[:-1], N_BUTTONS, 2))
