"""The paper's metrics on hand-made cases with known answers, and `cycletrans eval` on tiny ONNX models."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from cycletrans.errors import InputError
from cycletrans.evaluate import (PSNR_CAP, FolderEvaluation, Palette, cycle_error, find_palette_file,
                                 frechet_distance, image_metrics, kernel_inception_distance, l1, label_metrics,
                                 load_palette, looks_like_labels, palette_from_images, psnr, resolve_folders, ssim)
from cycletrans.media.images import list_images, read_rgb
from cycletrans.synthetic import SCENE_PALETTE, make_domains

RGB = Palette(("red", "green", "blue"), np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], np.uint8))


def class_image(classes: np.ndarray, palette: Palette = RGB, jitter: int = 0, seed: int = 0) -> np.ndarray:
    """A label image of a class-index map; `jitter` perturbs the colours (they must still map back)."""
    image = palette.colourize(classes).astype(np.int16)
    if jitter:
        image += np.random.default_rng(seed).integers(-jitter, jitter + 1, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ label metrics


def test_a_perfect_label_prediction_scores_one():
    classes = np.repeat(np.array([0, 1, 2, 1])[:, None], 6, axis=1)
    scores = label_metrics([class_image(classes, jitter=40)], [class_image(classes)], RGB)
    assert scores["pixel_accuracy"] == scores["class_accuracy"] == scores["class_iou"] == 1.0
    assert scores["per_class"]["green"] == {"accuracy": 1.0, "iou": 1.0, "pixels": 12}


def test_class_k_predicted_as_k_plus_1_for_half_its_pixels():
    """100 pixels: red 40, green 40, blue 20; half of the red pixels predicted green."""
    target = np.array([0] * 40 + [1] * 40 + [2] * 20).reshape(10, 10)
    pred = target.copy()
    pred.ravel()[:20] = 1
    scores = label_metrics([class_image(pred, jitter=30, seed=1)], [class_image(target)], RGB)
    assert scores["pixel_accuracy"] == pytest.approx(0.8)
    assert scores["class_accuracy"] == pytest.approx((0.5 + 1 + 1) / 3)
    iou = {"red": 20 / 40, "green": 40 / 60, "blue": 1.0}  # green: 40 right, 20 wrongly claimed
    assert scores["class_iou"] == pytest.approx(sum(iou.values()) / 3)
    assert {k: v["iou"] for k, v in scores["per_class"].items()} == pytest.approx(iou)


def test_a_class_only_predicted_counts_in_iou_but_not_in_class_accuracy():
    target = np.zeros((4, 4), int)  # all red
    pred = target.copy()
    pred[0] = 2  # a row of blue, a class the targets never have
    scores = label_metrics([class_image(pred)], [class_image(target)], RGB)
    assert scores["class_accuracy"] == pytest.approx(12 / 16)  # red only; blue has no target pixels
    assert scores["class_iou"] == pytest.approx((12 / 16 + 0.0) / 2)  # red, and blue with IoU 0; green left out
    assert scores["per_class"]["green"] == {"accuracy": None, "iou": None, "pixels": 0}


def test_scores_sum_over_the_whole_set_not_per_image():
    a = np.zeros((2, 2), int)
    b = np.ones((2, 8), int)
    scores = label_metrics([class_image(a), class_image(np.zeros((2, 8), int))], [class_image(a), class_image(b)], RGB)
    assert scores["pixel_accuracy"] == pytest.approx(4 / 20)  # per image it would be (1 + 0) / 2


def test_label_metrics_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        label_metrics([np.zeros((4, 4, 3), np.uint8)], [np.zeros((4, 5, 3), np.uint8)], RGB)
    with pytest.raises(ValueError, match="uint8"):
        label_metrics([np.zeros((4, 4, 3), np.float32)], [np.zeros((4, 4, 3), np.uint8)], RGB)


# ------------------------------------------------------------------------------------------------ image metrics


def test_psnr_is_capped_for_identical_images_and_exact_for_a_known_error():
    image = np.random.default_rng(0).integers(20, 200, (16, 16, 3), dtype=np.uint8)
    assert psnr(image, image) == PSNR_CAP == 100.0
    assert psnr(image + 10, image) == pytest.approx(10 * math.log10(255 ** 2 / 100))  # MSE 100: 28.13 dB
    assert l1(image + 10, image) == pytest.approx(10 / 255)


def test_ssim_is_one_for_an_image_with_itself_and_drops_with_noise():
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 255, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = [np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8) for sigma in (5, 20, 60)]
    values = [ssim(n, image) for n in noisy]
    assert 1.0 > values[0] > values[1] > values[2] and values[2] < 0.5


def test_ssim_of_flat_images_matches_the_formula():
    """For constant images a and b only the luminance term remains: (2ab + C1) / (a² + b² + C1)."""
    a, b, c1 = 100.0, 140.0, (0.01 * 255) ** 2
    x, y = np.full((20, 20, 3), a, np.uint8), np.full((20, 20, 3), b, np.uint8)
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_ssim_agrees_with_the_reference_implementation():
    """The value scikit-image 0.26 gives for this pair (structural_similarity with gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2): Wang et al.'s settings."""
    y, x, c = np.mgrid[0:40, 0:48, 0:3]
    a = ((np.sin(x / 5.0 + c) * np.cos(y / 7.0) + 1) * 120).astype(np.uint8)
    b = np.clip(a.astype(int) + (x * y + 3 * c) % 41 - 20, 0, 255).astype(np.uint8)
    assert ssim(b, a) == pytest.approx(0.8440783249636974, abs=1e-9)


