"""Generator → ONNX: the one place that needs both torch and onnx.

A style folder's `.onnx` files are made here: dynamic batch, height and width (sides a multiple of 4; the engine
pads), input "input" and output "output", float32 NCHW in [-1, 1], and the metadata props listed in
ARCHITECTURE.md. Each export is checked against PyTorch in onnxruntime on odd sizes before it is kept, and an fp16
variant for GPUs is derived from it with InstanceNormalization left in fp32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx
import torch
from torch import nn

from cycletrans import __version__
from cycletrans.errors import CycletransError
from cycletrans.fsutil import atomic_path

INPUT, OUTPUT = "input", "output"
OPSET = 18
FP32_TOLERANCE = 1e-4  # max abs error vs PyTorch, on outputs in [-1, 1]
FP16_TOLERANCE = 0.1  # fp16 keeps ~3 digits; measured 0.02-0.03 max (~3 of 255 levels) on resnet9; above is broken
# Odd-but-legal sizes: sides multiples of 4 but not of 8, so a graph that silently assumed /8 would show it.
PARITY_SHAPES = ((1, 3, 100, 132), (2, 3, 68, 52))
# Ops kept in fp32 in the fp16 variant: InstanceNorm's statistics (and the centring before it) overflow or lose
# precision in fp16 over a large image.
FP16_BLOCKED_OPS = ("InstanceNormalization", "ReduceMean", "Sub")


class ExportError(CycletransError):
    """An exported model that does not reproduce PyTorch within tolerance."""


@dataclass
class ParityReport:
    max_abs_error: float
    shapes: tuple[tuple[int, ...], ...]
    tolerance: float

    def __str__(self) -> str:
        sizes = ", ".join("×".join(map(str, s)) for s in self.shapes)
        return f"max abs error {self.max_abs_error:.2e} vs PyTorch on {sizes} (tolerance {self.tolerance:.0e})"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs and warns about things irrelevant to a plain conv net (torchvision ops, pytree
    deprecations); keep the user's terminal clean."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def generator_proto(net: nn.Module, *, opset: int = OPSET) -> onnx.ModelProto:
    """Trace `net` with the torch.export-based exporter into an in-memory ONNX model.

    Height and width are declared as 4·h and 4·w so that the output is known to have exactly the input's size, and
    ReflectionPad becomes a single Pad(mode=reflect) on a dynamic tensor: one clean graph (Conv, InstanceNorm,
    Pad, Relu, Add, ConvTranspose, Tanh) that runs at any size. (The legacy TorchScript exporter gives the same
    ops buried under ~250 Shape/Slice/Concat/Constant nodes for the pads.)
    """
    from torch.export import Dim

    net = net.eval()
    sample = torch.zeros(2, 3, 64, 64)  # batch 2: a sample of 1 would be specialised to a constant
    batch, h, w = Dim("batch"), Dim("h4", min=1), Dim("w4", min=1)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            net, (sample,), dynamo=True, opset_version=opset, input_names=[INPUT], output_names=[OUTPUT],
            dynamic_shapes={"x": {0: batch, 2: 4 * h, 3: 4 * w}}, optimize=True, verbose=False,
        )
        program.rename_axes({"4*h4": "height", "4*w4": "width"})
    return program.model_proto


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the model's metadata props (strings only, as ONNX requires)."""
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), str(value)


def generator_metadata(net: nn.Module) -> dict[str, str]:
    """The metadata props of ARCHITECTURE.md that the net itself knows; the caller adds style, direction,
    source_domain, target_domain and train_size."""
    return {
        "cycletrans_version": __version__,
        "normalization": "[-1,1]",
        "ngf": str(getattr(net, "ngf", "")),
        "n_blocks": str(getattr(net, "n_blocks", "")),
    }


def export_generator(net: nn.Module, path: str | os.PathLike, *, metadata: dict[str, str],
                     opset: int = OPSET) -> Path:
    """Write `net` as an fp32 ONNX model at `path` (atomically) with `metadata` in its props; returns the path."""
    model = center_instance_norms(generator_proto(net, opset=opset))
    full_meta = generator_metadata(net)
    full_meta.update({k: str(v) for k, v in metadata.items()})
    set_metadata(model, full_meta)
    onnx.checker.check_model(model)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))
    return path


