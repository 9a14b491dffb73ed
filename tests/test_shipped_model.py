"""The style that ships in models/default (made by tools/train_demo.py) and its sample inputs in models/samples."""

import json

import numpy as np
import pytest

from cycletrans.engine import Engine
from cycletrans.evaluate import image_metrics, label_metrics
from cycletrans.media.images import list_images, read_rgb
from cycletrans.styles import resolve_style, shipped_store
from cycletrans.synthetic import SCENE_PALETTE, sample, scene_segmenter

FOLDER = shipped_store() / "default"
SAMPLES = shipped_store() / "samples"
CARD_FIELDS = ("name", "domains", "directions", "provenance", "metrics", "train_size", "created",
               "cycletrans_version", "data", "training", "command")


@pytest.fixture(scope="module")
def card():
    return json.loads((FOLDER / "card.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def samples():
    paths = list_images(SAMPLES)
    assert 4 <= len(paths) <= 8
    return [read_rgb(p) for p in paths]


@pytest.fixture(scope="module")
def engines():
    style = resolve_style(None, None)  # no --style: the style named "default", found in the shipped store
    return (Engine.for_style(style, device="cpu", threads=1),
            Engine.for_style(style, reverse=True, device="cpu", threads=1))


def test_card_documents_data_training_and_metrics(card):
    for field in CARD_FIELDS:
        assert field in card, field
    assert card["name"] == "default"
    assert card["domains"] == {"source": "labels", "target": "scenes"}
    assert card["directions"] == ["forward", "reverse"]
    assert card["data"]["kind"] == "labels2scenes" and card["data"]["size"] == card["train_size"] == 64
    assert set(card["data"]["counts"]) == {"train", "test"} and isinstance(card["data"]["seed"], int)
    assert card["training"]["steps"] > 1000 and card["training"]["seconds"] > 0
    assert card["command"].startswith("python tools/train_demo.py")
    assert 0.5 < card["metrics"]["forward"]["fcn_score"]["pixel_accuracy"] <= 1.0
    assert 0.5 < card["metrics"]["reverse"]["pixel_accuracy"] <= 1.0


def test_style_files_are_small_and_complete():
    names = {p.name for p in FOLDER.iterdir()}
    assert {"card.json", "forward.onnx", "reverse.onnx", "forward.fp16.onnx", "reverse.fp16.onnx"} <= names
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) < 10_000_000


def test_default_style_is_the_shipped_one():
    style = resolve_style(None, None)
    assert style.name == "default" and style.origin == "shipped" and style.folder == FOLDER


def test_samples_are_the_held_out_label_maps_the_card_names(card, samples):
    """Provenance: each sample is testA/i of the data set the card describes, redrawn bit for bit."""
    for i, image in enumerate(samples):
        expected = sample("labels2scenes", "testA", i, card["data"]["size"], card["data"]["seed"])
        np.testing.assert_array_equal(image, expected)


def test_engine_translates_a_sample_to_the_same_size(engines, samples):
    forward, _ = engines
    assert forward.metadata["direction"] == "forward" and forward.metadata["source_domain"] == "labels"
    out = forward.translate_one(samples[0])
    assert out.dtype == np.uint8 and out.shape == samples[0].shape
    bigger = np.ascontiguousarray(np.kron(samples[0], np.ones((2, 2, 1), np.uint8))[:, :100])
    assert forward.translate_one(bigger).shape == bigger.shape


def test_outputs_on_the_samples_score_like_a_trained_model(card, engines, samples):
    """Thresholds an untrained generator fails by far (measured values beside each: 6 samples, CPU, fp32)."""
    forward, reverse = engines
    scenes = forward.translate(samples)
    segmenter = scene_segmenter(samples[0].shape[0])
    fcn = label_metrics([segmenter(s) for s in scenes], samples, SCENE_PALETTE)
    assert fcn["pixel_accuracy"] > 0.75  # shipped model 0.86; untrained 0.07-0.17, identity 0.29
    truths = [sample("labels2scenes", "testB", i, card["data"]["size"], card["data"]["seed"])
              for i in range(len(samples))]
    assert image_metrics(scenes, truths)["psnr"] > 16.0  # shipped 18.8 dB; untrained about 11-12
    labels = label_metrics(reverse.translate(truths), samples, SCENE_PALETTE)  # scene → labels
    assert labels["pixel_accuracy"] > 0.8  # shipped 0.93; untrained about 0.23


def test_readme_command_translates_the_samples(cli, samples, tmp_path):
    result = cli("apply", SAMPLES, "-o", tmp_path / "out", "--device", "cpu", "--quiet")
    assert result.code == 0, result.err
    written = sorted((tmp_path / "out").rglob("*.png"))
    assert [p.name for p in written] == [p.name for p in list_images(SAMPLES)]
    assert all(read_rgb(p).shape == samples[0].shape for p in written)
