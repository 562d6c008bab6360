"""The Latent Spectral Model module: shapes, padding, parameter count, validation."""
import pytest
import torch

from lrsolve.neural import LSM, NeuralSpectralBlock


@pytest.mark.parametrize("n", [16, 13])
def test_shapes_any_size_through_padding(n):
    torch.manual_seed(0)
    model = LSM(in_channels=2, out_channels=3, width=8, levels=3, patch_size=2, heads=4)
    out = model(torch.randn(2, 2, n, n))
    assert out.shape == (2, 3, n, n)
    assert torch.isfinite(out).all()
    assert model.multiple == 8


def test_reference_darcy_configuration_has_19_2m_parameters():
    # The authors' Darcy model (width 64, 5 levels, 6x6 patches, 4 tokens, 12 bases, 8 heads).
    model = LSM(width=64, levels=5, patch_size=6, num_tokens=4, num_basis=12, heads=8)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 19.2e6) / 19.2e6 < 0.005


def test_spectral_block_is_residual_and_patch_local():
    torch.manual_seed(1)
    block = NeuralSpectralBlock(width=8, num_basis=6, patch_size=4, num_tokens=2, heads=2)
    x = torch.randn(1, 8, 8, 8)
    y = block(x)
    # Changing one patch must leave the other patches' outputs unchanged.
    x2 = x.clone()
    x2[..., :4, :4] += 1.0
    y2 = block(x2)
    assert torch.allclose(y[..., 4:, :], y2[..., 4:, :], atol=1e-6)
    assert torch.allclose(y[..., :4, 4:], y2[..., :4, 4:], atol=1e-6)
    assert not torch.allclose(y[..., :4, :4], y2[..., :4, :4], atol=1e-3)
    with pytest.raises(ValueError, match="patches"):
        block(torch.randn(1, 8, 6, 6))


def test_device_and_dtype_follow_the_module():
    model = LSM(width=8, levels=2, patch_size=2, heads=4).to(torch.float64)
    # The basis frequencies are a buffer (no hard-coded device), so they move with .to().
    assert model.spectral[0].frequencies.dtype == torch.float64
    assert model(torch.zeros(1, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("kwargs, match", [
    (dict(width=10, heads=4), "divisible"), (dict(levels=1), "levels"),
    (dict(patch_size=0), "patch_size"), (dict(width=8.0), "width")])
def test_rejects_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSM(**kwargs)


def test_rejects_wrong_input_channels():
    model = LSM(width=8, levels=2, patch_size=2, heads=4)
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(1, 8, 8))
