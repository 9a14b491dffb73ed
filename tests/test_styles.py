"""Named styles: where names resolve (--model, user store, shipped store, aliases), the errors that say what to
do, removal, and importing reference-implementation `.pth` files safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cycletrans import styles
from cycletrans.errors import InputError, ModelError
from cycletrans.nets import build_generator


@pytest.fixture(autouse=True)
def stores(tmp_path, monkeypatch):
    """A private user store and a private 'shipped' store for each test."""
    user, shipped = tmp_path / "home", tmp_path / "shipped"
    monkeypatch.setenv("CYCLETRANS_HOME", str(user))
    monkeypatch.setattr(styles, "shipped_store", lambda: shipped)
    return user, shipped


def fake_style(store, name, reverse=False, fp16=False, card=None):
    """A style folder whose .onnx files are placeholders: enough for name resolution, which never opens them."""
    folder = store / name
    folder.mkdir(parents=True)
    for direction in ["forward"] + (["reverse"] if reverse else []):
        (folder / f"{direction}.onnx").write_bytes(b"onnx")
        if fp16:
            (folder / f"{direction}.fp16.onnx").write_bytes(b"onnx16")
    if card is not None:
        (folder / "card.json").write_text(json.dumps(card))
    return folder


def reference_generator_file(path, seed=0, legacy=False):
    """A generator saved the way the reference implementation published them: a bare state_dict, here with the
    stale InstanceNorm statistics that PyTorch < 0.4 wrote."""
    torch.manual_seed(seed)
    net = build_generator("resnet6", 4).eval()
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    state = dict(net.state_dict())
    for prefix in ("model.2", "model.5", "model.10.conv_block.2", "model.15.conv_block.6"):
        state[f"{prefix}.running_mean"] = torch.zeros(8)
        state[f"{prefix}.running_var"] = torch.ones(8)
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return net


def test_user_store_location(monkeypatch, tmp_path):
    monkeypatch.delenv("CYCLETRANS_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert styles.user_store() == tmp_path / "xdg" / "cycletrans" / "models"
    monkeypatch.setenv("CYCLETRANS_HOME", str(tmp_path / "mine"))
    assert styles.user_store() == tmp_path / "mine"


def test_search_order_user_then_shipped(stores):
    user, shipped = stores
    fake_style(shipped, "default")
    fake_style(shipped, "ink")
    fake_style(user, "ink", card={"name": "ink", "domains": {"source": "photo", "target": "ink"}})
    assert styles.resolve_style(None, None).folder == shipped / "default"
    ink = styles.resolve_style("ink", None)
    assert ink.folder == user / "ink" and ink.origin == "user" and ink.domains["target"] == "ink"
    assert [(s.name, s.origin) for s in styles.installed_styles()] == [("ink", "user"), ("default", "shipped")]


def test_model_option_wins(stores, tmp_path):
    user, _ = stores
    fake_style(user, "default")
    bare = tmp_path / "mine.onnx"
    bare.write_bytes(b"onnx")
    style = styles.resolve_style("default", bare)
    assert style.origin == "file" and style.model_path() == bare and style.model_path(fp16=True) == bare
    with pytest.raises(ModelError, match="one direction"):
        style.model_path(reverse=True)
    folder = fake_style(tmp_path / "elsewhere", "ink", reverse=True)
    assert styles.resolve_style(None, folder).model_path(reverse=True) == folder / "reverse.onnx"
    with pytest.raises(ModelError, match="no such model"):
        styles.resolve_style(None, tmp_path / "missing.onnx")
    pth = tmp_path / "latest_net_G.pth"
    pth.write_bytes(b"x")
    with pytest.raises(ModelError, match="cycletrans models import"):
        styles.resolve_style(None, pth)


def test_model_path_fp16_falls_back_and_reverse_must_exist(stores):
    user, _ = stores
    fake_style(user, "both", reverse=True, fp16=True)
    fake_style(user, "plain")
    both, plain = styles.resolve_style("both", None), styles.resolve_style("plain", None)
    assert both.model_path(reverse=True, fp16=True) == user / "both" / "reverse.fp16.onnx"
    assert plain.model_path(fp16=True) == user / "plain" / "forward.onnx"
    assert plain.directions == ["forward"]
    with pytest.raises(ModelError, match="no reverse model"):
        plain.model_path(reverse=True)


def test_aliases_name_the_target_look(stores):
    user, _ = stores
    assert styles.canonical_name("winter") == "summer2winter_yosemite"
    assert styles.canonical_name("Monet") == "style_monet"
    assert styles.canonical_name("photo") == "monet2photo"
    assert set(styles.ALIASES.values()) <= set(styles.PUBLISHED)
    for alias, full in {"summer": "winter2summer_yosemite", "zebra": "horse2zebra", "horse": "zebra2horse",
                        "vangogh": "style_vangogh", "map": "sat2map", "satellite": "map2sat",
                        "dslr": "iphone2dslr_flower"}.items():
        assert styles.canonical_name(alias) == full
        assert styles.PUBLISHED[full][1] == alias  # the alias is the target domain
    assert styles.canonical_name("my-own-style") == "my-own-style"
    fake_style(user, "summer2winter_yosemite")
    assert styles.resolve_style("winter", None).folder == user / "summer2winter_yosemite"


def test_known_but_missing_style_names_the_pull_command():
    with pytest.raises(ModelError) as err:
        styles.resolve_style("winter", None)
    assert "cycletrans models pull summer2winter_yosemite" in str(err.value)
    with pytest.raises(ModelError, match="cycletrans models pull horse2zebra"):
        styles.resolve_style("horse2zebra", None)


def test_unknown_style_lists_what_exists(stores):
    user, shipped = stores
    fake_style(user, "ink")
    fake_style(shipped, "default")
    with pytest.raises(ModelError) as err:
        styles.resolve_style("nope", None)
    message = str(err.value)
    assert "unknown style 'nope'" in message and "ink" in message and "default" in message
    assert "winter" in message and "\n" not in message


def test_no_default_style_says_what_to_do(stores):
    with pytest.raises(ModelError, match="--style NAME or --model PATH"):
        styles.resolve_style(None, None)


def test_remove_only_touches_the_user_store(stores):
    user, shipped = stores
    fake_style(user, "ink")
    fake_style(user, "horse2zebra")
    fake_style(shipped, "default")
    assert styles.remove("ink") == user / "ink"
    assert not (user / "ink").exists()
    styles.remove("zebra")  # alias
    assert list(user.iterdir()) == []
    with pytest.raises(InputError, match="shipped"):
        styles.remove("default")
    assert (shipped / "default" / "forward.onnx").exists()
    with pytest.raises(InputError, match="no style"):
        styles.remove("../shipped/default")


def test_import_reference_generator_with_stale_keys(stores, tmp_path):
    user, _ = stores
    source = tmp_path / "latest_net_G.pth"
    net = reference_generator_file(source, legacy=True)  # old (pre-zip) serialisation, as the published files
    before = source.read_bytes()
    result = styles.import_pth(source, "horse2zebra", fp16=False)
    assert source.read_bytes() == before  # input untouched
    assert result.folder == user / "horse2zebra"
    card = json.loads((result.folder / "card.json").read_text())
    assert card["domains"] == {"source": "horse", "target": "zebra"} and card["directions"] == ["forward"]
    assert card["provenance"]["kind"] == "reference-generator"
    assert len(card["provenance"]["sha256"]) == 64 and card["train_size"] == 256
    assert card["architecture"] == {"netG": "resnet6", "ngf": 4, "n_blocks": 6}

    style = styles.resolve_style("zebra", None)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 100, 132)).astype(np.float32)
    got = ort.InferenceSession(str(style.model_path()), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.abs(got - expected).max() < 1e-4


def test_import_refuses_what_is_not_a_generator(stores, tmp_path):
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("hello")
    with pytest.raises(ModelError, match="not a readable PyTorch weights file"):
        styles.import_pth(not_torch, "x")
    discriminator = tmp_path / "latest_net_D.pth"
    torch.save({"model.0.weight": torch.zeros(64, 3, 4, 4)}, discriminator)
    with pytest.raises(ModelError, match="not a ResNet generator"):
        styles.import_pth(discriminator, "x")
    with pytest.raises(InputError, match="no such file"):
        styles.import_pth(tmp_path / "missing.pth", "x")
    with pytest.raises(InputError, match="not a usable style name"):
        styles.import_pth(discriminator, "../escape")
    assert not stores[0].exists() or list(stores[0].iterdir()) == []


class RunsAShellCommand:
    """What a malicious .pth can do when unpickled without weights_only: call os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(stores, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "latest_net_G.pth"
    torch.save({"model.1.weight": RunsAShellCommand(marker)}, evil)
    with pytest.raises(ModelError, match="refused"):
        styles.import_pth(evil, "evil")
    assert not marker.exists()
    # The same through the real command line, in a fresh process: exit code 2, one line, nothing ran.
    env = {**os.environ, "CYCLETRANS_HOME": str(stores[0])}
    proc = subprocess.run([sys.executable, "-m", "cycletrans", "models", "import", str(evil), "--name", "evil"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith("cycletrans: error:") and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not marker.exists()
    assert not (stores[0] / "evil").exists()
    # The file really is dangerous: loading it the unsafe way runs the command (a harmless touch here).
    torch.load(evil, weights_only=False)
    assert marker.exists()
