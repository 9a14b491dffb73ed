"""The inference engine on a tiny exported style (resnet6, ngf 4): sizes, batching, tiling, providers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_image
from cycletrans.engine import Engine, blend_tiles, cuda_gpu_count, tile_starts
from cycletrans.errors import DeviceError, ModelError


def build_tiny_style(tmp_path_factory):
    """A style folder with forward/reverse (+ fp16) models of seeded tiny generators, made once per test session
    through the export API; returns (folder, forward generator)."""
    from cycletrans.export import export_style
    from cycletrans.nets import build_generator

    torch.manual_seed(0)
    nets = {"forward": build_generator("resnet6", 4).eval(), "reverse": build_generator("resnet6", 4).eval()}
    folder = tmp_path_factory.getbasetemp() / "store" / "tiny"
    if not folder.exists():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a tiny net; extra OpenMP threads only spin on a busy machine
        try:
            export_style(nets, "tiny", domains=("a", "b"), train_size=64, provenance={"test": True}, fp16=True,
                         out=folder)
        finally:
            torch.set_num_threads(threads)
    return folder, nets["forward"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_style(tmp_path_factory)


@pytest.fixture(scope="module")
def engine(tiny):
    return Engine(tiny[0] / "forward.onnx", device="cpu")


def test_any_size_comes_back_the_same_size(engine):
    for h, w in ((97, 131), (5, 3), (64, 64)):
        frame = synthetic_image((h, w), seed=h)
        out = engine.translate_one(frame)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    out = engine.translate_one(synthetic_image((97, 131), 1))
    assert not np.array_equal(out, synthetic_image((97, 131), 1))  # the network did something
    assert np.array_equal(out, engine.translate_one(synthetic_image((97, 131), 1)))  # deterministic


def test_matches_pytorch_with_the_papers_normalisation(tiny, engine):
    """uint8 → [-1, 1] → generator → uint8, against the same generator run in PyTorch."""
    frame = synthetic_image((48, 64), seed=3)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ((tiny[1](x)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
    assert np.abs(engine.translate_one(frame).astype(float) - expected).max() <= 1


def test_batch_equals_one_by_one(tiny):
    frames = [synthetic_image((40, 52), seed=i) for i in range(5)] + [synthetic_image((37, 29), seed=9)]
    frames.insert(2, synthetic_image((37, 29), seed=10))  # sizes interleaved: grouped, order kept
    single = Engine(tiny[0] / "forward.onnx", device="cpu")
    batched = Engine(tiny[0] / "forward.onnx", device="cpu", batch_size=4)
    one_by_one = [single.translate_one(f) for f in frames]
    together = batched.translate(frames)
    assert [o.shape for o in together] == [f.shape for f in frames]
    for a, b in zip(one_by_one, together):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_io_binding_path_gives_the_same_frames(tiny, engine):
    """The GPU path binds input and output buffers; exercised here with CPU buffers, same results."""
    bound = Engine(tiny[0] / "forward.onnx", device="cpu")
    bound._bind_device = "cpu"
    frame = synthetic_image((45, 61), 8)
    assert np.array_equal(bound.translate_one(frame), engine.translate_one(frame))


def test_tiled_matches_untiled_on_an_image_that_fits(tiny, engine):
    # A stationary texture, so that InstanceNorm's per-tile statistics equal the whole image's (on a
    # non-stationary image each tile is normalised by its own statistics and the tones drift a little).
    rng = np.random.default_rng(0)
    texture = np.tile(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), (18, 22, 1))[:286, :347]
    whole = engine.translate_one(np.ascontiguousarray(texture))
    tiled = Engine(tiny[0] / "forward.onnx", device="cpu", tile=192, batch_size=2).translate_one(texture)
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert tiled.shape == whole.shape
    assert diff.mean() < 3 and np.percentile(diff, 99) < 16
    # A tile larger than the image: exactly the untiled result.
    big_tile = Engine(tiny[0] / "forward.onnx", device="cpu", tile=512).translate_one(texture)
    assert np.array_equal(big_tile, whole)


def test_tile_blending_weights_sum_to_one_without_seams():
    """With an identity 'network', blended tiles must give back the image exactly: full coverage and weights
    that add up to one everywhere (a seam or a gap would show)."""
    frame = np.random.default_rng(1).integers(0, 256, (301, 517, 3), dtype=np.uint8)
    calls = []

    def identity(tiles):
        calls.append(len(tiles))
        assert all(t.shape[0] % 4 == 0 and t.shape[1] % 4 == 0 for t in tiles)
        return np.stack(tiles).astype(np.float32)

    out = blend_tiles(frame, identity, tile=128, overlap=32, batch_size=3)
    assert np.array_equal(out, frame)
    assert max(calls) <= 3 and sum(calls) > 6


def test_tile_starts_are_aligned_and_overlap():
    for length, tile, overlap in ((1100, 256, 32), (7680, 2048, 256), (260, 256, 32), (640, 256, 32)):
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(s % 4 == 0 for s in starts)
        assert all(b > a and a + tile - b >= overlap for a, b in zip(starts, starts[1:]))


def test_max_size_downscales_keeping_the_aspect(tiny):
    engine = Engine(tiny[0] / "forward.onnx", device="cpu", max_size=64)
    assert engine.translate_one(synthetic_image((100, 300), 2)).shape == (21, 64, 3)
    assert engine.translate_one(synthetic_image((40, 30), 2)).shape == (40, 30, 3)  # small ones untouched


@pytest.mark.skipif(cuda_gpu_count()[0] > 0, reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_device_error(tiny):
    with pytest.raises(DeviceError, match="--device cuda"):
        Engine(tiny[0] / "forward.onnx", device="cuda")
    with pytest.raises(DeviceError):
        Engine(tiny[0] / "forward.onnx", device="tensorrt")


@pytest.mark.skipif(cuda_gpu_count()[0] > 0, reason="this machine has a GPU")
def test_auto_falls_back_to_cpu_with_at_most_one_notice(tiny, capfd):
    notices = []
    engine = Engine.for_style(_style(tiny[0]), device="auto", notice=notices.append)
    assert engine.provider == "cpu"
    assert engine.model_path.name == "forward.onnx"  # the fp16 variant is for GPUs only
    assert len(notices) <= 1 and all("CPU" in n for n in notices)
    assert "onnxruntime" not in capfd.readouterr().err  # no provider noise from onnxruntime itself


def test_metadata_and_reverse(tiny):
    forward = Engine.for_style(_style(tiny[0]), device="cpu")
    reverse = Engine.for_style(_style(tiny[0]), reverse=True, device="cpu")
    assert forward.metadata["direction"] == "forward" and reverse.metadata["direction"] == "reverse"
    frame = synthetic_image((32, 32), 4)
    assert not np.array_equal(forward.translate_one(frame), reverse.translate_one(frame))


def test_bad_models_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="no such model"):
        Engine(tmp_path / "missing.onnx", device="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not a protobuf")
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        Engine(junk, device="cpu")


def test_rejects_frames_that_are_not_uint8_rgb(engine):
    with pytest.raises(ValueError, match="uint8"):
        engine.translate([np.zeros((8, 8), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        engine.translate([np.zeros((8, 8, 3), np.float32)])


def _style(folder):
    from cycletrans.styles import resolve_style

    return resolve_style(None, folder)
