"""Procedurally generated domain pairs whose true translation is known: test data, and a small stand-in for the
paper's Cityscapes labels↔photo task (5.1) that a small CycleGAN learns on a CPU in minutes.

A *layout* is a street scene as a class map (sky, ground, road, buildings, trees, cars) from a few random numbers:
a tilted horizon, a road running to a vanishing point, rectangles, ellipses. Each kind of data set draws a layout
two ways:

- `labels2scenes`: A is the flat-colour label map (Cityscapes colours), B a lit, textured rendering of it
  (sky gradient, haze, window grids, outlines, car shadows, low-frequency noise, grain, a light direction).
- `day2night`: A is the rendering by day, B the same scene by night (dark, blue, lit windows).

Training sets are unpaired (trainA and trainB come from different layouts); test sets are paired (testA/i.png and
testB/i.png draw the same layout), so the metrics of cycletrans.evaluate apply. Everything is deterministic in the
seed. `SceneSegmenter` is the stand-in for the paper's FCN score: a fixed per-pixel classifier fitted on true
renderings, which reads a class map back out of a generated scene.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from cycletrans.errors import InputError
from cycletrans.evaluate import PALETTE_FILE, Palette
from cycletrans.fsutil import atomic_path, atomic_write_text

SKY, GROUND, ROAD, BUILDING, TREE, CAR = range(6)
# The Cityscapes colours of these classes, so label maps look like the paper's.
SCENE_PALETTE = Palette(
    ("sky", "ground", "road", "building", "tree", "car"),
    np.array([(70, 130, 180), (152, 251, 152), (128, 64, 128), (70, 70, 70), (107, 142, 35), (0, 0, 142)], np.uint8),
)
KINDS = {
    "labels2scenes": ("labels", "scenes"),
    "day2night": ("day", "night"),
}
SPLITS = ("trainA", "trainB", "testA", "testB")
_STREAMS = {"trainA": 1, "trainB": 2, "test": 3}  # independent random streams: train A/B unpaired, test shared

# Day-time appearance (RGB). Buildings and cars pick one of several colours per instance.
_SKY_ZENITH, _SKY_HORIZON = np.array((80, 135, 215.0)), np.array((195, 215, 235.0))
_GRASS, _HAZE = np.array((105, 150, 70.0)), np.array((160, 175, 150.0))
_ASPHALT = np.array((92, 92, 98.0))
_FACADES = np.array([(165, 95, 75), (200, 185, 150), (150, 150, 160)], np.float64)  # brick, sandstone, concrete
_FOLIAGE = np.array((45, 105, 50.0))
_PAINTS = np.array([(200, 40, 35), (215, 120, 30), (220, 190, 45)], np.float64)  # red, orange, yellow
_NIGHT_SKY_ZENITH, _NIGHT_SKY_HORIZON = np.array((8, 12, 30.0)), np.array((35, 40, 70.0))
_LIT_WINDOW = np.array((235, 205, 120.0))


@dataclass
class Layout:
    """A scene as class indices (H×W uint8, see SCENE_PALETTE) and object instances (H×W int32, 0 for stuff)."""

    classes: np.ndarray
    instances: np.ndarray


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates on [0, 1], so that layouts scale with the image size."""
    axis = (np.arange(size) + 0.5) / size
    return np.meshgrid(axis, axis, indexing="ij")


def random_layout(rng: np.random.Generator, size: int) -> Layout:
    """A street scene: sky over ground, a road to a vanishing point, 1-4 buildings and 0-3 trees on the horizon,
    0-2 cars on the road (nearer ones bigger, drawn last)."""
    yy, xx = _grid(size)
    horizon, tilt = rng.uniform(0.35, 0.55), rng.uniform(-0.06, 0.06)
    horizon_y = horizon + tilt * (xx - 0.5)
    classes = np.where(yy < horizon_y, SKY, GROUND).astype(np.uint8)
    instances = np.zeros((size, size), np.int32)

    vanish_x, half_bottom = rng.uniform(0.35, 0.65), rng.uniform(0.2, 0.4)
    bottom_x = vanish_x + rng.uniform(-0.25, 0.25)
    depth = np.clip((yy - horizon_y) / (1 - horizon_y), 0, 1)  # 0 at the horizon, 1 at the bottom edge
    road_x = vanish_x + (bottom_x - vanish_x) * depth
    classes[(yy >= horizon_y) & (np.abs(xx - road_x) < 0.01 + half_bottom * depth)] = ROAD

    def paint(mask, cls):
        classes[mask] = cls
        instances[mask] = instances.max() + 1

    for _ in range(rng.integers(1, 5)):
        left, width, height = rng.uniform(-0.1, 0.9), rng.uniform(0.1, 0.3), rng.uniform(0.12, 0.35)
        paint((xx >= left) & (xx < left + width) & (yy >= horizon - height) & (yy < horizon_y + 0.03), BUILDING)
    for _ in range(rng.integers(0, 4)):
        ry = rng.uniform(0.06, 0.12)
        rx, cx, cy = ry * rng.uniform(0.7, 1.1), rng.uniform(0, 1), horizon - ry * rng.uniform(0.3, 0.9)
        paint(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1, TREE)
    for t in np.sort(rng.uniform(0.25, 0.9, rng.integers(0, 3))):
        bottom = horizon + t * (1 - horizon)
        centre = vanish_x + (bottom_x - vanish_x) * t + rng.uniform(-0.5, 0.5) * half_bottom * t
        width = 0.05 + 0.2 * t
        paint((np.abs(xx - centre) < width / 2) & (yy > bottom - 0.55 * width) & (yy <= bottom), CAR)
    return Layout(classes, instances)


