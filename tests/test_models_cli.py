"""`cycletrans models ...` end to end: list/show/import/remove, and `pull` from a loopback HTTP server (no test
touches the internet), including resuming a partial download with an HTTP Range request."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cycletrans import styles
from cycletrans.errors import ModelError
from cycletrans.nets import build_generator
from cycletrans.train.checkpoint import save_checkpoint


def generator(seed):
    torch.manual_seed(seed)
    net = build_generator("resnet6", 4).eval()
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    return net


def reference_pth_bytes(net, tmp_path) -> bytes:
    """A published-style generator file: bare state_dict with stale InstanceNorm statistics."""
    state = dict(net.state_dict())
    state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(4), torch.ones(4)
    state["model.2.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "published.pth"
    torch.save(state, path)
    return path.read_bytes()


def translate(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


class ModelServer(ThreadingHTTPServer):
    """Serves `files` ({url path: bytes}); honours `Range: bytes=N-` when `ranges` is true; `cut_after` makes
    the next response stop early (as a dropped connection does). Every request's (path, Range) is recorded."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.cut_after: int | None = None
        self.requests: list[tuple[str, str | None]] = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/models"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server: ModelServer = self.server
        wanted = self.headers.get("Range")
        server.requests.append((self.path, wanted))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and server.ranges:
            start = int(match.group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.cut_after is not None:
            body, server.cut_after = body[:server.cut_after], None
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    srv = ModelServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CYCLETRANS_MODEL_URL", srv.url)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CYCLETRANS_HOME", str(tmp_path / "store"))
    monkeypatch.setattr(styles, "shipped_store", lambda: tmp_path / "shipped")
    return tmp_path / "store"


def test_pull_resumes_a_partial_download_and_imports(cli, server, store, tmp_path):
    net = generator(0)
    payload = reference_pth_bytes(net, tmp_path)
    server.files["/models/horse2zebra.pth"] = payload
    part = store / ".downloads" / "horse2zebra.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[:1000])  # an earlier, interrupted attempt

    result = cli("models", "pull", "zebra", "--no-fp16")  # by alias
    assert result.code == 0, result.err
    assert "downloading" in result.err
    assert server.requests == [("/models/horse2zebra.pth", "bytes=1000-")]
    folder = store / "horse2zebra"
    card = json.loads((folder / "card.json").read_text())
    assert card["provenance"]["url"] == f"{server.url}/horse2zebra.pth"
    assert card["domains"] == {"source": "horse", "target": "zebra"}
    assert not part.exists() and not (store / ".downloads" / "horse2zebra.pth").exists()

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 100, 132)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert np.abs(translate(folder / "forward.onnx", x) - expected).max() < 1e-4

    again = cli("models", "pull", "horse2zebra")
    assert again.code == 2 and "already installed" in again.err and "downloading" not in again.err
    assert len(server.requests) == 1  # refused before any download


def test_download_survives_a_dropped_connection_and_a_server_without_ranges(server, store, tmp_path):
    payload = bytes(range(256)) * 400
    server.files["/models/x.pth"] = payload
    target = tmp_path / "dl" / "x.pth"
    server.cut_after = 30_000
    with pytest.raises(ModelError, match="run the same command again to resume"):
        styles.download(f"{server.url}/x.pth", target)
    assert not target.exists()
    assert (tmp_path / "dl" / "x.pth.part").stat().st_size == 30_000

    seen = []
    styles.download(f"{server.url}/x.pth", target, progress=lambda done, total: seen.append((done, total)))
    assert target.read_bytes() == payload
    assert server.requests[-1] == ("/models/x.pth", "bytes=30000-")
    assert seen[0] == (30_000, len(payload)) and seen[-1] == (len(payload), len(payload))

    server.ranges = False  # a server that ignores Range sends everything: the partial file is started over
    (tmp_path / "dl" / "y.pth.part").write_bytes(b"garbage that must not stay at the front")
    server.files["/models/y.pth"] = payload
    styles.download(f"{server.url}/y.pth", tmp_path / "dl" / "y.pth")
    assert (tmp_path / "dl" / "y.pth").read_bytes() == payload


def test_pull_errors(cli, server, store):
    missing = cli("models", "pull", "apple2orange")
    assert missing.code == 2 and "HTTP 404" in missing.err and "Traceback" not in missing.err
    unknown = cli("models", "pull", "my-thing")
    assert unknown.code == 2 and "not a published model" in unknown.err
    assert "downloading" not in unknown.err  # refused before, not after, saying it downloads
    assert [path for path, _ in server.requests] == ["/models/apple2orange.pth"]
    assert not (store / "apple2orange").exists()

    server.files["/models/orange2apple.pth"] = b"<html>a captive portal page, not weights</html>"
    garbage = cli("models", "pull", "apple")
    assert garbage.code == 2 and "not a readable PyTorch weights file" in garbage.err
    assert list((store / ".downloads").iterdir()) == []  # the next pull starts afresh
    assert not (store / "orange2apple").exists()


def test_import_list_show_remove(cli, store, tmp_path):
    torch.manual_seed(0)
    G, F = generator(1), generator(2)
    run = tmp_path / "runs" / "ink"
    checkpoint = save_checkpoint(run, {"step": 3, "epoch": 1, "nets": {"G": G.state_dict(), "F": F.state_dict()},
                                       "config": {"data_a": "/d/photos", "data_b": "/d/ink", "crop_size": 32}})
    imported = cli("models", "import", checkpoint, "--name", "ink", "--no-fp16", "-q")
    assert imported.code == 0, imported.err
    assert sorted(p.name for p in (store / "ink").iterdir()) == ["card.json", "forward.onnx", "reverse.onnx"]

    listed = cli("models", "list", "--json")
    assert listed.code == 0
    rows = json.loads(listed.out)
    assert [(r["name"], r["source"], r["target"], r["directions"]) for r in rows] == [
        ("ink", "photos", "ink", ["forward", "reverse"])]
    everything = json.loads(cli("models", "list", "--all", "--json").out)
    assert len(everything) == 1 + len(styles.PUBLISHED)
    assert {r["name"] for r in everything if not r["installed"]} == set(styles.PUBLISHED)
    table = cli("models", "list")
    assert table.code == 0 and "ink" in table.err and table.out == ""

    shown = cli("models", "show", "ink")
    assert shown.code == 0
    card = json.loads(shown.out)
    assert card["provenance"]["sha256"] and card["provenance"]["step"] == 3
    assert card["files"] == ["forward.onnx", "reverse.onnx"]

    assert cli("models", "show", "winter").code == 2
    removed = cli("models", "remove", "ink")
    assert removed.code == 0 and not (store / "ink").exists()
    assert json.loads(cli("models", "list", "--json").out) == []
    assert cli("models", "remove", "ink").code == 2


@pytest.mark.parametrize("case", ["missing", "folder", "text", "not_generator"])
def test_import_user_errors_exit_2(cli, store, tmp_path, case):
    path = tmp_path / "thing.pth"
    if case == "folder":
        path.mkdir()
    elif case == "text":
        path.write_text("not torch")
    elif case == "not_generator":
        torch.save({"weights": torch.zeros(3)}, path)
    result = cli("models", "import", path, "--name", "thing")
    assert result.code == 2
    assert "cycletrans: error:" in result.err and "Traceback" not in result.err
    assert not (store / "thing").exists()
