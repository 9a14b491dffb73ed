"""Generator → ONNX: the exported graph must reproduce PyTorch at any size (dynamic N/H/W), carry its metadata, and
the fp16 variant must keep float32 I/O and InstanceNorm in fp32. Whole runs export to a registered style."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cycletrans import export, styles
from cycletrans.errors import InputError
from cycletrans.nets import build_generator
from cycletrans.train.checkpoint import save_checkpoint

METADATA_KEYS = {"cycletrans_version", "style", "direction", "source_domain", "target_domain", "train_size",
                 "normalization", "ngf", "n_blocks"}


def tiny_generator(seed: int) -> torch.nn.Module:
    """resnet6 with ngf 4; biases made non-zero so that a graph which dropped them would show."""
    torch.manual_seed(seed)
    net = build_generator("resnet6", 4)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    return net.eval()


def make_run(run_dir, seed: int = 0, data_a="data/photos/", data_b="/data/monet"):
    G, F = tiny_generator(seed), tiny_generator(seed + 1)
    config = {"data_a": data_a, "data_b": data_b, "crop_size": 64, "netG": "resnet6", "ngf": 4, "name": "x"}
    save_checkpoint(run_dir, {"step": 7, "epoch": 2, "config": config,
                              "nets": {"G": G.state_dict(), "F": F.state_dict()}}, keep=3)
    return G, F


def ort_run(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


def torch_run(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One generator exported once for the module: (net, fp32 path, fp16 path)."""
    folder = tmp_path_factory.mktemp("export")
    net = tiny_generator(0)
    fp32 = export.export_generator(net, folder / "g.onnx", metadata={
        "style": "t", "direction": "forward", "source_domain": "a", "target_domain": "b", "train_size": "64"})
    fp16 = export.convert_fp16(fp32, folder / "g.fp16.onnx")
    return net, fp32, fp16


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLETRANS_HOME", str(tmp_path / "store"))
    return tmp_path / "store"


@pytest.mark.parametrize("shape", [(1, 3, 100, 132), (2, 3, 100, 132), (2, 3, 36, 260), (1, 3, 64, 64)])
def test_fp32_matches_pytorch_at_any_size(exported, shape):
    net, fp32, _ = exported
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    got = ort_run(fp32, x)
    assert got.shape == shape
    assert np.abs(got - torch_run(net, x)).max() < 1e-4


def test_large_images_with_offset_activations_stay_accurate(tmp_path, store):
    """onnxruntime's CPU InstanceNorm computes variance in one pass and loses precision when a channel's mean is
    large against its spread over many pixels; the exporter centres its input first. Without that this case is
    off by ~2e-4 (and by 0.12 on a resnet9 at 1080p)."""
    net = tiny_generator(3)
    with torch.no_grad():
        net.model[1].bias.add_(20.0)  # first-layer outputs sit far from zero, as on bright, flat images
    # (exported as a whole style with --out: a folder outside the store, not registered)
    result = export.export_style({"forward": net}, "offset", domains=("a", "b"), train_size=64, provenance={},
                                 fp16=False, out=tmp_path / "models" / "default")
    assert sorted(p.name for p in result.folder.iterdir()) == ["card.json", "forward.onnx"]
    assert not store.exists()
    path = styles.resolve_style(None, result.folder).model_path()
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
    assert np.abs(ort_run(path, x) - torch_run(net, x)).max() < 1e-4


def test_graph_is_clean_dynamic_and_tagged(exported):
    _, fp32, _ = exported
    model = onnx.load(str(fp32))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert {n.op_type for n in model.graph.node} == {"Conv", "InstanceNormalization", "Pad", "Relu", "Add",
                                                       "ConvTranspose", "Tanh", "ReduceMean", "Sub"}
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("input", "output")
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert METADATA_KEYS <= set(meta)
    assert meta["ngf"] == "4" and meta["n_blocks"] == "6" and meta["normalization"] == "[-1,1]"
    assert meta["direction"] == "forward" and meta["source_domain"] == "a" and meta["train_size"] == "64"


