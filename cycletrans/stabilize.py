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
        lags more behind real changes of the output; 0.6 cuts the flicker of per-frame noise about 2.5x.
    tolerance: input warp error (0..255 grey levels) at which the confidence has fallen to exp(-1).
    cut_fraction: a frame where fewer than this fraction of pixels are trusted is a scene cut: start over.

    Flow and confidence are computed at most FLOW_MAX_SIDE pixels wide and scaled up; only the warp and the
    blend of the output run at full resolution (uint8, in OpenCV). `translated` may be smaller than `source`
    (an engine with max_size): the flow is scaled to it.
    """

    def __init__(self, blend: float = 0.6, tolerance: float = 10.0, cut_fraction: float = 0.35):
        self.blend, self.tolerance, self.cut_fraction = blend, tolerance, cut_fraction
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.reset()

    def reset(self) -> None:
        self._prev_small: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self.cuts = 0

    def __call__(self, source: np.ndarray, translated: np.ndarray) -> np.ndarray:
        small = _small_gray(source)
        translated = np.ascontiguousarray(translated, dtype=np.uint8)
        prev_small, prev_out = self._prev_small, self._prev_out
        self._prev_small = small
        if prev_small is None or prev_small.shape != small.shape or prev_out.shape != translated.shape:
            self._prev_out = translated
            return translated
        flow = self._flow.calc(small, prev_small, None)  # for each pixel now: where it was in the previous frame
        sh, sw = small.shape
        map_small = _grid(sh, sw) + flow
        confidence = self._confidence(small, cv2.remap(prev_small, map_small, None, cv2.INTER_LINEAR,
                                                       borderMode=cv2.BORDER_REPLICATE), map_small)
        if float(confidence.mean()) < self.cut_fraction:
            self.cuts += 1
            self._prev_out = translated
            return translated
        h, w = translated.shape[:2]
        if (h, w) != (sh, sw):
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            cv2.multiply(flow, (w / sw, h / sh, 0, 0), dst=flow)
            confidence = cv2.resize(confidence, (w, h), interpolation=cv2.INTER_LINEAR)
        warped = _warp(prev_out, flow)
        weight = confidence * np.float32(self.blend)
        out = cv2.blendLinear(warped, translated, weight, 1.0 - weight)
        self._prev_out = out
        return out

    def _confidence(self, gray, warped_gray, position) -> np.ndarray:
        """1 where the previous input, moved by the flow, matches the current input; falls to 0 where it does
        not or where the flow points outside the previous frame."""
        error = cv2.GaussianBlur(cv2.absdiff(gray, warped_gray).astype(np.float32), (5, 5), 0)  # not one pixel
        confidence = np.exp(-np.square(error * np.float32(1.0 / self.tolerance)))
        h, w = gray.shape
        x, y = position[..., 0], position[..., 1]
        confidence[(x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)] = 0.0
        return confidence


def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` moved by `flow` (each output pixel fetched from its position + flow)."""
    if hasattr(cv2, "WARP_RELATIVE_MAP"):  # OpenCV >= 4.10 adds the pixel grid itself, saving a full-size pass
        return cv2.remap(image, flow, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP, borderMode=cv2.BORDER_REPLICATE)
    h, w = flow.shape[:2]
    return cv2.remap(image, cv2.add(_grid(h, w), flow), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _small_gray(rgb: np.ndarray) -> np.ndarray:
    """Grey, at most FLOW_MAX_SIDE pixels on the long side: what the flow is computed on."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    scale = min(1.0, FLOW_MAX_SIDE / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    return gray


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """Pixel coordinates as an H×W×2 float32 map (x, y), the identity for cv2.remap."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([xs, ys])