def test_metrics_take_a_batch_array_as_the_trainer_has_it():
    batch = np.random.default_rng(0).integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    assert image_metrics(batch, batch)["psnr"] == PSNR_CAP and cycle_error(batch, batch) == 0.0
    labels = RGB.colourize(np.arange(3 * 64).reshape(3, 8, 8) % 3)
    assert label_metrics(labels, labels, RGB)["class_iou"] == 1.0


def test_image_metrics_average_over_pairs():
    image = np.full((12, 12, 3), 100, np.uint8)
    scores = image_metrics([image, image + 10], [image, image])
    assert scores["psnr"] == pytest.approx((100 + 10 * math.log10(255 ** 2 / 100)) / 2)
    assert scores["l1"] == pytest.approx(5 / 255)
    assert scores["images"] == 2


def test_cycle_error_is_zero_for_identity_and_the_mean_l1_otherwise():
    images = [np.random.default_rng(i).integers(0, 200, (8, 8, 3), dtype=np.uint8) for i in range(3)]
    assert cycle_error(images, [im.copy() for im in images]) == 0.0
    assert cycle_error(images, [im + 51 for im in images]) == pytest.approx(0.2)


# ------------------------------------------------------------------------------------------------------ FID/KID


def test_fid_of_a_shifted_set_is_the_squared_shift_and_of_a_scaled_one_known_too():
    x = np.random.default_rng(0).normal(size=(300, 5))
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 0, 3.0])
    assert frechet_distance(x, x + shift) == pytest.approx((shift ** 2).sum())  # same covariance
    # 2x: means differ by mean(x), covariances Σ and 4Σ: Tr(Σ + 4Σ − 2·2Σ) = Tr Σ
    expected = (x.mean(0) ** 2).sum() + np.trace(np.cov(x, rowvar=False))
    assert frechet_distance(x, 2 * x) == pytest.approx(expected)
    with pytest.raises(ValueError):
        frechet_distance(x[:1], x)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    alike = kernel_inception_distance(a, b, subset_size=100, subsets=20)
    apart = kernel_inception_distance(a, b + 1.5, subset_size=100, subsets=20)
    assert abs(alike) < 0.02 * apart and apart > 1


# ----------------------------------------------------------------------------------------------------- palettes


def test_palette_files_in_their_accepted_forms(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(RGB.to_json()))
    (tmp_path / "b.json").write_text(json.dumps({"red": [255, 0, 0], "green": [0, 255, 0]}))
    (tmp_path / "c.json").write_text(json.dumps([[1, 2, 3]]))
    assert load_palette(tmp_path / "a.json").names == ("red", "green", "blue")
    assert load_palette(tmp_path / "b.json").colours.tolist() == [[255, 0, 0], [0, 255, 0]]
    assert load_palette(tmp_path / "c.json").names == ("class_0",)
    (tmp_path / "bad.json").write_text(json.dumps({"classes": [{"name": "x", "color": [300, 0, 0]}]}))
    for bad in ("bad.json", "missing.json"):
        with pytest.raises(InputError):
            load_palette(tmp_path / bad)


