"""The networks must match the reference implementation's checkpoints key for key (so published weights load)."""

import pytest
import torch

from cycletrans.nets import (build_discriminator, build_generator, clean_reference_state_dict, count_parameters,
                             generator_from_state_dict)

# Reference CycleGAN checkpoint layout (resnet9, ngf 64), as published: key -> shape.
RESNET9_SHAPES = {
    "model.1.weight": [64, 3, 7, 7], "model.1.bias": [64],
    "model.4.weight": [128, 64, 3, 3], "model.4.bias": [128],
    "model.7.weight": [256, 128, 3, 3], "model.7.bias": [256],
    **{f"model.{i}.conv_block.{j}.{p}": ([256, 256, 3, 3] if p == "weight" else [256])
       for i in range(10, 19) for j in (1, 5) for p in ("weight", "bias")},
    "model.19.weight": [256, 128, 3, 3], "model.19.bias": [128],  # ConvTranspose: [in, out, k, k]
    "model.22.weight": [128, 64, 3, 3], "model.22.bias": [64],
    "model.26.weight": [3, 64, 7, 7], "model.26.bias": [3],
}
DISCRIMINATOR_SHAPES = {
    "model.0.weight": [64, 3, 4, 4], "model.0.bias": [64],
    "model.2.weight": [128, 64, 4, 4], "model.2.bias": [128],
    "model.5.weight": [256, 128, 4, 4], "model.5.bias": [256],
    "model.8.weight": [512, 256, 4, 4], "model.8.bias": [512],
    "model.11.weight": [1, 512, 4, 4], "model.11.bias": [1],
}


def shapes(net):
    return {k: list(v.shape) for k, v in net.state_dict().items()}


def test_resnet9_matches_reference_layout():
    g = build_generator("resnet9", 64)
    assert shapes(g) == RESNET9_SHAPES
    assert len(g.state_dict()) == 48
    assert count_parameters(g) == 11_378_179


def test_resnet6_parameter_count_and_last_layer():
    g = build_generator("resnet6", 64)
    assert count_parameters(g) == 7_837_699
    assert list(g.state_dict()["model.23.weight"].shape) == [3, 64, 7, 7]


def test_patchgan_matches_reference_layout():
    d = build_discriminator(64)
    assert shapes(d) == DISCRIMINATOR_SHAPES
    assert count_parameters(d) == 2_764_737
    # 70×70 receptive field: a 256² image gives a 30×30 grid of patch scores
    assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_generator_is_fully_convolutional_and_bounded():
    g = build_generator("resnet6", 8).eval()
    y = g(torch.randn(2, 3, 36, 52) * 3)
    assert y.shape == (2, 3, 36, 52)
    assert y.abs().max() <= 1.0


def test_init_is_normal_0_02():
    w = build_generator("resnet9", 64).state_dict()["model.10.conv_block.1.weight"]
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert build_generator("resnet9", 64).state_dict()["model.4.bias"].abs().max() == 0


def test_generator_from_reference_state_dict_drops_stale_norm_keys():
    g = build_generator("resnet6", 16).eval()
    state = dict(g.state_dict())
    state["model.2.running_mean"] = torch.zeros(16)  # written by PyTorch < 0.4 for InstanceNorm
    state["model.2.running_var"] = torch.ones(16)
    state["model.2.num_batches_tracked"] = torch.tensor(0)
    assert "model.2.running_mean" not in clean_reference_state_dict(state)
    rebuilt = generator_from_state_dict(state).eval()
    assert (rebuilt.ngf, rebuilt.n_blocks) == (16, 6)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(rebuilt(x), g(x))


def test_generator_from_state_dict_rejects_other_tensors():
    with pytest.raises(ValueError):
        generator_from_state_dict(build_discriminator(8).state_dict())