def center_instance_norms(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite every InstanceNormalization(x) as InstanceNormalization(x - mean_hw(x)): the same function (the
    norm is shift-invariant), but onnxruntime's CPU kernel loses precision when a channel's mean is large against
    its spread over many pixels (its variance comes from raw fp32 sums, which cancel). On a resnet9 at 1080×1920
    the output's max error vs float64 PyTorch drops from 0.12 to 1.4e-3; torch fp32 itself is at 4e-5.
    The cost is one ReduceMean and one Sub per norm."""
    from onnx import helper, numpy_helper

    graph = model.graph
    axes = "cycletrans_hw_axes"
    graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), axes))
    nodes = []
    for node in graph.node:
        if node.op_type == "InstanceNormalization":
            x = node.input[0]
            nodes += [helper.make_node("ReduceMean", [x, axes], [f"{x}_mean"], keepdims=1, name=f"{node.name}_mean"),
                      helper.make_node("Sub", [x, f"{x}_mean"], [f"{x}_centered"], name=f"{node.name}_center")]
            node.input[0] = f"{x}_centered"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _session(path: str | os.PathLike):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(net: nn.Module, path: str | os.PathLike, *, shapes=PARITY_SHAPES,
                 tolerance: float = FP32_TOLERANCE, seed: int = 0) -> ParityReport:
    """Run the ONNX model in onnxruntime (CPU) and `net` in PyTorch on the same random inputs; ExportError when
    the largest absolute difference exceeds `tolerance`."""
    session = _session(path)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    net = net.eval()
    for shape in shapes:
        x = torch.rand(shape, generator=gen) * 2 - 1
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run([OUTPUT], {INPUT: x.numpy()})[0]
        if got.shape != expected.shape:
            raise ExportError(f"{path}: output shape {got.shape} for input {tuple(shape)}, expected {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    report = ParityReport(worst, tuple(tuple(s) for s in shapes), tolerance)
    if not worst <= tolerance:  # also catches NaN
        raise ExportError(f"{path}: exported model differs from PyTorch: {report}")
    return report


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write an fp16 copy of the fp32 model `src` for GPUs: weights and activations in fp16, but the input and
    output stay float32 (the engine's contract) and InstanceNormalization runs in fp32 between casts."""
    half = to_fp16(onnx.load(str(src)))
    onnx.checker.check_model(half)
    dst = Path(dst)
    with atomic_path(dst) as tmp:
        onnx.save_model(half, str(tmp))
    return dst


def to_fp16(model: onnx.ModelProto, blocked_ops=FP16_BLOCKED_OPS) -> onnx.ModelProto:
    """fp16 conversion of a float graph: float initializers and activations in fp16, except around `blocked_ops`,
    which run in fp32 with a Cast wherever a value crosses between the two; the graph's inputs and outputs stay
    float32. Nodes keep their original order, so the graph stays topologically sorted."""
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    model = onnx.shape_inference.infer_shapes(model)  # element types of every intermediate value
    graph = model.graph
    elem_type = {v.name: v.type.tensor_type.elem_type
                 for v in [*graph.input, *graph.output, *graph.value_info]}
    elem_type.update({init.name: init.data_type for init in graph.initializer})
    blocked = [node.op_type in blocked_ops for node in graph.node]

    # Float initializers used only by blocked ops stay fp32; the rest are halved.
    used_by_fp16 = {name for node, b in zip(graph.node, blocked) if not b for name in node.input}
    for init in graph.initializer:
        if init.data_type == FLOAT and init.name in used_by_fp16:
            if any(b and init.name in node.input for node, b in zip(graph.node, blocked)):
                raise ValueError(f"initializer {init.name} is shared by fp16 and fp32 ops")
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))

    precision = {inp.name: FLOAT for inp in graph.input}  # current precision of each float activation
    casts: dict[tuple[str, int], str] = {}
    nodes = []

    def as_type(name: str, to: int) -> str:
        if name not in precision or precision[name] == to:
            return name
        if (name, to) not in casts:
            casts[name, to] = f"{name}_{'fp32' if to == FLOAT else 'fp16'}"
            nodes.append(helper.make_node("Cast", [name], [casts[name, to]], to=to, name=f"cast_{casts[name, to]}"))
        return casts[name, to]

    for node, is_blocked in zip(graph.node, blocked):
        want = FLOAT if is_blocked else HALF
        node.input[:] = [as_type(name, want) for name in node.input]
        if node.op_type == "Constant" and not is_blocked:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16)))
        nodes.append(node)
        for out in node.output:
            if elem_type.get(out) == FLOAT:
                precision[out] = want
    # Graph outputs produced in fp16 are renamed and cast back to float32 under their real name.
    half_outputs = {out.name for out in graph.output if precision.get(out.name) == HALF}
    for node in list(nodes):
        node.input[:] = [f"{n}_fp16" if n in half_outputs else n for n in node.input]
        node.output[:] = [f"{n}_fp16" if n in half_outputs else n for n in node.output]
    nodes += [helper.make_node("Cast", [f"{out}_fp16"], [out], to=FLOAT, name=f"cast_{out}_fp32")
              for out in sorted(half_outputs)]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # intermediate types changed; let shape inference redo them
    return onnx.shape_inference.infer_shapes(model)


def max_abs_difference(path_a: str | os.PathLike, path_b: str | os.PathLike, shape=(1, 3, 100, 132),
                       seed: int = 0) -> float:
    """Largest absolute output difference between two ONNX models on one random input (both on CPU)."""
    x = (np.random.default_rng(seed).random(shape, dtype=np.float32) * 2 - 1)
    a = _session(path_a).run([OUTPUT], {INPUT: x})[0]
    b = _session(path_b).run([OUTPUT], {INPUT: x})[0]
    return float(np.abs(a.astype(np.float64) - b).max())


