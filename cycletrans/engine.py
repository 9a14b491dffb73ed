"""The inference engine: frames in, translated frames out, through an onnxruntime session.

It owns everything between a uint8 frame and the network: the choice of execution provider (TensorRT, CUDA or
CPU, checked to really work rather than trusted), reflect-padding any size up to what the generator accepts,
batching frames of one size, tiling images too large to run whole, and the uint8 ↔ [-1, 1] conversion.
No torch here: a machine that only applies styles needs onnxruntime and numpy.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from cycletrans.errors import DeviceError, ModelError

DEVICES = ("auto", "cuda", "tensorrt", "cpu")

# The generator halves the size twice, so its sides must be multiples of 4; below 8 px its innermost reflection
# padding has nothing to reflect (the c7s1/d/R layers of paper appendix 7.2).
SIDE_MULTIPLE = 4
MIN_SIDE = 8

# With tile=None, images above this many pixels (8K and larger) are tiled with AUTO_TILE-px tiles: whole, their
# full-resolution activations (64 channels × pixels × 4 bytes, several alive at once) would not fit in memory.
AUTO_TILE_PIXELS = 4096 * 4096
AUTO_TILE = 2048
MIN_TILE = 64


def usable_cpus() -> int:
    """Cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_trt_cache_dir() -> Path:
    home = os.environ.get("CYCLETRANS_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "cycletrans"
    return base / "tensorrt"


class Engine:
    """A generator loaded for inference.

    `translate(frames)` takes uint8 H×W×3 RGB frames of any sizes and returns frames of the same sizes (or
    downscaled so the longest side is at most `max_size`). `device` is "auto" (CUDA if it really works, else
    CPU with one notice), "cuda", "tensorrt" or "cpu"; a GPU device that is not there raises DeviceError.
    `tile`: None tiles only huge images (over AUTO_TILE_PIXELS), 0 never tiles, N tiles images with a side
    over N px in N×N tiles. `notice` receives one-line messages for the user (e.g. a fallback to CPU).
    `fp16_model_path`, when given and the session runs on CUDA, is loaded instead of `model_path`. `threads`:
    CPU threads for onnxruntime (default: all usable cores).
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        device: str = "auto",
        batch_size: int = 1,
        tile: int | None = None,
        max_size: int | None = None,
        notice: Callable[[str], None] | None = None,
        *,
        fp16_model_path: str | os.PathLike | None = None,
        trt_cache_dir: str | os.PathLike | None = None,
        threads: int | None = None,
    ):
        if device not in DEVICES:
            raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if tile is not None and tile != 0 and tile < MIN_TILE:
            raise ValueError(f"tile must be 0 (never tile) or at least {MIN_TILE} px")
        if max_size is not None and max_size < MIN_SIDE:
            raise ValueError(f"max_size must be at least {MIN_SIDE} px")
        self.batch_size, self.tile, self.max_size = batch_size, tile, max_size
        self._notice = notice or (lambda message: None)
        model_path = _existing_model(model_path)
        fp16 = Path(fp16_model_path) if fp16_model_path and Path(fp16_model_path).is_file() else None
        cache = Path(trt_cache_dir) if trt_cache_dir else default_trt_cache_dir()
        self._session, self.provider, self.model_path = _open_session(model_path, fp16, device, self._notice, cache,
                                                                      threads or usable_cpus())
        self._input_name, self._input_dtype, self._output_name = _check_io(self._session, self.model_path)
        self._bind_device = None if self.provider == "cpu" else "cuda"
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)

    @classmethod
    def for_style(cls, style, *, reverse: bool = False, **options) -> "Engine":
        """An engine for a `cycletrans.styles.Style`: its fp16 model on CUDA where the style has one."""
        fp32 = style.model_path(reverse=reverse)
        return cls(fp32, fp16_model_path=style.model_path(reverse=reverse, fp16=True), **options)

    def __repr__(self) -> str:
        return f"Engine({str(self.model_path)!r}, provider={self.provider!r}, batch_size={self.batch_size})"

    # -- public API -----------------------------------------------------------------------------------------

    def translate(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Translate frames (uint8 H×W×3 RGB, any sizes); same-size frames run together in batches."""
        frames = [self._fit(_check_frame(frame)) for frame in frames]
        results: list[np.ndarray | None] = [None] * len(frames)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for shape, indices in by_shape.items():
            tile = self._tile_for(shape[0], shape[1])
            if tile:
                for i in indices:
                    results[i] = blend_tiles(frames[i], self._infer, tile, tile_overlap(tile), self.batch_size)
                continue
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                out = self._infer([frames[i] for i in chunk])
                for i, frame in zip(chunk, to_uint8(out)):
                    results[i] = frame
        return results  # type: ignore[return-value]

    def translate_one(self, frame: np.ndarray) -> np.ndarray:
        return self.translate([frame])[0]

    # -- internals -----------------------------------------------------------------------------------------

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        """Downscale (keeping the aspect ratio) so the longest side is at most max_size."""
        h, w = frame.shape[:2]
        if self.max_size is None or max(h, w) <= self.max_size:
            return frame
        import cv2

        scale = self.max_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))

    def _tile_for(self, h: int, w: int) -> int:
        if self.tile == 0:
            return 0
        if self.tile is None:
            return AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0
        return self.tile if max(h, w) > self.tile else 0

    def _infer(self, frames: list[np.ndarray]) -> np.ndarray:
        """Run same-size frames as one batch: float32 N×H×W×3 in 0..255 (not yet rounded, so tiles can blend)."""
        h, w = frames[0].shape[:2]
        ph, pw = _padded(h) - h, _padded(w) - w
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0))
        batch = np.stack([np.pad(f, pads, mode="reflect") if ph or pw else f for f in frames])
        y = self._run(to_input(batch, self._input_dtype))
        y = y[:, :, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + w]
        return from_output(y)

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._bind_device is None:
            return self._session.run([self._output_name], {self._input_name: x})[0]
        # On the GPU, I/O binding: the input is copied up once, the output allocated on the device and copied
        # back once, with no intermediate host buffers.
        binding = self._session.io_binding()
        binding.bind_cpu_input(self._input_name, x)
        binding.bind_output(self._output_name, self._bind_device)
        self._session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


