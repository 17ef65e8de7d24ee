"""In-situ synthetic positives: a studio photo turned into a plausible visitor photo (an extension
beyond the paper).

The paper's augmentation (a 70-100% crop and colour jitter,
:func:`artid.training.augment.paper_transform`)
never shows what separates a visitor photo from a studio photo. :class:`InSitu` does: the work
gets a frame, hangs on a wall above a floor band, covers 50-98% of the photo's side, is seen
in a random perspective, is partly hidden by a visitor in front of it, and is lit by a
coloured light with a fall-off; the camera adds blur and noise.

Every random draw comes from the global torch generator (seeded per epoch by the trainer),
so an epoch's augmentations are reproducible. Input: a PIL image or a (3, H, W) tensor;
output: (3, size, size) float32 in [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

_FRAMES = torch.tensor(
    [
        [0.08, 0.06, 0.05],
        [0.55, 0.42, 0.2],
        [0.75, 0.62, 0.3],
        [0.9, 0.9, 0.88],
        [0.3, 0.2, 0.12],
        [0.15, 0.15, 0.16],
    ]
)
_WALLS = torch.tensor(
    [
        [0.9, 0.89, 0.86],
        [0.6, 0.15, 0.16],
        [0.22, 0.3, 0.42],
        [0.62, 0.6, 0.55],
        [0.32, 0.45, 0.38],
        [0.82, 0.76, 0.64],
        [0.18, 0.18, 0.19],
        [0.96, 0.96, 0.96],
    ]
)


def _u(lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(()))


def _pick(table: torch.Tensor) -> torch.Tensor:
    return table[int(torch.randint(len(table), ()))].clone()


class InSitu:
    """Studio photo -> synthetic visitor photo of it.

    Args:
        size: side of the square output.
        cover: range of the share of the photo's longer side the framed work covers.
        frame: range of the frame's width as a share of the work's longer side (0 = no frame, drawn
            with p 0.2).
        perspective: distortion of the random perspective (torchvision's ``distortion_scale``).
        p_occlude: probability of a visitor (dark silhouette) in front of the work.
        p_floor: probability that a floor band shows below the wall.
    """

    def __init__(
        self,
        size: int,
        cover: tuple[float, float] = (0.5, 0.98),
        frame: tuple[float, float] = (0.02, 0.08),
        perspective: float = 0.3,
        p_occlude: float = 0.4,
        p_floor: float = 0.7,
    ) -> None:
        self.size, self.cover, self.frame = size, cover, frame
        self.perspective, self.p_occlude, self.p_floor = perspective, p_occlude, p_floor
        self._to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])

    def __call__(self, img: Any) -> torch.Tensor:
        x = self._to_tensor(img)[:3]
        if x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        s = self.size
        work = self._framed(x)
        canvas = self._wall(s)
        # scale: the framed work's longer side covers `cover` of the photo
        h, w = work.shape[1:]
        k = _u(*self.cover) * s / max(h, w)
        h, w = max(2, round(h * k)), max(2, round(w * k))
        work = TF.resize(work, [h, w], antialias=True)
        rgba = torch.cat([work, torch.ones(1, h, w)])
        # a random perspective (alpha 0 outside the warped work), on a margin so corners are not cut
        pad = max(1, round(0.15 * max(h, w)))
        rgba = F.pad(rgba, (pad, pad, pad, pad))
        rgba = v2.RandomPerspective(distortion_scale=self.perspective, p=1.0)(rgba)
        self._paste(canvas, rgba)
        if float(torch.rand(())) < self.p_occlude:
            self._visitor(canvas)
        return self._light(canvas).clamp(0.0, 1.0)

    def _framed(self, x: torch.Tensor) -> torch.Tensor:
        if float(torch.rand(())) < 0.2:
            return x
        m = max(1, round(_u(*self.frame) * max(x.shape[1:])))
        colour = (_pick(_FRAMES) + 0.05 * torch.randn(3)).clamp(0, 1)
        framed = colour[:, None, None].expand(3, x.shape[1] + 2 * m, x.shape[2] + 2 * m).clone()
        framed[:, m : m + x.shape[1], m : m + x.shape[2]] = x
        return framed

    def _wall(self, s: int) -> torch.Tensor:
        wall = (_pick(_WALLS) + 0.04 * torch.randn(3)).clamp(0, 1)
        tex = F.interpolate(
            torch.rand(1, 1, 6, 6), size=(s, s), mode="bilinear", align_corners=False
        )[0]
        canvas = wall[:, None, None] * (0.9 + 0.2 * tex)
        if float(torch.rand(())) < self.p_floor:
            top = round(_u(0.72, 0.95) * s)
            floor = (torch.tensor([0.45, 0.32, 0.2]) * _u(0.5, 1.6) + 0.05 * torch.randn(3)).clamp(
                0, 1
            )
            canvas[:, top:] = floor[:, None, None] * (0.85 + 0.15 * torch.rand(1, s - top, 1))
        return canvas

    def _paste(self, canvas: torch.Tensor, rgba: torch.Tensor) -> None:
        s = canvas.shape[1]
        h, w = rgba.shape[1:]
        # centre of the work, allowed to drift so that an edge may leave the photo
        cy = round(_u(0.4, 0.55) * s) - h // 2
        cx = round(_u(0.35, 0.65) * s) - w // 2
        y0, x0 = max(0, cy), max(0, cx)
        y1, x1 = min(s, cy + h), min(s, cx + w)
        if y1 <= y0 or x1 <= x0:
            return
        patch = rgba[:, y0 - cy : y1 - cy, x0 - cx : x1 - cx]
        a = patch[3:4]
        canvas[:, y0:y1, x0:x1] = a * patch[:3] + (1 - a) * canvas[:, y0:y1, x0:x1]

    def _visitor(self, canvas: torch.Tensor) -> None:
        """A dark head-and-shoulders silhouette entering from the bottom of the photo."""
        s = canvas.shape[1]
        yy, xx = torch.meshgrid(
            torch.arange(s, dtype=torch.float32),
            torch.arange(s, dtype=torch.float32),
            indexing="ij",
        )
        r = _u(0.07, 0.15) * s
        cx, cy = _u(-0.05, 1.05) * s, _u(0.6, 0.95) * s
        head = ((xx - cx) / r) ** 2 + ((yy - cy) / (1.25 * r)) ** 2 <= 1
        body = (yy >= cy + 1.1 * r) & ((xx - cx).abs() <= 2.6 * r)
        mask = (head | body).float()
        colour = (torch.rand(3) * 0.35).clamp(0, 1)
        canvas.mul_(1 - mask).add_(mask * colour[:, None, None])

    def _light(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[1]
        gain = _u(0.65, 1.25) * (1 + 0.08 * torch.randn(3)).clamp(
            0.8, 1.2
        )  # exposure and colour cast
        t = torch.linspace(-1, 1, s)
        gy, gx = _u(-0.35, 0.35), _u(-0.35, 0.35)  # spotlight fall-off
        ramp = (1 + gy * t[:, None] + gx * t[None, :]).clamp(0.3, 1.6)
        x = x * gain[:, None, None] * ramp
        x = x.clamp(0, 1) ** _u(0.8, 1.2)
        if float(torch.rand(())) < 0.4:
            x = TF.gaussian_blur(x, kernel_size=3, sigma=_u(0.3, 1.0))
        return x + 0.015 * torch.rand(()) * torch.randn_like(x)