# ---------------------------------------------------------------------------------------------------------------
# Whole styles: one or two generators → a registered style folder.

@dataclass
class ExportResult:
    """What an export made: the style folder, and how close each file is to PyTorch (or to its fp32 twin)."""

    name: str
    folder: Path
    parity: dict[str, ParityReport]  # direction -> fp32 vs PyTorch
    fp16_error: dict[str, float]  # direction -> fp16 vs fp32 max abs error (only directions with an fp16 file)
    card: dict


def export_style(generators: dict[str, nn.Module], name: str, *, domains: tuple[str, str],
                 train_size: int | None, provenance: dict, fp16: bool = True, overwrite: bool = False,
                 out: str | os.PathLike | None = None, log: Callable[[str], None] | None = None) -> ExportResult:
    """Export `generators` ({"forward": G, "reverse": F}, reverse optional) into a style folder named `name`:
    in the user's store (registered; `out` overrides the folder). Every file is checked before the folder
    appears: fp32 against PyTorch (ExportError above FP32_TOLERANCE), fp16 against fp32 (the fp16 file is left
    out, with a notice, above FP16_TOLERANCE)."""
    from cycletrans import styles

    log = log or (lambda message: None)
    source, target = domains
    parity: dict[str, ParityReport] = {}
    fp16_error: dict[str, float] = {}
    with styles.new_style_folder(name, overwrite=overwrite, out=out) as folder:
        for direction, net in generators.items():
            src, dst = (source, target) if direction == "forward" else (target, source)
            fp32 = export_generator(net, folder / f"{direction}.onnx", metadata={
                "style": name, "direction": direction, "source_domain": src, "target_domain": dst,
                "train_size": "" if train_size is None else str(train_size)})
            parity[direction] = check_parity(net, fp32)
            log(f"{direction}.onnx ({src} → {dst}): {parity[direction]}")
            if fp16:
                half = convert_fp16(fp32, folder / f"{direction}.fp16.onnx")
                error = max_abs_difference(fp32, half)
                if error <= FP16_TOLERANCE:
                    fp16_error[direction] = error
                    log(f"{direction}.fp16.onnx: max abs error {error:.2e} vs fp32 (InstanceNorm kept in fp32)")
                else:
                    half.unlink()
                    log(f"{direction}.fp16.onnx left out: max abs error {error:.2e} vs fp32 exceeds {FP16_TOLERANCE}")
        net = next(iter(generators.values()))
        card = styles.make_card(
            name, domains=domains, directions=list(generators), provenance=provenance, train_size=train_size,
            architecture={"netG": f"resnet{getattr(net, 'n_blocks', '?')}", "ngf": getattr(net, "ngf", None),
                          "n_blocks": getattr(net, "n_blocks", None)},
            export={"opset": OPSET, **{f"{d}_max_abs_error": parity[d].max_abs_error for d in parity},
                    **{f"{d}_fp16_max_abs_error": e for d, e in fp16_error.items()}},
        )
        styles.write_card(folder, card)
    final = Path(out) if out is not None else styles.user_store() / name
    return ExportResult(name=name, folder=final, parity=parity, fp16_error=fp16_error, card=card)


def export_run(run_or_checkpoint: str | os.PathLike, name: str | None = None, *, fp16: bool = True,
               overwrite: bool = False, out: str | os.PathLike | None = None, provenance: dict | None = None,
               log: Callable[[str], None] | None = None) -> ExportResult:
    """Export both generators of a training run (its newest good checkpoint) or of one checkpoint file:
    G (data_a → data_b) as forward.onnx, F as reverse.onnx. The style name defaults to the run folder's name;
    domain names are the basenames of the two training folders."""
    from cycletrans.errors import InputError
    from cycletrans.train.checkpoint import load_generators

    path = Path(run_or_checkpoint)
    if not path.exists():
        raise InputError(f"{path}: no such run folder or checkpoint file")
    pair = load_generators(path)
    config = pair.config or {}
    if name is None:
        run_dir = path if path.is_dir() else path.parent.parent  # <run>/checkpoints/step_*.pt
        name = run_dir.resolve().name
    domains = (_domain_name(config.get("data_a"), "A"), _domain_name(config.get("data_b"), "B"))
    info = {"kind": "training-run", "source": str(pair.source.resolve()), "step": pair.step, "epoch": pair.epoch}
    info.update(provenance or {})
    return export_style({"forward": pair.G, "reverse": pair.F}, name, domains=domains,
                        train_size=config.get("crop_size"), provenance=info, fp16=fp16, overwrite=overwrite,
                        out=out, log=log)


def _domain_name(folder: str | None, fallback: str) -> str:
    return Path(str(folder).rstrip("/\\")).name if folder else fallback