# -- frames ↔ network tensors (vectorised) ----------------------------------------------------------------------


def to_input(batch: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 N×H×W×3 → NCHW in [-1, 1] (paper's normalisation, as in the reference code)."""
    x = batch.transpose(0, 3, 1, 2).astype(np.float32)
    x *= 2.0 / 255.0
    x -= 1.0
    return np.ascontiguousarray(x, dtype=dtype)


def from_output(y: np.ndarray) -> np.ndarray:
    """NCHW in [-1, 1] → float32 N×H×W×3 in [0, 255] (unrounded)."""
    y = y.astype(np.float32)  # also copies a float16 output
    y += 1.0
    y *= 127.5
    return y.transpose(0, 2, 3, 1)


def to_uint8(images: np.ndarray) -> list[np.ndarray]:
    """float 0..255 (N×)H×W×3 → C-contiguous uint8 frames, rounded and clipped."""
    out = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(frame) for frame in out] if out.ndim == 4 else [np.ascontiguousarray(out)]


def _padded(side: int) -> int:
    return max(MIN_SIDE, -(-side // SIDE_MULTIPLE) * SIDE_MULTIPLE)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames must be uint8 H×W×3 RGB arrays, got {got}")
    return frame


# -- tiling --------------------------------------------------------------------------------------------------------


def tile_overlap(tile: int) -> int:
    """Overlap between neighbouring tiles: wide enough to hide each tile's border effects (≥ 32 px)."""
    return min(tile // 2, max(32, tile // 8))


def tile_starts(length: int, tile: int, overlap: int, align: int = SIDE_MULTIPLE) -> list[int]:
    """Start offsets of tiles covering [0, length), spread evenly with overlaps of at least `overlap`. Starts are
    multiples of `align` (the generator's total stride, with `length` and `tile` multiples of it too), so every
    tile samples the image on the same stride-4 grid as a whole-image pass; off-grid tiles come out visibly
    different."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap - align)) + 1  # `- align`: room for rounding the starts
    steps = (length - tile) // align
    return [round(i * steps / (count - 1)) * align for i in range(count)]


def _ramp(starts: list[int], index: int, size: int) -> np.ndarray:
    """1-D blend weights of tile `index`: linear ramps across its overlaps with the previous and next tile, so the
    weights of overlapping tiles add up to one and each tile fades out where its own border effects are."""
    weight = np.ones(size, np.float32)
    if index > 0:
        overlap = starts[index - 1] + size - starts[index]
        weight[:overlap] = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    if index + 1 < len(starts):
        overlap = starts[index] + size - starts[index + 1]
        weight[size - overlap:] = np.minimum(weight[size - overlap:], (overlap - 0.5 - np.arange(overlap)) / overlap)
    return weight


def blend_tiles(frame: np.ndarray, infer: Callable[[list[np.ndarray]], np.ndarray], tile: int, overlap: int,
                batch_size: int = 1) -> np.ndarray:
    """Translate a large frame as overlapping tile×tile tiles with feathered blending.

    Works one row of tiles at a time and keeps only a tile-high float buffer, so memory stays bounded for 8K+
    images. `infer` maps a list of same-size uint8 tiles to float32 N×h×w×3 outputs (0..255).
    """
    h, w = frame.shape[:2]
    # Tile the image as a whole pass would see it: reflect-padded to multiples of 4 (split as in Engine._infer).
    ph, pw = -h % SIDE_MULTIPLE, -w % SIDE_MULTIPLE
    top, left = ph // 2, pw // 2
    if ph or pw:
        frame = np.pad(frame, ((top, ph - top), (left, pw - left), (0, 0)), mode="reflect")
    padded = blend_aligned_tiles(frame, infer, tile - tile % SIDE_MULTIPLE, overlap, batch_size)
    return padded[top:top + h, left:left + w] if ph or pw else padded


def blend_aligned_tiles(frame: np.ndarray, infer: Callable[[list[np.ndarray]], np.ndarray], tile: int,
                        overlap: int, batch_size: int) -> np.ndarray:
    """blend_tiles on a frame whose sides, like `tile`, are multiples of 4."""
    h, w = frame.shape[:2]
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    x_weights = [_ramp(xs, i, tw) for i in range(len(xs))]
    out = np.empty((h, w, 3), np.uint8)
    acc = np.zeros((th, w, 3), np.float32)  # rows [y0, y0 + th) of the image
    weight_sum = np.zeros((th, w, 1), np.float32)
    for row, y0 in enumerate(ys):
        y_weight = _ramp(ys, row, th)[:, None, None]
        tiles = [frame[y0:y0 + th, x0:x0 + tw] for x0 in xs]
        for start in range(0, len(tiles), batch_size):
            results = infer(tiles[start:start + batch_size])
            for col, result in enumerate(results, start):
                weight = y_weight * x_weights[col][None, :, None]
                x0 = xs[col]
                acc[:, x0:x0 + tw] += result * weight
                weight_sum[:, x0:x0 + tw] += weight
        done = (ys[row + 1] if row + 1 < len(ys) else h) - y0  # rows no later tile touches
        out[y0:y0 + done] = to_uint8(acc[:done] / weight_sum[:done])[0]
        keep = th - done
        acc[:keep], weight_sum[:keep] = acc[done:], weight_sum[done:]
        acc[keep:], weight_sum[keep:] = 0, 0
    return out


# -- sessions and providers ----------------------------------------------------------------------------------------


def _existing_model(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    return path


def cuda_gpu_count() -> tuple[int, str]:
    """How many CUDA GPUs the NVIDIA driver reports, and why none when 0; asks libcuda directly, which is cheap
    and quiet, instead of letting onnxruntime fail loudly on a machine without a GPU."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
    except OSError:
        return 0, "no NVIDIA driver found"
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver reports no usable GPU"
    return count.value, ""


def _session_options(ort):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; fallbacks are reported by us, in one line
    return options


def _cpu_session(ort, model_path: Path, threads: int):
    options = _session_options(ort)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Idle threads sleep instead of spinning between runs: the pipelines' decode and encode threads need those
    # cores, and on a shared machine spinning only steals time from whoever else runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return _create(ort, model_path, options, ["CPUExecutionProvider"])


def _gpu_session(ort, model_path: Path, tensorrt: bool, trt_cache_dir: Path):
    cuda_options = {
        "device_id": "0",
        # A mixed folder brings many image sizes: EXHAUSTIVE would benchmark every convolution anew for each.
        "cudnn_conv_algo_search": "HEURISTIC",
        "cudnn_conv_use_max_workspace": "1",
        "do_copy_in_default_stream": "1",
        "arena_extend_strategy": "kSameAsRequested",
    }
    providers: list = [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]
    if tensorrt:
        trt_cache_dir.mkdir(parents=True, exist_ok=True)
        providers.insert(0, ("TensorrtExecutionProvider", {
            "device_id": "0",
            "trt_fp16_enable": "True",
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(trt_cache_dir),
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": str(trt_cache_dir),
        }))
    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from pip wheels (nvidia-*) are found only when preloaded
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its warnings, and stdout is for data
                ort.preload_dlls(directory="")
        except Exception:
            pass
    # A provider that fails to start makes onnxruntime log errors and quietly fall back to the CPU; we look at
    # what the session really got instead, and say it in one line.
    ort.set_default_logger_severity(4)
    options = _session_options(ort)
    options.log_severity_level = 4
    try:
        return _create(ort, model_path, options, providers)
    finally:
        ort.set_default_logger_severity(2)


def _create(ort, model_path: Path, options, providers):
    try:
        return ort.InferenceSession(str(model_path), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for protobuf/graph problems
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{model_path}: not a usable ONNX model ({reason})") from None


def _open_session(model_path: Path, fp16_path: Path | None, device: str, notice, trt_cache_dir: Path, threads: int):
    """(session, provider name, model path loaded) for the device asked for, falling back only from "auto"
    (and from "tensorrt" to CUDA), each fallback with one notice line."""
    import onnxruntime as ort

    if device == "cpu":
        return _cpu_session(ort, model_path, threads), "cpu", model_path
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        if device != "auto":
            raise DeviceError(f"--device {device}: this onnxruntime has no GPU support (install onnxruntime-gpu)")
        return _cpu_session(ort, model_path, threads), "cpu", model_path
    gpus, why = cuda_gpu_count()
    if gpus and device == "tensorrt":
        session = _gpu_session(ort, model_path, tensorrt=True, trt_cache_dir=trt_cache_dir)
        if session.get_providers()[0] == "TensorrtExecutionProvider":
            return session, "tensorrt", model_path
        notice("TensorRT is not usable here (TensorRT libraries missing?); using CUDA instead")
    if gpus:
        gpu_model = fp16_path or model_path  # fp16 halves memory traffic and uses the tensor cores
        session = _gpu_session(ort, gpu_model, tensorrt=False, trt_cache_dir=trt_cache_dir)
        if session.get_providers()[0] == "CUDAExecutionProvider":
            return session, "cuda", gpu_model
        why = "onnxruntime could not start CUDA (are the CUDA and cuDNN libraries it needs installed?)"
    if device != "auto":
        raise DeviceError(f"--device {device}: {why}")
    notice(f"no usable GPU ({why}); running on CPU")
    return _cpu_session(ort, model_path, threads), "cpu", model_path


def _check_io(session, model_path: Path) -> tuple[str, type, str]:
    """The contract with export: one NCHW 3-channel input and one output (names from the model)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] not in (3, "3"):
        raise ModelError(f"{model_path}: not an image generator (expects one N×3×H×W input and one output)")
    dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32
    return inputs[0].name, dtype, outputs[0].name