def test_palette_found_beside_the_test_folders_or_made_from_the_targets(tmp_path):
    (tmp_path / "testB").mkdir()
    assert find_palette_file(tmp_path / "testB") is None
    (tmp_path / "palette.json").write_text(json.dumps(RGB.to_json()))
    assert find_palette_file(tmp_path / "testB") == tmp_path / "palette.json"
    found = palette_from_images([class_image(np.array([[0, 2], [2, 2]]))])
    assert found.colours.tolist() == [[0, 0, 255], [255, 0, 0]]
    with pytest.raises(InputError, match="not label maps"):
        palette_from_images([np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)])


def test_looks_like_labels():
    assert looks_like_labels([class_image(np.array([[0, 1], [2, 0]]))])
    assert not looks_like_labels([np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)])


# ------------------------------------------------------------------------------------ whole folders, no engine


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "labels2scenes"
    make_domains(out, "labels2scenes", size=32, train=0, test=6, seed=2)
    return out


def identity(frames):
    return [f.copy() for f in frames]


def test_folder_evaluation_of_a_perfect_translation(dataset):
    labels = FolderEvaluation(dataset / "testA", dataset / "testA")  # labels → labels: auto picks "labels"
    assert labels.task == "labels" and labels.palette_source == str(dataset / "palette.json")
    report = labels.run(identity, identity)
    assert report["metrics"]["pixel_accuracy"] == 1.0 and report["metrics"]["class_iou"] == 1.0
    assert report["cycle"] == {"input": {"l1": 0.0, "images": 6}, "target": {"l1": 0.0, "images": 6}}
    images = FolderEvaluation(dataset / "testB", dataset / "testB").run(identity)
    assert images["task"] == "image" and images["metrics"]["psnr"] == PSNR_CAP and images["metrics"]["ssim"] == 1.0


def test_folder_evaluation_scores_labels_to_scenes_with_the_fcn_stand_in(dataset):
    plan = FolderEvaluation(dataset / "testA", dataset / "testB")
    assert plan.task == "image" and plan.segmenter is not None
    truth = {read_rgb(a).tobytes(): read_rgb(b) for a, b in plan.pairs}  # a perfect G: look each answer up
    report = plan.run(lambda frames: [truth[f.tobytes()] for f in frames])
    metrics = report["metrics"]
    assert metrics["psnr"] == PSNR_CAP
    assert metrics["fcn_score"] == metrics["fcn_score_real"] and metrics["fcn_score"]["pixel_accuracy"] > 0.85
    flat = plan.run(lambda frames: [np.full_like(f, 128) for f in frames])["metrics"]
    assert flat["fcn_score"]["class_iou"] < 0.5 * metrics["fcn_score"]["class_iou"]


def test_folder_evaluation_refuses_unpaired_folders_and_skips_bad_files(tmp_path):
    for folder in ("a", "b"):
        for i in range(3):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / folder / f"{i}.png")
    (tmp_path / "b" / "9.png").write_bytes(b"png?")
    with pytest.raises(InputError, match="do not pair up"):
        FolderEvaluation(tmp_path / "a", tmp_path / "b")
    (tmp_path / "a" / "9.png").write_bytes(b"not a png either")
    report = FolderEvaluation(tmp_path / "a", tmp_path / "b", task="image").run(identity)
    assert report["metrics"]["images"] == 3 and report["metrics"]["psnr"] == PSNR_CAP
    assert [s["file"] for s in report["skipped"]] == [str(tmp_path / "a" / "9.png")]
    with pytest.raises(InputError, match="no such folder"):
        resolve_folders(tmp_path, None, None)  # a data folder without testA/ testB/
    with pytest.raises(InputError, match="--task"):
        FolderEvaluation(tmp_path / "a", tmp_path / "b", task="pixels")
    with pytest.raises(InputError, match="no such palette"):
        FolderEvaluation(tmp_path / "a", tmp_path / "b", palette=tmp_path / "palette.json")