def test_fp16_keeps_float32_io_and_fp32_instance_norm(exported):
    net, fp32, fp16 = exported
    model = onnx.load(str(fp16))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    producers = {out: node for node in model.graph.node for out in node.output}
    inits = {i.name: i for i in model.graph.initializer}
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 17
    for norm in norms:  # centred in fp32 (Cast → ReduceMean/Sub → InstanceNorm), scale/bias float32
        center = producers[norm.input[0]]
        assert center.op_type == "Sub"
        cast = producers[center.input[0]]
        assert cast.op_type == "Cast" and cast.attribute[0].i == onnx.TensorProto.FLOAT
        assert producers[center.input[1]].op_type == "ReduceMean"
        assert all(inits[name].data_type == onnx.TensorProto.FLOAT for name in norm.input[1:])
    conv_weights = [inits[n.input[1]] for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert conv_weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in conv_weights)
    assert fp16.stat().st_size < 0.8 * fp32.stat().st_size
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 100, 132)).astype(np.float32)
    got = ort_run(fp16, x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.abs(got - torch_run(net, x)).max() < export.FP16_TOLERANCE


def test_parity_check_catches_a_different_model(exported):
    _, fp32, _ = exported
    assert export.check_parity(tiny_generator(0), fp32).max_abs_error < 1e-4
    with pytest.raises(export.ExportError, match="differs from PyTorch"):
        export.check_parity(tiny_generator(5), fp32)


def test_cli_export_registers_both_directions(cli, tmp_path, store):
    G, F = make_run(tmp_path / "runs" / "monet")
    result = cli("export", tmp_path / "runs" / "monet", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["path"] == str(store / "monet")  # name defaults to the run folder's
    assert "max abs error" in result.err
    folder = store / "monet"
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.json", "forward.fp16.onnx", "forward.onnx", "reverse.fp16.onnx", "reverse.onnx"]
    card = json.loads((folder / "card.json").read_text())
    assert card["domains"] == {"source": "photos", "target": "monet"}  # basenames of data_a / data_b
    assert card["directions"] == ["forward", "reverse"] and card["train_size"] == 64
    assert card["provenance"]["step"] == 7 and card["provenance"]["kind"] == "training-run"
    assert card["export"]["forward_max_abs_error"] < 1e-4 and card["export"]["reverse_fp16_max_abs_error"] < 2e-2

    style = styles.resolve_style("monet", None)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 44, 52)).astype(np.float32)
    assert np.abs(ort_run(style.model_path(), x) - torch_run(G, x)).max() < 1e-4
    assert np.abs(ort_run(style.model_path(reverse=True), x) - torch_run(F, x)).max() < 1e-4
    reverse_meta = export.read_metadata(style.model_path(reverse=True))
    assert (reverse_meta["direction"], reverse_meta["source_domain"], reverse_meta["target_domain"]) == (
        "reverse", "monet", "photos")
    assert style.model_path(fp16=True).name == "forward.fp16.onnx"

    before = (folder / "forward.onnx").read_bytes()
    again = cli("export", tmp_path / "runs" / "monet")
    assert again.code == 2 and "already exists" in again.err and "Traceback" not in again.err
    assert (folder / "forward.onnx").read_bytes() == before


def test_force_replaces_a_style_whole(exported, store):
    old = store / "s"
    old.mkdir(parents=True)
    (old / "forward.onnx").write_bytes(b"old")
    (old / "reverse.onnx").write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        export.export_style({"forward": exported[0]}, "s", domains=("a", "b"), train_size=None, provenance={})
    result = export.export_style({"forward": exported[0]}, "s", domains=("a", "b"), train_size=None,
                                 provenance={}, fp16=False, overwrite=True)
    assert sorted(p.name for p in result.folder.iterdir()) == ["card.json", "forward.onnx"]  # old reverse gone
    assert (old / "forward.onnx").read_bytes() != b"old"
    assert [p.name for p in store.iterdir()] == ["s"]  # no staging or old folders left behind


def test_failed_export_leaves_nothing_behind(tmp_path, store, monkeypatch):
    make_run(tmp_path / "run")

    def fails_on_reverse(net, path, *, metadata):
        if metadata["direction"] == "reverse":
            raise export.ExportError("simulated failure")
        path.write_bytes(b"half-done")
        return path

    monkeypatch.setattr(export, "export_generator", fails_on_reverse)
    monkeypatch.setattr(export, "check_parity", lambda net, path: None)
    with pytest.raises(export.ExportError):
        export.export_run(tmp_path / "run", "broken", fp16=False)
    assert not store.exists() or list(store.iterdir()) == []


@pytest.mark.parametrize("make", ["missing", "empty_run", "not_a_checkpoint"])
def test_cli_export_user_errors(cli, tmp_path, store, make):
    if make == "missing":
        target = tmp_path / "no-such-run"
    elif make == "empty_run":
        target = tmp_path / "run"
        target.mkdir()
    else:
        target = tmp_path / "notes.pt"
        target.write_text("not a checkpoint")
    result = cli("export", target, "--name", "x")
    assert result.code == 2
    assert "cycletrans: error:" in result.err and "Traceback" not in result.err
    assert not (store / "x").exists()


@pytest.mark.parametrize("what", ["folder", "file"])
def test_force_never_replaces_what_is_not_a_style(exported, tmp_path, what):
    """`export RUN -o RUN --force` (or -o onto any folder of the user's) must not delete it."""
    target = tmp_path / "precious"
    if what == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("keep me")
    else:
        target.write_text("keep me")
    with pytest.raises(InputError, match="not a style folder"):
        export.export_style({"forward": exported[0]}, "s", domains=("a", "b"), train_size=None, provenance={},
                            fp16=False, overwrite=True, out=target)
    assert (target / "notes.txt" if what == "folder" else target).read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]  # no staging folder left behind