def label_map(layout: Layout) -> np.ndarray:
    """The flat-colour label image (uint8 H×W×3) of a layout."""
    return SCENE_PALETTE.colourize(layout.classes)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over about `cells` blobs across the image (no fine texture)."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float64)


def render_scene(layout: Layout, rng: np.random.Generator, night: bool = False) -> np.ndarray:
    """A lit, textured rendering (uint8 H×W×3) of a layout, by day or by night.

    The appearance is simple on purpose (gradients, per-instance colours, window grids, outlines, shadows, smooth
    noise, faint grain): a small CycleGAN must be able to learn it at 64 px on a CPU."""
    classes, instances = layout.classes, layout.instances
    size = classes.shape[0]
    yy, xx = _grid(size)
    is_ = [classes == c for c in range(len(SCENE_PALETTE))]
    blotches, foliage_noise = _smooth_noise(rng, size, 5), _smooth_noise(rng, size, 10)
    image = np.zeros((size, size, 3))

    sky_rows = yy[is_[SKY]]
    up = np.clip(1 - sky_rows / max(sky_rows.max(initial=0), 1e-6), 0, 1)[:, None]  # 1 at the top, 0 at horizon
    image[is_[SKY]] = up * _SKY_ZENITH + (1 - up) * _SKY_HORIZON + 4 * blotches[is_[SKY]][:, None]

    haze = np.clip(1 - (yy - 0.35) / 0.45, 0, 1)[..., None] ** 2  # far ground (near the horizon) fades to haze
    grass = (_GRASS * (1 + 0.12 * blotches[..., None])) * (1 - haze) + _HAZE * haze
    image[is_[GROUND]] = grass[is_[GROUND]]
    image[is_[ROAD]] = _ASPHALT * (1 + 0.06 * blotches[is_[ROAD]][:, None])
    image[is_[TREE]] = _FOLIAGE * (1 + 0.25 * foliage_noise[is_[TREE]][:, None])

    period = max(4, size // 10)  # a grid of windows, a few pixels each
    rows, cols = np.mgrid[0:size, 0:size] % period
    windows = is_[BUILDING] & (rows >= period * 0.3) & (rows < period * 0.75) & (cols >= period * 0.3) & (
        cols < period * 0.75)
    for instance in np.unique(instances[is_[BUILDING] | is_[CAR]]):
        mask = instances == instance
        if (classes[mask] == BUILDING).all():
            image[mask] = _FACADES[rng.integers(len(_FACADES))] * rng.uniform(0.9, 1.1)
        else:
            paint = _PAINTS[rng.integers(len(_PAINTS))] * rng.uniform(0.9, 1.1)
            top = yy[mask].min() + 0.35 * (yy[mask].max() - yy[mask].min())
            image[mask] = np.where((yy[mask] < top)[:, None], paint * 0.45, paint)  # a dark windscreen
    image[windows] *= 0.55

    shift = max(1, size // 40)  # cars cast a shadow on the road just below them
    shadow = np.roll(is_[CAR], shift, axis=0) & ~is_[CAR]
    shadow[:shift] = False
    image[shadow] *= 0.6
    objects = is_[BUILDING] | is_[TREE] | is_[CAR]
    edges = objects & ((classes != np.roll(classes, 1, 0)) | (classes != np.roll(classes, 1, 1)) |
                       (classes != np.roll(classes, -1, 0)) | (classes != np.roll(classes, -1, 1)))
    image[edges] *= 0.65

    if night:
        image = image * 0.28 + np.array((4, 6, 20.0))
        image[is_[SKY]] = up * _NIGHT_SKY_ZENITH + (1 - up) * _NIGHT_SKY_HORIZON
        lit = windows & (np.roll(np.roll(foliage_noise, size // 3, 0), size // 3, 1) > -0.2)
        image[lit] = _LIT_WINDOW
        image[is_[CAR]] = image[is_[CAR]] * 1.5
    else:
        light = rng.uniform(0.85, 1.1) * (1 + rng.uniform(-0.2, 0.2) * (xx - 0.5))  # exposure and a light side
        image *= light[..., None]
    image += rng.normal(0, 2.5, image.shape)  # faint sensor grain
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def draw(kind: str, layout: Layout, rng: np.random.Generator, side: str) -> np.ndarray:
    """The A or B image (`side`) of one layout for a kind of data set (see KINDS)."""
    if kind == "labels2scenes":
        return label_map(layout) if side == "A" else render_scene(layout, rng)
    if kind == "day2night":
        # One seed for both sides, so the scene keeps its colours (facades, paint) between day and night.
        return render_scene(layout, np.random.default_rng(int(rng.integers(2 ** 63))), night=side == "B")
    raise InputError(f"unknown kind of data set {kind!r} (choose from {', '.join(KINDS)})")


def sample(kind: str, split: str, index: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Image `index` of `split` (trainA/trainB/testA/testB): a pure function of its arguments.

    testA[i] and testB[i] draw the same layout; trainA[i] and trainB[i] draw different ones (unpaired)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    stream = _STREAMS["test"] if split.startswith("test") else _STREAMS[split]
    rng = np.random.default_rng([seed, stream, index])
    return draw(kind, random_layout(rng, size), rng, side=split[-1])


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def make_domains(out: str | os.PathLike, kind: str = "labels2scenes", size: int = 64, train: int = 200,
                 test: int = 50, seed: int = 0, force: bool = False,
                 on_progress: Callable[[int], None] | None = None) -> dict:
    """Write a data set: out/{trainA,trainB,testA,testB}/NNNNN.png and out/palette.json (the class colours, with
    the kind, size and seed that made it). Every file is written atomically and palette.json last, so its presence
    marks a complete set. Refuses a non-empty `out` unless `force`. Returns the palette.json contents."""
    if kind not in KINDS:
        raise InputError(f"unknown kind of data set {kind!r} (choose from {', '.join(KINDS)})")
    if size < 16 or train < 0 or test < 0:
        raise InputError("size must be at least 16, and the counts not negative")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"{out}: folder is not empty (use --force to write into it)")
    counts = {"trainA": train, "trainB": train, "testA": test, "testB": test}
    width = max(5, len(str(max(train, test, 1) - 1)))
    for split, count in counts.items():
        for i in range(count):
            _write_png(out / split / f"{i:0{width}d}.png", sample(kind, split, i, size, seed))
            if on_progress:
                on_progress(1)
    summary = {"kind": kind, "domains": dict(zip("AB", KINDS[kind])), "size": size, "seed": seed,
               "counts": counts, **SCENE_PALETTE.to_json()}
    atomic_write_text(out / PALETTE_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


# ------------------------------------------------------------------------------- the stand-in for the FCN score


class SceneSegmenter:
    """Reads the class map back out of a day rendering: the stand-in for the paper's FCN score (5.1.1), which
    segments generated photos with a network trained on real ones.

    A Gaussian classifier per class (quadratic discriminant) on each pixel's colour blurred at two scales, fitted
    once, deterministically, on true renderings of the given size. Its score on true renderings is the ceiling a
    generator can reach (the paper's 'ground truth' row)."""

    def __init__(self, size: int = 64, samples: int = 32, seed: int = 1234):
        self.size = size
        features, labels = [], []
        for i in range(samples):
            rng = np.random.default_rng([seed, 99, i])
            layout = random_layout(rng, size)
            features.append(self.features(render_scene(layout, rng)))
            labels.append(layout.classes.ravel())
        x, y = np.concatenate(features), np.concatenate(labels)
        k, d = len(SCENE_PALETTE), x.shape[1]
        self.means = np.zeros((k, d))
        self.precisions = np.tile(np.eye(d), (k, 1, 1))
        self.offsets = np.full(k, -np.inf)  # log prior − ½ log det Σ; −inf for a class never seen
        for c in range(k):
            xc = x[y == c]
            if len(xc) < d + 1:
                continue
            cov = np.cov(xc, rowvar=False) + 4.0 * np.eye(d)  # regularised: some classes are nearly flat colours
            self.means[c], self.precisions[c] = xc.mean(0), np.linalg.inv(cov)
            self.offsets[c] = np.log(len(xc) / len(x)) - 0.5 * np.linalg.slogdet(cov)[1]

    def features(self, image: np.ndarray) -> np.ndarray:
        scale = image.shape[0] / 64
        fine = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.7 * scale)
        coarse = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 2.0 * scale)
        return np.concatenate([fine, coarse], axis=2).reshape(-1, 6).astype(np.float64)

    def classes(self, image: np.ndarray) -> np.ndarray:
        """Class index (H×W) of every pixel of an RGB rendering."""
        x = self.features(image)
        scores = np.empty((len(x), len(self.means)))
        for c, (mean, precision, offset) in enumerate(zip(self.means, self.precisions, self.offsets)):
            diff = x - mean
            scores[:, c] = offset - 0.5 * np.einsum("pi,ij,pj->p", diff, precision, diff)
        return scores.argmax(1).reshape(image.shape[:2])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The label map (uint8 H×W×3, SCENE_PALETTE colours) read out of a rendering."""
        return SCENE_PALETTE.colourize(self.classes(image))


@functools.lru_cache(maxsize=4)
def scene_segmenter(size: int = 64) -> SceneSegmenter:
    """The segmenter fitted for renderings of `size` pixels (fitted once per size and process)."""
    return SceneSegmenter(size)
