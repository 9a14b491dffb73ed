"""The paper's evaluation metrics (section 5.1.1, Tables 2-5) on uint8 H×W×3 RGB images, in pure numpy/OpenCV.

- Label targets (photo→labels, Table 5): every predicted pixel is mapped to the nearest palette colour and scored
  with the Cityscapes metrics the paper uses: per-pixel accuracy, per-class accuracy and mean class IoU, all from
  one confusion matrix summed over the whole test set (as the FCN-score code of pix2pix does).
- Image targets (labels→photo, paired test sets): PSNR (capped at `PSNR_CAP` dB, which a perfect prediction
  gets), SSIM (Wang et al. 2004: 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03) and L1 on [0, 1].
- Unpaired data (5.1.5): the cycle-reconstruction error, mean |F(G(x)) − x| on [0, 1].

The metric functions know nothing of models: the trainer calls them on its own outputs converted to uint8, and
`evaluate_pairs` / `evaluate_cycle` take any `translate(frames) -> frames` callable (an Engine's, in the CLI).
FID and KID are computed only with a local ONNX feature extractor given by the user (`InceptionFeatures`):
cycletrans never downloads weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from cycletrans.errors import InputError

PSNR_CAP = 100.0  # dB reported for identical images (their MSE is 0, their true PSNR infinite)
PALETTE_FILE = "palette.json"
MAX_LABEL_COLOURS = 64  # targets with at most this many distinct colours look like label maps (task "auto")

Frames = Sequence[np.ndarray]  # uint8 H×W×3 RGB images, or one N×H×W×3 array
Translate = Callable[[list[np.ndarray]], list[np.ndarray]]  # e.g. cycletrans.engine.Engine(...).translate
Segmenter = Callable[[np.ndarray], np.ndarray]  # a rendering -> its label map (e.g. synthetic.scene_segmenter)


# ---------------------------------------------------------------------------------------------------- palettes


@dataclass(frozen=True)
class Palette:
    """The classes of a label map: their names and the RGB colour each is drawn in."""

    names: tuple[str, ...]
    colours: np.ndarray  # K×3 uint8

    def __post_init__(self):
        colours = np.asarray(self.colours, np.uint8).reshape(-1, 3)
        object.__setattr__(self, "colours", colours)
        object.__setattr__(self, "names", tuple(self.names))
        if len(self.names) != len(colours) or not len(colours):
            raise ValueError("a palette needs one name per colour, and at least one class")

    def __len__(self) -> int:
        return len(self.names)

    def to_json(self) -> dict:
        return {"classes": [{"name": n, "color": [int(c) for c in rgb]} for n, rgb in zip(self.names, self.colours)]}

    @classmethod
    def from_json(cls, data) -> "Palette":
        """Accepts {"classes": [{"name", "color"}]}, {"name": [r, g, b]} or [[r, g, b], ...]."""
        if isinstance(data, dict) and "classes" in data:
            data = data["classes"]
        if isinstance(data, dict):
            items = list(data.items())
        elif isinstance(data, list):
            items = [(c.get("name", f"class_{i}"), c.get("color", c.get("colour"))) if isinstance(c, dict)
                     else (f"class_{i}", c) for i, c in enumerate(data)]
        else:
            raise ValueError("expected a list or an object")
        colours = [list(rgb) for _, rgb in items]
        if not items or any(len(c) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in colours):
            raise ValueError("every class needs a colour of three integers 0-255")
        return cls(tuple(str(n) for n, _ in items), np.array(colours, np.uint8))

    def classify(self, image: np.ndarray) -> np.ndarray:
        """Class index (H×W int) of every pixel: the nearest palette colour (squared RGB distance)."""
        # Distances are taken once per distinct colour, in chunks: label maps have few, 8K predictions millions.
        packed = image.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
        unique, inverse = np.unique(packed, return_inverse=True)
        rgb = np.stack([unique >> 16, (unique >> 8) & 255, unique & 255], 1)
        palette = self.colours.astype(np.int32)
        nearest = np.concatenate([((rgb[i:i + 65536, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
                                  for i in range(0, len(rgb), 65536)])
        return nearest[inverse.ravel()].reshape(image.shape[:2])

    def colourize(self, classes: np.ndarray) -> np.ndarray:
        """The label map (uint8 H×W×3) of a class-index map."""
        return np.ascontiguousarray(self.colours[classes])


def load_palette(path: str | os.PathLike) -> Palette:
    """Read a palette.json; InputError if it is missing or malformed."""
    path = Path(path)
    try:
        return Palette.from_json(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        raise InputError(f"{path}: no such palette file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError, AttributeError, TypeError) as err:
        raise InputError(f"{path}: not a palette ({err})") from None


def find_palette_file(*folders: str | os.PathLike) -> Path | None:
    """The palette.json in, or beside (in the parent of), the first of `folders` that has one."""
    for folder in folders:
        for place in (Path(folder), Path(folder).parent):
            if (place / PALETTE_FILE).is_file():
                return place / PALETTE_FILE
    return None


def palette_from_images(images: Iterable[np.ndarray], max_colours: int = 256) -> Palette:
    """A palette of the distinct colours found in label maps (when no palette.json is given)."""
    found: set[tuple[int, int, int]] = set()
    for image in images:
        found.update(map(tuple, np.unique(_check_image(image).reshape(-1, 3), axis=0).tolist()))
        if len(found) > max_colours:
            raise InputError(f"the targets have more than {max_colours} colours: not label maps (give --palette, "
                             "or --task image)")
    colours = sorted(found)
    return Palette(tuple("#%02x%02x%02x" % c for c in colours), np.array(colours, np.uint8))


def count_colours(image: np.ndarray) -> int:
    """Distinct RGB colours in an image (label maps have a handful; photos thousands)."""
    packed = _check_image(image).reshape(-1, 3).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    return len(np.unique(packed))


def looks_like_labels(images: Iterable[np.ndarray]) -> bool:
    """True when every image has at most MAX_LABEL_COLOURS colours (the rule `--task auto` uses)."""
    images = list(images)
    return bool(images) and all(count_colours(im) <= MAX_LABEL_COLOURS for im in images)


# ----------------------------------------------------------------------------------------------------- metrics


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 image, got {image.dtype} {image.shape}")
    return image


def _pairs(preds: Frames, targets: Frames) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
    pairs = [(_check_image(p), _check_image(t)) for p, t in zip(preds, targets)]
    for p, t in pairs:
        if p.shape != t.shape:
            raise ValueError(f"prediction {p.shape} and target {t.shape} differ in size")
    if not pairs:
        raise ValueError("no images to score")
    return pairs


def confusion_matrix(preds: Frames, targets: Frames, palette: Palette) -> np.ndarray:
    """K×K pixel counts, rows the target class and columns the predicted one (both by nearest palette colour)."""
    k = len(palette)
    matrix = np.zeros((k, k), np.int64)
    for pred, target in _pairs(preds, targets):
        index = palette.classify(target).ravel() * k + palette.classify(pred).ravel()
        matrix += np.bincount(index, minlength=k * k).reshape(k, k)
    return matrix


def scores_from_confusion(matrix: np.ndarray, names: Sequence[str]) -> dict:
    """Per-pixel accuracy, per-class accuracy and mean class IoU (Cityscapes / the paper's FCN score).

    Classes absent from the targets do not count in the per-class accuracy; a class absent from both targets and
    predictions does not count in the IoU, while one only predicted counts with IoU 0."""
    matrix = np.asarray(matrix, np.float64)
    correct = np.diag(matrix)
    in_target, in_pred = matrix.sum(1), matrix.sum(0)
    union = in_target + in_pred - correct
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = np.where(in_target > 0, correct / in_target, np.nan)
        iou = np.where(union > 0, correct / union, np.nan)
    per_class = {name: {"accuracy": _finite(a), "iou": _finite(u), "pixels": int(n)}
                 for name, a, u, n in zip(names, class_acc, iou, in_target)}
    return {
        "pixel_accuracy": float(correct.sum() / max(matrix.sum(), 1)),
        "class_accuracy": float(np.nanmean(class_acc)) if np.isfinite(class_acc).any() else 0.0,
        "class_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "per_class": per_class,
    }


def label_metrics(preds: Frames, targets: Frames, palette: Palette) -> dict:
    """Segmentation scores of predicted label maps against target label maps (see `scores_from_confusion`)."""
    matrix = confusion_matrix(preds, targets, palette)
    return {**scores_from_confusion(matrix, palette.names), "images": len(preds)}


def psnr(pred: np.ndarray, target: np.ndarray, cap: float = PSNR_CAP) -> float:
    """Peak signal-to-noise ratio in dB for 8-bit images, capped at `cap` (identical images get exactly `cap`)."""
    mse = np.mean((_check_image(pred).astype(np.float64) - _check_image(target).astype(np.float64)) ** 2)
    return cap if mse == 0 else float(min(cap, 10.0 * np.log10(255.0 ** 2 / mse)))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) with the standard constants, the mean over RGB channels.

    Local statistics use an 11×11 Gaussian window (σ 1.5); the 5-pixel border where the window would hang off the
    image is left out of the mean (as the 'valid' filtering of the reference MATLAB code) when the image is larger
    than the window."""
    x = _check_image(pred).astype(np.float64)
    y = _check_image(target).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(a):
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    h, w = ssim_map.shape[:2]
    if h > 11 and w > 11:
        ssim_map = ssim_map[5:h - 5, 5:w - 5]
    return float(ssim_map.mean())


def l1(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference on [0, 1]."""
    diff = _check_image(pred).astype(np.int16) - _check_image(target).astype(np.int16)
    return float(np.abs(diff).mean() / 255.0)


def image_metrics(preds: Frames, targets: Frames) -> dict:
    """Mean PSNR (dB, capped), SSIM and L1 (on [0, 1]) over image pairs."""
    pairs = _pairs(preds, targets)
    return {
        "psnr": float(np.mean([psnr(p, t) for p, t in pairs])),
        "ssim": float(np.mean([ssim(p, t) for p, t in pairs])),
        "l1": float(np.mean([l1(p, t) for p, t in pairs])),
        "images": len(pairs),
    }


def cycle_error(originals: Frames, reconstructions: Frames) -> float:
    """Cycle-reconstruction error (paper 3.2, 5.1.5): mean L1 on [0, 1] between images and their round trips."""
    return float(np.mean([l1(r, o) for o, r in _pairs(reconstructions, originals)]))


# --------------------------------------------------------------------------------- FID / KID (local weights only)

FEATURE_SIDE = 299  # Inception-v3's input size, used when the extractor's input size is dynamic


class InceptionFeatures:
    """Image features for FID and KID from a local ONNX feature extractor: cycletrans ships and downloads none.

    The model takes float32 N×3×H×W RGB in [0, 1] (the convention of pytorch-fid's InceptionV3, which normalises
    internally) and returns one feature vector per image (N×D, or N×D×1×1 like its pool3 output). Images are
    resized (bilinear) to the model's input size, or to 299×299 if that is dynamic. Scores are only comparable
    between runs that use the same extractor."""

    def __init__(self, path: str | os.PathLike, device: str = "auto"):
        import onnxruntime as ort

        from cycletrans.engine import cuda_gpu_count
        from cycletrans.errors import ModelError

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such feature extractor (FID/KID need a local ONNX Inception model)")
        use_gpu = device != "cpu" and cuda_gpu_count()[0] > 0
        providers = (["CUDAExecutionProvider"] if use_gpu else []) + ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as err:  # onnxruntime raises its own types for a corrupt or non-ONNX file
            raise ModelError(f"{self.path}: not a usable ONNX model ({str(err).splitlines()[0][:120]})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] not in (3, "3"):
            raise ModelError(f"{self.path}: not an image feature extractor (expects one N×3×H×W input)")
        self.input_name = inputs[0].name
        h, w = inputs[0].shape[2:]
        self.size = (w if isinstance(w, int) else FEATURE_SIDE, h if isinstance(h, int) else FEATURE_SIDE)

    def __call__(self, frames: Frames) -> np.ndarray:
        """N×D float64 features of uint8 H×W×3 RGB frames."""
        batch = np.stack([cv2.resize(_check_image(f).astype(np.float32) / 255.0, self.size,
                                     interpolation=cv2.INTER_LINEAR) for f in frames])  # no rounding back to 8 bits
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        return np.asarray(self.session.run(None, {self.input_name: x})[0], np.float64).reshape(len(batch), -1)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID (Heusel et al. 2017): ‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) between Gaussians fitted to two feature
    sets. The matrix square root goes through symmetric eigendecompositions (Tr (Σa Σb)^½ equals the trace of
    (Σa^½ Σb Σa^½)^½), which stays real and stable for the rank-deficient covariances of small sets."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(a) < 2 or len(b) < 2 or a.shape[1] != b.shape[1]:
        raise ValueError("FID needs at least two feature vectors of the same length on each side")
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    mean_term = float(((a.mean(0) - b.mean(0)) ** 2).sum())
    return max(0.0, mean_term + float(np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> float:
    """KID (Bińkowski et al. 2018): the unbiased MMD² with the kernel (x·y / d + 1)³, averaged over `subsets`
    random subsets of `subset_size` (all of the smaller set when it has fewer). Unlike FID it is unbiased for
    small sets, so it may come out slightly negative when the two sets are alike."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2 or a.shape[1] != b.shape[1]:
        raise ValueError("KID needs at least two feature vectors of the same length on each side")
    d, rng, total = a.shape[1], np.random.default_rng(seed), 0.0
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        total += ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    return float(total / subsets)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ------------------------------------------------------------------------------------------ whole test folders


@dataclass
class Pairing:
    """Input/target file pairs matched by name (relative path without extension), and the files left alone."""

    pairs: list[tuple[Path, Path]]
    unmatched_inputs: list[Path] = field(default_factory=list)
    unmatched_targets: list[Path] = field(default_factory=list)


def pair_folders(input_dir: str | os.PathLike, target_dir: str | os.PathLike) -> Pairing:
    """Pair testA/x.* with testB/x.* (the extensions may differ: labels as .png, photos as .jpg)."""
    from cycletrans.media.images import list_images

    def by_key(folder):
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        files = list_images(folder)
        if not files:
            raise InputError(f"{folder}: no images")
        return {str(p.relative_to(folder).with_suffix("")): p for p in files}

    inputs, targets = by_key(input_dir), by_key(target_dir)
    return Pairing(
        pairs=[(inputs[k], targets[k]) for k in sorted(inputs.keys() & targets.keys())],
        unmatched_inputs=[inputs[k] for k in sorted(inputs.keys() - targets.keys())],
        unmatched_targets=[targets[k] for k in sorted(targets.keys() - inputs.keys())],
    )


@dataclass
class PairedResult:
    """What `evaluate_pairs` found: the metrics and the pairs it had to skip (with why)."""

    task: str  # "labels" or "image"
    metrics: dict
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def evaluate_pairs(translate: Translate, pairs: Sequence[tuple[Path, Path]], task: str = "image",
                   palette: Palette | None = None, segmenter: Segmenter | None = None,
                   features: Callable[[list[np.ndarray]], np.ndarray] | None = None, batch_size: int = 8,
                   on_progress: Callable[[int], None] | None = None) -> PairedResult:
    """Translate every input and score the result against its target (`task`: "labels" or "image"; for labels
    `palette` is required).

    With a `segmenter` (image task, label-map inputs: labels→photo), the predictions are also segmented and scored
    against the input labels, the paper's FCN score (5.1.1), under "fcn_score"; the segmenter's score on the real
    targets, the best a generator can expect, goes under "fcn_score_real". Its palette is `palette`.
    With `features` (e.g. an InceptionFeatures), FID and KID between the predictions and the targets as sets.
    A pair whose files cannot be read, or whose input and target differ in size, is skipped and listed."""
    from cycletrans.media.images import read_rgb

    if task not in ("labels", "image"):
        raise ValueError(f"task must be 'labels' or 'image', not {task!r}")
    if (task == "labels" or segmenter is not None) and palette is None:
        raise ValueError("label metrics need a palette")
    k = len(palette) if palette is not None else 0
    labels, fcn, fcn_real = (np.zeros((k, k), np.int64) for _ in range(3))
    sums, count, skipped = {"psnr": 0.0, "ssim": 0.0, "l1": 0.0}, 0, []
    pred_features, target_features = [], []
    for start in range(0, len(pairs), batch_size):
        batch = []
        for input_path, target_path in pairs[start:start + batch_size]:
            try:
                source, target = read_rgb(input_path), read_rgb(target_path)
            except InputError as err:
                skipped.append((input_path, str(err)))
                continue
            if source.shape != target.shape:
                skipped.append((input_path, f"input is {source.shape[1]}×{source.shape[0]} but its target "
                                            f"{target.shape[1]}×{target.shape[0]}"))
                continue
            batch.append((source, target))
        if batch:
            preds = translate([source for source, _ in batch])
            if features is not None:
                pred_features.append(features(preds))
                target_features.append(features([target for _, target in batch]))
            for pred, (source, target) in zip(preds, batch):
                if task == "labels":
                    labels += confusion_matrix([pred], [target], palette)
                else:
                    sums["psnr"] += psnr(pred, target)
                    sums["ssim"] += ssim(pred, target)
                    sums["l1"] += l1(pred, target)
                if segmenter is not None:
                    fcn += confusion_matrix([segmenter(pred)], [source], palette)
                    fcn_real += confusion_matrix([segmenter(target)], [source], palette)
            count += len(batch)
        if on_progress:
            on_progress(len(pairs[start:start + batch_size]))
    if not count:
        metrics = {}
    elif task == "labels":
        metrics = scores_from_confusion(labels, palette.names)
    else:
        metrics = {name: total / count for name, total in sums.items()}
    if count >= 2 and features is not None:
        fake, real = np.concatenate(pred_features), np.concatenate(target_features)
        metrics["fid"], metrics["kid"] = frechet_distance(fake, real), kernel_inception_distance(fake, real)
    if count and segmenter is not None:
        metrics["fcn_score"] = scores_from_confusion(fcn, palette.names)
        metrics["fcn_score_real"] = scores_from_confusion(fcn_real, palette.names)
    return PairedResult(task, {**metrics, "images": count}, skipped)


def evaluate_cycle(forward: Translate, reverse: Translate, paths: Sequence[Path], batch_size: int = 8,
                   on_progress: Callable[[int], None] | None = None) -> tuple[float | None, list[tuple[Path, str]]]:
    """Mean cycle-reconstruction error |reverse(forward(x)) − x| over the images at `paths` (unreadable ones skipped
    and returned with why). None when no image could be read."""
    from cycletrans.media.images import read_rgb

    errors, skipped = [], []
    for start in range(0, len(paths), batch_size):
        originals = []
        for path in paths[start:start + batch_size]:
            try:
                originals.append(read_rgb(path))
            except InputError as err:
                skipped.append((path, str(err)))
        if originals:
            errors += [l1(r, o) for o, r in zip(originals, reverse(forward(originals)))]
        if on_progress:
            on_progress(len(paths[start:start + batch_size]))
    return (float(np.mean(errors)) if errors else None), skipped


# ------------------------------------------------------------------------------------------- a test set, whole

TASKS = ("auto", "labels", "image")
FID_SKIPPED = ("FID/KID: skipped (they need a local Inception feature extractor: --inception MODEL.onnx; "
               "cycletrans never downloads weights)")
FID_NOTE = "FID/KID: between the outputs and the targets as sets; FID is biased upwards for small sets"


def resolve_folders(data: str | os.PathLike | None, input_dir: str | os.PathLike | None,
                    target_dir: str | os.PathLike | None, reverse: bool = False) -> tuple[Path, Path | None]:
    """The input and target folders that `cycletrans eval` means: explicit --input/--target, else DATA/testA →
    DATA/testB (testB → testA with `reverse`). InputError when a folder is missing."""
    if input_dir is None:
        if data is None:
            raise InputError("give a data folder (with testA/ and testB/) or --input (and --target)")
        data = Path(data)
        if not data.is_dir():
            raise InputError(f"{data}: no such folder")
        a, b = data / "testA", data / "testB"
        for folder in (a, b):
            if not folder.is_dir():
                raise InputError(f"{folder}: no such folder (a data folder needs testA/ and testB/, or use --input "
                                 "and --target)")
        input_dir, target_dir = (b, a) if reverse else (a, b)
    for folder in (input_dir, target_dir):
        if folder is not None and not Path(folder).is_dir():
            raise InputError(f"{folder}: no such folder")
    return Path(input_dir), (Path(target_dir) if target_dir is not None else None)


class FolderEvaluation:
    """Everything `cycletrans eval` decides before any model runs: which files pair up, the task (labels or
    image), the palette, whether the FCN-score stand-in applies. `run` then takes the translation (and its inverse,
    for the cycle errors) as plain callables, so it works the same with an Engine or with a training step's nets.

    InputError (nothing is run) when a folder is missing or empty, or when inputs and targets do not pair up."""

    def __init__(self, input_dir: str | os.PathLike, target_dir: str | os.PathLike | None = None,
                 task: str = "auto", palette: str | os.PathLike | None = None):
        from cycletrans.media.images import list_images, read_rgb

        if task not in TASKS:
            raise InputError(f"--task must be one of {', '.join(TASKS)}, not {task!r}")
        if palette is not None and not Path(palette).is_file():
            raise InputError(f"{palette}: no such palette file")
        self.input_dir = Path(input_dir)
        self.target_dir = Path(target_dir) if target_dir is not None else None
        self.palette: Palette | None = None
        self.palette_source: str | None = None
        self.segmenter: Segmenter | None = None
        self.notes: list[str] = []
        if self.target_dir is None:
            if not self.input_dir.is_dir():
                raise InputError(f"{self.input_dir}: no such folder")
            self.inputs, self.pairs, self.task = list_images(self.input_dir), [], None
            if not self.inputs:
                raise InputError(f"{self.input_dir}: no images")
            return

        pairing = pair_folders(self.input_dir, self.target_dir)
        if pairing.unmatched_inputs or pairing.unmatched_targets:
            lonely = pairing.unmatched_inputs + pairing.unmatched_targets
            raise InputError(f"{self.input_dir} and {self.target_dir} do not pair up by name: "
                             f"{len(pairing.unmatched_inputs)} inputs without a target, "
                             f"{len(pairing.unmatched_targets)} targets without an input (e.g. {lonely[0].name})")
        self.pairs = pairing.pairs
        self.inputs = [source for source, _ in self.pairs]
        palette_file = Path(palette) if palette is not None else find_palette_file(self.target_dir, self.input_dir)
        data_card = read_data_card(palette_file)

        def readable(index: int, n: int | None = None) -> Iterator[np.ndarray]:
            """The first `n` readable inputs (index 0) or targets (1); unreadable ones are reported when scored."""
            for pair in self.pairs[:n] if n else self.pairs:
                try:
                    yield read_rgb(pair[index])
                except InputError:
                    continue

        if task == "auto":
            task = "labels" if looks_like_labels(readable(1, 4)) else "image"
            self.notes.append(f"task: {task} (auto: the targets have {'at most' if task == 'labels' else 'more than'} "
                              f"{MAX_LABEL_COLOURS} colours)")
        self.task = task
        if task == "labels":
            if palette_file is not None:
                self.palette, self.palette_source = load_palette(palette_file), str(palette_file)
            else:
                self.palette = palette_from_images(readable(1))
                self.palette_source = "the distinct colours of the targets"
        elif data_card.get("kind") == "labels2scenes" and looks_like_labels(readable(0, 1)):
            from cycletrans.synthetic import SCENE_PALETTE, scene_segmenter

            self.palette, self.palette_source = SCENE_PALETTE, str(palette_file)
            self.segmenter = scene_segmenter(int(data_card.get("size", 64)))
            self.notes.append("fcn score: synthetic labels → scenes, the outputs segmented by the fixed scene "
                              "segmenter (cycletrans.synthetic) and compared with the input labels")

    def total(self, cycle: bool) -> int:
        """Units of work `run` reports to `on_progress`: pairs, then images round-tripped for the cycle errors."""
        return len(self.pairs) + (len(self.inputs) + len(self.pairs) if cycle else 0)

    def run(self, translate: Translate, inverse: Translate | None = None, cycle: bool = True,
            features: Callable[[list[np.ndarray]], np.ndarray] | None = None, batch_size: int = 8,
            on_progress: Callable[[int], None] | None = None) -> dict:
        """Score `translate` (input domain → target domain) on the pairs; with `inverse` (target → input) and
        `cycle`, also the cycle-reconstruction errors inverse(translate(x)) ≈ x on the inputs and
        translate(inverse(y)) ≈ y on the targets; with `features` (an InceptionFeatures), FID and KID.
        Returns a JSON-ready report; its "skipped" lists the files that failed."""
        notes = [*self.notes, FID_NOTE if features is not None else FID_SKIPPED] if self.pairs else self.notes
        report: dict = {"input": str(self.input_dir), "target": str(self.target_dir) if self.target_dir else None,
                        "task": self.task, "palette": self.palette_source, "metrics": {}, "cycle": {},
                        "skipped": [], "notes": notes}
        skipped: list[tuple[Path, str]] = []
        if self.pairs:
            paired = evaluate_pairs(translate, self.pairs, self.task, self.palette, self.segmenter, features,
                                    batch_size, on_progress)
            report["metrics"], skipped = paired.metrics, paired.skipped
        if inverse is not None and cycle:
            failed_pairs = {source for source, _ in skipped}  # already reported: left out of the cycles too
            if on_progress and failed_pairs:
                on_progress(2 * len(failed_pairs))
            sides = [("input", translate, inverse, [p for p in self.inputs if p not in failed_pairs])]
            if self.pairs:
                sides.append(("target", inverse, translate, [t for s, t in self.pairs if s not in failed_pairs]))
            for side, there, back, paths in sides:
                error, failed = evaluate_cycle(there, back, paths, batch_size, on_progress)
                report["cycle"][side] = {"l1": error, "images": len(paths) - len(failed)}
                skipped += failed
        report["skipped"] = [{"file": str(path), "error": why} for path, why in skipped]
        return report


def read_data_card(palette_file: str | os.PathLike | None) -> dict:
    """palette.json as an object (cycletrans.synthetic writes the kind and size of its data set there); {} when
    there is none or it is not a JSON object."""
    if palette_file is None:
        return {}
    try:
        data = json.loads(Path(palette_file).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
