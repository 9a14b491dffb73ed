"""Temporal stability for frame-by-frame translation.

A generator applied to each frame on its own produces slightly different textures and colours for the same
scene point from one frame to the next: the video flickers. `TemporalStabilizer` blends each translated frame
with the previous *stabilised* output, moved to where the content is now by optical flow. The flow is computed on
the *input* frames (OpenCV's DIS flow, fast preset), because the input does not flicker; a per-pixel confidence
from the warp error of the input itself turns the blend off where the flow is wrong (occlusions, things entering
the frame, lighting changes) and a scene cut resets it, so neither is smeared.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# Flow is computed at most this many pixels on the long side: DIS on 1080p costs ~10x more for little gain.
FLOW_MAX_SIDE = 480


class TemporalStabilizer:
    """`stabilizer(source, translated) -> stabilised`, called once per frame, in order.

    blend: weight of the warped previous output where the flow is trusted (0 = off). Higher is steadier but
        lags more behind real changes of the output; 0.6 roughly thirds the flicker of per-frame noise.
    tolerance: input warp error (0..255 grey levels) at which the confidence has fallen to exp(-1).
    cut_fraction: a frame where fewer than this fraction of pixels are trusted is a scene cut: start over.
    """

    def __init__(self, blend: float = 0.6, tolerance: float = 10.0, cut_fraction: float = 0.35):
        self.blend, self.tolerance, self.cut_fraction = blend, tolerance, cut_fraction
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.reset()

    def reset(self) -> None:
        self._prev_gray: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.cuts = 0

    def __call__(self, source: np.ndarray, translated: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
        out = translated.astype(np.float32)
        if self._prev_gray is None or self._prev_gray.shape != gray.shape or self._prev_out.shape != out.shape:
            return self._keep(gray, out, translated)
        map_x, map_y = backward_map(gray, self._prev_gray, self._flow)
        warped_gray = cv2.remap(self._prev_gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        confidence = self._confidence(gray, warped_gray, map_x, map_y)
        if float(confidence.mean()) < self.cut_fraction:
            self.cuts += 1
            return self._keep(gray, out, translated)
        warped_out = cv2.remap(self._prev_out, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        weight = (self.blend * confidence)[..., None]
        out = warped_out * weight + out * (1.0 - weight)
        return self._keep(gray, out, None)

    def _confidence(self, gray, warped_gray, map_x, map_y) -> np.ndarray:
        """1 where the previous input, moved by the flow, matches the current input; falls to 0 where it does
        not or where the flow points outside the previous frame."""
        error = cv2.absdiff(gray, warped_gray).astype(np.float32)
        error = cv2.GaussianBlur(error, (5, 5), 0)  # one noisy pixel is not an occlusion
        confidence = np.exp(-np.square(error / self.tolerance))
        h, w = gray.shape
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        return confidence * inside

    def _keep(self, gray, out_float, original) -> np.ndarray:
        self._prev_gray, self._prev_out = gray, out_float
        if original is not None:
            return original
        return np.clip(out_float + 0.5, 0, 255).astype(np.uint8)


def backward_map(gray: np.ndarray, prev_gray: np.ndarray, flow_algo=None) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of `gray`, where it was in `prev_gray`, as float32 maps for cv2.remap. Flow is estimated
    on a copy at most FLOW_MAX_SIDE pixels long and scaled back up."""
    flow_algo = flow_algo or cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    h, w = gray.shape
    scale = min(1.0, FLOW_MAX_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        small = flow_algo.calc(cv2.resize(gray, size, interpolation=cv2.INTER_AREA),
                               cv2.resize(prev_gray, size, interpolation=cv2.INTER_AREA), None)
        flow = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= w / size[0]
        flow[..., 1] *= h / size[1]
    else:
        flow = flow_algo.calc(gray, prev_gray, None)
    grid_x, grid_y = _grid(h, w)
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))
