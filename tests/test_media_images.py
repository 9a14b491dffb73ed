"""Image reading and writing: formats, alpha, 16-bit, EXIF orientation, bytes, atomic writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from cycletrans.errors import InputError
from cycletrans.media.images import (decode_image_bytes, encode_image, format_of, looks_like_image, read_image,
                                     write_image)


def test_png_round_trip_is_exact_with_alpha(tmp_path):
    rgb = synthetic_image((21, 34), 1)
    alpha = np.linspace(0, 255, 21 * 34).astype(np.uint8).reshape(21, 34)
    path = write_image(tmp_path / "a.png", rgb, alpha)
    back_rgb, back_alpha = read_image(path)
    assert np.array_equal(back_rgb, rgb) and np.array_equal(back_alpha, alpha)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary files left behind


@pytest.mark.parametrize("fmt,keeps_alpha", [("jpg", False), ("webp", True), ("tiff", True), ("bmp", False)])
def test_other_formats(tmp_path, fmt, keeps_alpha):
    rgb = synthetic_image((40, 48), 2)
    alpha = np.full((40, 48), 200, np.uint8)
    data = encode_image(rgb, alpha, fmt, quality=95)
    back, back_alpha, detected = decode_image_bytes(data)
    assert detected == fmt and back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).mean() < 3
    assert (back_alpha is not None) == keeps_alpha


def test_quality_changes_jpeg_size():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert len(encode_image(rgb, fmt="jpg", quality=30)) < len(encode_image(rgb, fmt="jpg", quality=95))


def test_reading_normalises_what_files_hold(tmp_path):
    Image.fromarray((np.arange(30 * 20).reshape(20, 30) * 100).astype(np.uint16)).save(tmp_path / "deep.png")
    rgb, alpha = read_image(tmp_path / "deep.png")
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8 and alpha is None and rgb.max() > 200

    image = Image.fromarray(synthetic_image((20, 30), 3))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg")[0].shape == (30, 20, 3)


def test_format_of_and_sniffing(tmp_path):
    assert format_of("x.JPEG") == "jpg" and format_of("x.tif") == "tiff" and format_of("x.gif") is None
    assert looks_like_image(encode_image(synthetic_image((8, 8), 0)))
    assert not looks_like_image(b"photos/a.jpg\nphotos/b.jpg\n")
    with pytest.raises(InputError, match="<stdin>: not an image"):
        decode_image_bytes(b"hello")
    with pytest.raises(InputError, match="format"):
        write_image(tmp_path / "x.unknown", synthetic_image((8, 8), 0))


def test_encoded_png_is_a_real_png():
    data = encode_image(synthetic_image((10, 12), 0), np.zeros((10, 12), np.uint8), "png")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.mode == "RGBA" and image.size == (12, 10)
