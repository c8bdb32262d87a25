import pytest
import torch
from torch import nn

from cartoongan.errors import InvalidInput
from cartoongan.training.networks import (
    ARCHITECTURES,
    Blur,
    PatchDiscriminator,
    ResidualBlock,
    build_generator,
    count_macs,
    count_parameters,
)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (33, 17), (30, 45)])
def test_generator_output_size_equals_input_size(arch, size):
    torch.manual_seed(0)
    generator = build_generator(arch)
    for mode in (True, False):  # training and eval behave differently with BatchNorm
        generator.train(mode)
        x = torch.rand(2, 3, *size) * 2 - 1
        with torch.no_grad():
            y = generator(x)
        assert y.shape == x.shape
        assert y.dtype == torch.float32
        assert torch.isfinite(y).all() and y.abs().max() <= 1.0  # tanh output range


def test_variants_follow_their_designs():
    paper, design, lite = (build_generator(a) for a in ("cartoongan", "cartoongan-bn", "cartoongan-lite"))
    assert any(isinstance(m, nn.InstanceNorm2d) for m in paper.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert not any(isinstance(m, Blur) for m in paper.modules())
    for model in (design, lite):
        assert not any(isinstance(m, nn.InstanceNorm2d) for m in model.modules())
        assert sum(isinstance(m, Blur) for m in model.modules()) == 2  # one after each upsampling
    assert len(paper.res) == len(design.res) == 8
    assert count_parameters(paper) == count_parameters(design)  # same layers, different norm and ordering
    assert count_parameters(lite) * 10 < count_parameters(design)
    assert any(m.groups > 1 for m in lite.modules() if isinstance(m, nn.Conv2d))


def test_residual_block_relu_after_add_only_in_the_design():
    x = -torch.ones(1, 256, 4, 4)  # negative skip values survive only without the final ReLU
    for arch, expect_nonnegative in (("cartoongan", False), ("cartoongan-bn", True)):
        block = build_generator(arch).res[0]
        assert isinstance(block, ResidualBlock)
        nn.init.zeros_(block.body[-1].weight)  # body output == norm bias == 0
        with torch.no_grad():
            y = block.eval()(x)
        assert bool((y >= 0).all()) == expect_nonnegative


def test_blur_is_a_fixed_low_pass_filter():
    blur = Blur(2)
    assert list(blur.parameters()) == []
    assert "kernel" not in blur.state_dict()  # a constant, not a checkpointed tensor
    flat = torch.full((1, 2, 6, 6), 0.3)
    assert torch.allclose(blur(flat), flat)  # keeps constants
    checker = (torch.arange(36).view(6, 6) % 2 == (torch.arange(36).view(6, 6) // 6) % 2).float()
    x = checker.expand(1, 2, 6, 6)
    assert blur(x).std() < 0.5 * x.std()  # removes the highest frequency


@pytest.mark.parametrize("spectral", [False, True])
def test_discriminator_patch_map_is_quarter_resolution(spectral):
    d = PatchDiscriminator(spectral_norm=spectral)
    out = d(torch.rand(3, 3, 64, 48))
    assert out.shape == (3, 1, 16, 12)
    if spectral:
        assert any("parametrizations" in name for name, _ in d.named_parameters())


def test_mac_counts():
    lite, design = build_generator("cartoongan-lite"), build_generator("cartoongan-bn")
    # a 1x1 conv over 3 channels at 8x8 -> 64 * 3 * 16 MACs
    assert count_macs(nn.Conv2d(3, 16, 1), 8, 8) == 8 * 8 * 3 * 16
    macs_256 = count_macs(design, 256, 256)
    assert count_macs(design, 512, 512) == pytest.approx(4 * macs_256, rel=1e-6)
    assert count_macs(lite, 256, 256) * 10 < macs_256
    assert next(design.parameters()).device.type == "cpu"  # counting leaves the model alone


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(InvalidInput, match="unknown architecture 'nope'.*cartoongan-bn"):
        build_generator("nope")