# ------------------------------------------------------------------------------------------ `cycletrans eval`


def write_model(path, constant_rgb=None):
    """A generator-shaped ONNX model: identity, or every pixel one colour (input × 0 + colour)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])
    if constant_rgb is None:
        nodes, weights = [helper.make_node("Identity", ["input"], ["output"])], []
    else:
        colour = (np.asarray(constant_rgb, np.float32) / 127.5 - 1).reshape(1, 3, 1, 1)
        weights = [numpy_helper.from_array(np.zeros((1, 3, 1, 1), np.float32), "zero"),
                   numpy_helper.from_array(colour, "colour")]
        nodes = [helper.make_node("Mul", ["input", "zero"], ["blank"]),
                 helper.make_node("Add", ["blank", "colour"], ["output"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], weights),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_mean_colour_extractor(path):
    """A stand-in 'Inception': fixed 16×16 input, one feature per channel (its mean), shaped N×3×1×1."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 16])
    y = helper.make_tensor_value_info("pool", TensorProto.FLOAT, ["N", 3, 1, 1])
    model = helper.make_model(helper.make_graph([helper.make_node("GlobalAveragePool", ["images"], ["pool"])],
                                                "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def identity_style(tmp_path_factory):
    folder = tmp_path_factory.mktemp("styles") / "same"
    write_model(folder / "forward.onnx")
    write_model(folder / "reverse.onnx")
    return folder


def test_eval_cli_scores_a_perfect_style(cli, dataset, identity_style):
    pytest.importorskip("onnxruntime")
    result = cli("eval", "--model", identity_style, "--input", dataset / "testA", "--target", dataset / "testA",
                 "--json", "--device", "cpu")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["task"] == "labels" and report["metrics"]["class_iou"] == 1.0
    assert report["cycle"]["input"]["l1"] == 0.0 and report["cycle"]["target"]["images"] == 6
    assert "per-pixel accuracy" in result.err and "FID/KID: skipped" in result.err

    reverse = cli("eval", dataset, "--model", identity_style, "--reverse", "--task", "image", "--json", "-q")
    assert reverse.code == 0 and reverse.err == ""
    report = json.loads(reverse.out)
    assert report["direction"] == "reverse" and report["input"] == str(dataset / "testB")
    assert report["metrics"]["images"] == 6 and 0 < report["metrics"]["l1"]  # scenes → themselves ≠ labels


def test_eval_cli_scores_a_constant_prediction_as_the_formulas_say(cli, dataset, tmp_path):
    """A model painting everything sky: pixel accuracy is the sky fraction; of the classes present, only sky
    is right, and its IoU is the sky fraction too."""
    pytest.importorskip("onnxruntime")
    model = write_model(tmp_path / "sky.onnx", constant_rgb=SCENE_PALETTE.colours[0])
    result = cli("eval", "--model", model, "--input", dataset / "testB", "--target", dataset / "testA",
                 "--task", "labels", "--json", "-q")
    assert result.code == 0, result.err
    classes = np.concatenate([SCENE_PALETTE.classify(read_rgb(p)).ravel() for p in list_images(dataset / "testA")])
    sky, present = (classes == 0).mean(), len(np.unique(classes))
    metrics = json.loads(result.out)["metrics"]
    assert metrics["pixel_accuracy"] == pytest.approx(sky)
    assert metrics["class_accuracy"] == pytest.approx(1 / present)
    assert metrics["class_iou"] == pytest.approx(sky / present)
    assert json.loads(result.out)["cycle"] == {}  # one direction only: no cycle errors


def test_eval_cli_fid_and_kid_with_a_local_feature_extractor(cli, dataset, identity_style, tmp_path):
    pytest.importorskip("onnxruntime")
    extractor = write_mean_colour_extractor(tmp_path / "features.onnx")
    same = cli("eval", "--model", identity_style, "--input", dataset / "testB", "--target", dataset / "testB",
               "--inception", extractor, "--json", "-q")
    assert same.code == 0, same.err
    metrics = json.loads(same.out)["metrics"]
    assert metrics["fid"] == pytest.approx(0, abs=1e-6)
    mean_colour = lambda folder: np.array([read_rgb(p).astype(float).mean((0, 1)) / 255  # noqa: E731
                                           for p in list_images(folder)])
    other = cli("eval", dataset, "--model", identity_style, "--inception", extractor, "--json", "-q")
    metrics = json.loads(other.out)["metrics"]  # labels vs scenes: their mean colours differ
    expected = frechet_distance(mean_colour(dataset / "testA"), mean_colour(dataset / "testB"))
    assert metrics["fid"] == pytest.approx(expected, rel=1e-3) and metrics["fid"] > 0.01 and metrics["kid"] > 0
    missing = cli("eval", dataset, "--model", identity_style, "--inception", tmp_path / "inception.onnx")
    assert missing.code == 2 and "no such feature extractor" in missing.err
    not_onnx = tmp_path / "junk.onnx"
    not_onnx.write_bytes(b"\x00junk")
    assert cli("eval", dataset, "--model", identity_style, "--inception", not_onnx).code == 2


def test_eval_cli_exit_codes(cli, dataset, identity_style, tmp_path):
    pytest.importorskip("onnxruntime")
    missing = cli("eval", tmp_path / "nothing", "--model", identity_style)
    assert missing.code == 2 and "no such folder" in missing.err and "Traceback" not in missing.err
    for folder in ("testA", "testB"):
        (tmp_path / "ds" / folder).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(tmp_path / "ds" / folder / f"{i}.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "ds" / "testA" / "extra.png")
    mismatched = cli("eval", tmp_path / "ds", "--model", identity_style)
    assert mismatched.code == 2 and "do not pair up" in mismatched.err
    (tmp_path / "ds" / "testB" / "extra.png").write_bytes(b"broken")
    partial = cli("eval", tmp_path / "ds", "--model", identity_style, "--json", "-q")
    assert partial.code == 1  # the broken pair skipped and listed, the rest scored
    report = json.loads(partial.out)
    assert report["metrics"]["images"] == 2 and len(report["skipped"]) == 1
    no_model = cli("eval", dataset, "--model", tmp_path / "none.onnx")
    assert no_model.code == 2 and "no such model" in no_model.err


def test_eval_cli_on_unpaired_images_measures_the_cycle_only(cli, dataset, identity_style, tmp_path):
    pytest.importorskip("onnxruntime")
    result = cli("eval", "--model", identity_style, "--input", dataset / "testB", "--json", "-q")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["metrics"] == {} and report["cycle"] == {"input": {"l1": 0.0, "images": 6}}
    one_way = write_model(tmp_path / "one_way.onnx")
    refused = cli("eval", "--model", one_way, "--input", dataset / "testB")
    assert refused.code == 2 and "nothing to evaluate" in refused.err


def test_eval_cli_on_a_style_exported_from_tiny_generators(cli, dataset, tmp_path, monkeypatch):
    """The whole path: torch generators → export → the user's store → `eval --style NAME` through the engine."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from cycletrans.export import export_style
    from cycletrans.nets import build_generator

    monkeypatch.setenv("CYCLETRANS_HOME", str(tmp_path / "store"))
    torch.manual_seed(0)
    export_style({"forward": build_generator("resnet6", 4)}, "tiny", domains=("labels", "scenes"), train_size=32,
                 provenance={"kind": "test"}, fp16=False)  # one direction: exports are slow on a CPU
    result = cli("eval", dataset, "--style", "tiny", "--json", "-q")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["style"] == "tiny" and report["task"] == "image" and report["metrics"]["images"] == 6
    assert 0 < report["metrics"]["l1"] < 1 and report["metrics"]["psnr"] < 30  # untrained: far from the scenes
    assert 0 <= report["metrics"]["fcn_score"]["pixel_accuracy"] < report["metrics"]["fcn_score_real"]["pixel_accuracy"]
    assert report["cycle"] == {}  # no reverse model, no cycle
    no_reverse = cli("eval", dataset, "--style", "tiny", "--reverse")
    assert no_reverse.code == 2 and "no reverse model" in no_reverse.err
