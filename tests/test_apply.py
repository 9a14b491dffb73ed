"""`cycletrans apply` end to end on a tiny style: folders, formats, alpha, stdin, JSON, and never touching inputs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_image
from cycletrans.engine import cuda_gpu_count
from cycletrans.pipelines.images import Source, collect_sources, plan_outputs
from test_engine import build_tiny_style


@pytest.fixture(scope="module")
def style(tmp_path_factory):
    return build_tiny_style(tmp_path_factory)[0]


@pytest.fixture
def store(style, monkeypatch):
    """`--style tiny` resolves through $CYCLETRANS_HOME."""
    monkeypatch.setenv("CYCLETRANS_HOME", str(style.parent))
    return style.parent


def make_mixed_folder(root: Path) -> Path:
    """Nested folders, png/jpg/webp, RGBA, grayscale, 16-bit, EXIF-rotated, a corrupt png and a text file."""
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(synthetic_image((40, 56), 1)).save(root / "a.png")
    Image.fromarray(synthetic_image((40, 56), 2)).save(root / "a.jpg", quality=95)
    Image.fromarray(synthetic_image((36, 44), 3)).save(root / "sub" / "c.webp")
    alpha = np.tile(np.linspace(0, 255, 45).astype(np.uint8), (33, 1))
    Image.fromarray(np.dstack([synthetic_image((33, 45), 4), alpha])).save(root / "sub" / "rgba.png")
    Image.fromarray(synthetic_image((32, 48), 5)[:, :, 0]).save(root / "sub" / "gray.png")
    Image.fromarray((np.arange(40 * 48).reshape(40, 48) * 30).astype(np.uint16)).save(root / "sub" / "deep16.png")
    rotated = Image.fromarray(synthetic_image((40, 64), 6))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(root / "sub" / "deeper" / "rot.jpg", exif=exif)
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (root / "notes.txt").write_text("not an image")
    return root


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file()}


def test_folder_tree_is_mirrored_and_bad_items_reported(cli, store, tmp_path):
    src = make_mixed_folder(tmp_path / "in")
    bad_text = tmp_path / "readme.txt"
    bad_text.write_text("hello")
    before = digests(src)
    result = cli("apply", src, bad_text, "--style", "tiny", "-o", tmp_path / "out", "--json")
    assert result.code == 1
    lines = [json.loads(line) for line in result.out.splitlines()]
    status = {Path(line["input"]).name: line["status"] for line in lines}
    assert status == {"a.png": "ok", "a.jpg": "ok", "c.webp": "ok", "rgba.png": "ok", "gray.png": "ok",
                      "deep16.png": "ok", "rot.jpg": "ok", "broken.png": "failed", "readme.txt": "failed"}
    assert "broken.png" in result.err and "readme.txt" in result.err and "2 of 9" in result.err
    assert all(set(line) >= {"input", "output", "size", "ms", "status", "error"} for line in lines)

    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "a.png", "sub/c.webp", "sub/deep16.png", "sub/deeper/rot.jpg", "sub/gray.png",
                       "sub/rgba.png"]
    with Image.open(out / "sub" / "rgba.png") as rgba:
        assert rgba.mode == "RGBA" and rgba.size == (45, 33)
        kept = np.asarray(rgba)[:, :, 3]
    assert np.array_equal(kept, np.asarray(Image.open(src / "sub" / "rgba.png"))[:, :, 3])
    with Image.open(out / "sub" / "deeper" / "rot.jpg") as rot:
        assert rot.size == (40, 64)  # stored 64×40 with orientation 6: turned upright
    with Image.open(out / "sub" / "deep16.png") as deep, Image.open(out / "sub" / "gray.png") as gray:
        assert deep.mode == "RGB" and deep.size == (48, 40) and gray.mode == "RGB"
    assert digests(src) == before


def test_output_into_the_input_folder_never_touches_inputs(cli, store, tmp_path):
    src = make_mixed_folder(tmp_path / "in")
    before = digests(src)
    result = cli("apply", src, "--style", "tiny", "-o", src, "--format", "png", "-q")
    assert result.code == 1  # the broken png
    after = digests(src)
    assert {k: after[k] for k in before} == before
    new = sorted(set(after) - set(before))
    assert new == ["a.jpg.tiny.png", "a.tiny.png", "sub/c.tiny.png", "sub/deep16.tiny.png",
                   "sub/deeper/rot.tiny.png", "sub/gray.tiny.png", "sub/rgba.tiny.png"]
    # A second run does not translate its own outputs again.
    again = cli("apply", src, "--style", "tiny", "-o", src, "--format", "png", "-q", "--json")
    assert len(again.out.splitlines()) == 8 and set(digests(src)) == set(after)


def test_default_output_beside_the_input_and_reverse(cli, store, tmp_path):
    image = tmp_path / "photo.jpg"
    Image.fromarray(synthetic_image((40, 40), 7)).save(image)
    assert cli("apply", image, "--style", "tiny", "-q").code == 0
    assert cli("apply", image, "--style", "tiny", "--reverse", "-q").code == 0
    forward, reverse = tmp_path / "photo.tiny.jpg", tmp_path / "photo.tiny-reverse.jpg"
    assert forward.is_file() and reverse.is_file()
    assert not np.array_equal(np.asarray(Image.open(forward)), np.asarray(Image.open(reverse)))


def test_format_collisions_and_single_file_output(cli, store, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(synthetic_image((32, 32), 1)).save(src / "a.png")
    Image.fromarray(synthetic_image((32, 32), 2)).save(src / "a.jpg")
    assert cli("apply", src, "--style", "tiny", "-o", tmp_path / "out", "--format", "png", "-q").code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.png"]
    assert cli("apply", src / "a.png", "--style", "tiny", "-o", tmp_path / "one.webp", "-q").code == 0
    with Image.open(tmp_path / "one.webp") as image:
        assert image.format == "WEBP" and image.size == (32, 32)
    assert cli("apply", src / "a.png", "--style", "tiny", "-o", src / "a.png").code == 2  # the input itself
    gif = cli("apply", src / "a.png", "--style", "tiny", "-o", tmp_path / "one.gif")  # read, but never written
    assert gif.code == 2 and "cannot write .gif" in gif.err and not (tmp_path / "one.gif").exists()
    (tmp_path / "notes.txt").write_text("keep me")
    onto_a_file = cli("apply", src, "--style", "tiny", "-o", tmp_path / "notes.txt")  # not a folder to write into
    assert onto_a_file.code == 2 and "existing file" in onto_a_file.err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_skip_existing_and_max_size(cli, store, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(synthetic_image((60, 120), 1)).save(src / "wide.png")
    first = cli("apply", src, "--style", "tiny", "-o", tmp_path / "out", "--max-size", "48", "--json")
    assert first.code == 0 and json.loads(first.out)["size"] == [48, 24]
    output = tmp_path / "out" / "wide.png"
    stamp = output.stat().st_mtime_ns
    second = cli("apply", src, "--style", "tiny", "-o", tmp_path / "out", "--skip-existing", "--json")
    assert second.code == 0 and json.loads(second.out)["status"] == "skipped"
    assert output.stat().st_mtime_ns == stamp


def test_globs_and_batches(cli, store, tmp_path):
    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(synthetic_image((24, 32), i)).save(src / "x" / f"{i}.png")
    Image.fromarray(synthetic_image((24, 32), 9)).save(src / "x" / "skip.jpg")
    result = cli("apply", f"{src}/**/*.png", "--style", "tiny", "-o", tmp_path / "out", "--batch", "3", "--json")
    assert result.code == 0
    assert [Path(json.loads(line)["output"]).name for line in result.out.splitlines()] == [f"{i}.png" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "out" / "x").iterdir()) == [f"{i}.png" for i in range(5)]


def test_paths_on_stdin(cli, store, tmp_path, monkeypatch):
    for name in ("a", "b"):
        Image.fromarray(synthetic_image((24, 24), ord(name))).save(tmp_path / f"{name}.png")
    listing = f"{tmp_path / 'a.png'}\n\n{tmp_path / 'b.png'}\n{tmp_path / 'missing.png'}\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(listing.encode())))
    result = cli("apply", "-", "--style", "tiny", "-o", tmp_path / "out", "--json")
    assert result.code == 1 and "missing.png" in result.err
    lines = [json.loads(line) for line in result.out.splitlines()]
    assert [line["status"] for line in lines] == ["ok", "ok", "failed"]
    assert (tmp_path / "out" / "a.png").is_file() and (tmp_path / "out" / "b.png").is_file()

    # Relative paths (as `find .` prints them) are mirrored below the output folder.
    (tmp_path / "d").mkdir()
    Image.fromarray(synthetic_image((24, 24), 3)).save(tmp_path / "d" / "a.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"./a.png\n./d/a.png\n")))
    assert cli("apply", "-", "--style", "tiny", "-o", "mirror", "-q").code == 0
    assert (tmp_path / "mirror" / "a.png").is_file() and (tmp_path / "mirror" / "d" / "a.png").is_file()


def test_image_bytes_through_stdin_and_stdout(style, tmp_path):
    image = synthetic_image((30, 42), 3)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95)
    env = {**os.environ, "CYCLETRANS_HOME": str(style.parent)}
    done = subprocess.run([sys.executable, "-m", "cycletrans", "apply", "-", "--style", "tiny", "-o", "-", "-q"],
                          input=buffer.getvalue(), capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    with Image.open(io.BytesIO(done.stdout)) as out:
        assert out.format == "JPEG" and out.size == (42, 30)  # the input's format and size


def test_usage_errors_exit_2(cli, store, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli("apply", tmp_path / "empty", "--style", "tiny").code == 2
    assert cli("apply", tmp_path / "nope.png", "--style", "tiny").code == 2
    unknown = cli("apply", tmp_path / "empty", "--style", "no-such-style")
    assert unknown.code == 2 and "no-such-style" in unknown.err and "Traceback" not in unknown.err
    assert cli("apply", tmp_path / "empty", "--style", "tiny", "--format", "gif").code == 2


@pytest.mark.skipif(cuda_gpu_count()[0] > 0, reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_exits_2(cli, store, tmp_path):
    Image.fromarray(synthetic_image((16, 16), 0)).save(tmp_path / "a.png")
    result = cli("apply", tmp_path / "a.png", "--style", "tiny", "--device", "cuda")
    assert result.code == 2 and "--device cuda" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "a.tiny.png").exists()


def test_a_broken_video_is_one_failed_item(cli, store, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(synthetic_image((24, 24), 1)).save(src / "a.png")
    (src / "clip.mp4").write_bytes(b"not a video at all")
    result = cli("apply", src, "--style", "tiny", "-o", tmp_path / "out", "--json")
    assert result.code == 1 and "clip.mp4" in result.err
    statuses = {Path(json.loads(line)["input"]).name: json.loads(line)["status"] for line in result.out.splitlines()}
    assert statuses == {"a.png": "ok", "clip.mp4": "failed"}


def test_planning_never_collides_and_never_targets_an_input(tmp_path):
    root = tmp_path / "in"
    sources = [Source(root / "a.jpg", "image", root), Source(root / "a.png", "image", root),
               Source(root / "a.JPG", "image", root), Source(root / "d" / "a.png", "image", root)]
    plan = plan_outputs(sources, tmp_path / "out", tag="s", fmt="png")
    targets = [str(dst.relative_to(tmp_path / "out")) for _, dst in plan]
    assert len({t.lower() for t in targets}) == 4 and targets[1] == "a.png" and targets[3] == "d/a.png"
    beside = plan_outputs(sources, None, tag="s")
    assert [dst.name for _, dst in beside][:2] == ["a.s.jpg", "a.s.png"]
    assert all(dst not in {s.path for s in sources} for _, dst in plan + beside)


def test_collect_skips_hidden_and_non_media(tmp_path):
    root = make_mixed_folder(tmp_path / "in")
    (root / ".hidden").mkdir()
    Image.fromarray(synthetic_image((8, 8), 0)).save(root / ".hidden" / "x.png")
    names = sorted(s.path.name for s in collect_sources([root]))
    assert names == ["a.jpg", "a.png", "broken.png", "c.webp", "deep16.png", "gray.png", "rgba.png", "rot.jpg"]
