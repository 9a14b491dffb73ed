"""Image files in and out. Whatever the file holds (palette, grayscale, 16-bit, RGBA, EXIF-rotated), the rest of
cycletrans sees uint8 H×W×3 RGB, plus the alpha channel kept aside where there is one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cycletrans.errors import InputError

# Extensions looked at when a folder is scanned; anything else in the folder is not an image to us.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif"})

Image.MAX_IMAGE_PIXELS = 1 << 30  # 8K and larger panoramas are legitimate inputs here


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale images wider than 8 bits (16-bit PNG/TIFF, float TIFF) down to 0..255 instead of clipping them."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        top = 1.0 if array.max(initial=0) <= 1.0 else 255.0
    elif array.dtype.itemsize == 2:
        top = 65535.0  # a 16-bit file: a dark one must stay dark, so never judge by its maximum
    else:
        top = 65535.0 if array.max(initial=0) > 255 else 255.0  # PIL's 32-bit "I" mode holds either
    return np.clip(array.astype(np.float64) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)


def decode_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """A PIL image as (uint8 H×W×3 RGB, uint8 H×W alpha or None), EXIF orientation applied."""
    image = ImageOps.exif_transpose(image)
    alpha = None
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        gray = _to_uint8(np.asarray(image))
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        alpha = np.asarray(image)[:, :, 3].copy()
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    return rgb, alpha


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image file as (RGB uint8 H×W×3, alpha or None). Raises InputError if it is not a readable image."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return decode_image(image)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise _unreadable(path, err) from None


def _unreadable(name: str | os.PathLike, err: Exception) -> InputError:
    """The one line for a file Pillow cannot open or decode."""
    reason = "not an image" if isinstance(err, UnidentifiedImageError) else f"unreadable image ({err})"
    return InputError(f"{name}: {reason}")


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as uint8 H×W×3 RGB (alpha dropped)."""
    return read_image(path)[0]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder`, recursively, in a stable (sorted) order; hidden files and folders skipped."""
    root = Path(folder)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / name for name in sorted(filenames) if not name.startswith(".") and is_image_path(name)]
    return found


# -- writing -------------------------------------------------------------------------------------------------------

# Formats we write: name → (extension, keeps an alpha channel). Reading knows more (gif, ppm, ...); those are
# written as png.
WRITE_FORMATS: dict[str, tuple[str, bool]] = {
    "png": (".png", True), "jpg": (".jpg", False), "webp": (".webp", True), "bmp": (".bmp", False),
    "tiff": (".tif", True),
}
_FORMAT_OF_EXTENSION = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".bmp": "bmp",
                        ".tif": "tiff", ".tiff": "tiff"}
_FORMAT_OF_PIL = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
DEFAULT_QUALITY = 95


def format_of(path: str | os.PathLike) -> str | None:
    """The write format a file name asks for ("png", "jpg", ...), or None for an extension we do not write."""
    return _FORMAT_OF_EXTENSION.get(Path(path).suffix.lower())


def format_extension(fmt: str) -> str:
    return WRITE_FORMATS[fmt][0]


def encode_image(rgb: np.ndarray, alpha: np.ndarray | None = None, fmt: str = "png",
                 quality: int = DEFAULT_QUALITY) -> bytes:
    """Encode uint8 H×W×3 RGB (+ H×W alpha, kept where the format has one) as `fmt` bytes.

    OpenCV encodes: its PNG writer is several times faster than Pillow's for the same size of file, and it releases
    the GIL, so the pipelines' writer threads really overlap with inference.
    """
    import cv2

    if fmt not in WRITE_FORMATS:
        raise InputError(f"cannot write {fmt!r} images; choose one of {', '.join(WRITE_FORMATS)}")
    extension, keeps_alpha = WRITE_FORMATS[fmt]
    if alpha is not None and keeps_alpha:
        pixels = np.dstack([rgb[:, :, ::-1], alpha])
    else:
        pixels = rgb[:, :, ::-1]
    params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, quality], "webp": [cv2.IMWRITE_WEBP_QUALITY, quality]}.get(fmt, [])
    ok, buffer = cv2.imencode(extension, np.ascontiguousarray(pixels), params)
    if not ok:
        raise InputError(f"could not encode a {rgb.shape[1]}×{rgb.shape[0]} image as {fmt}")
    return buffer.tobytes()


def write_image(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None, *,
                fmt: str | None = None, quality: int = DEFAULT_QUALITY) -> Path:
    """Write an image atomically; the format is `fmt` or else the one the extension names."""
    from cycletrans.fsutil import atomic_write_bytes

    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt is None:
        raise InputError(f"{path}: cannot tell the image format from the extension; use one of "
                         f"{', '.join(sorted(_FORMAT_OF_EXTENSION))}")
    atomic_write_bytes(path, encode_image(rgb, alpha, fmt, quality))
    return path


def decode_image_bytes(data: bytes, name: str = "<stdin>") -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Image bytes (e.g. from stdin) as (RGB, alpha or None, write format of the same kind or None)."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt = _FORMAT_OF_PIL.get(image.format or "")
            rgb, alpha = decode_image(image)
            return rgb, alpha, fmt
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise _unreadable(name, err) from None


def looks_like_image(data: bytes) -> bool:
    """Whether bytes start like an image file Pillow can open (to tell image bytes from a list of paths)."""
    import io

    try:
        with Image.open(io.BytesIO(data)):  # reads the header only
            return True
    except Exception:
        return False
