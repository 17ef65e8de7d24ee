"""SIFT-rich synthetic scenes and a visitor's perspective on them (verification and re-ranking tests)."""

from __future__ import annotations

import cv2
import numpy as np


def _scene(seed: int, size: int = 200) -> np.ndarray:
    """A grey image of random rectangles and circles (plenty of corners for SIFT)."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 128, np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, size, 2)
        w, h = rng.integers(8, 40, 2)
        colour = int(rng.integers(0, 256))
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
        else:
            cv2.circle(img, (int(x), int(y)), int(w // 2), colour, -1)
    return img


def _warp(img: np.ndarray) -> np.ndarray:
    s = img.shape[0]
    src = np.float32([[0, 0], [s, 0], [s, s], [0, s]])
    dst = np.float32([[12, 6], [s - 20, 14], [s - 6, s - 10], [8, s - 24]])
    return cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (s, s), borderValue=128)
