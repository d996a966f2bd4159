"""3D U-Net: shapes, per-axis padding (circular vs zero), time conditioning."""

import pytest
import torch
from torch import nn

from gbsearch.diffusion.unet import UNet3D, UNetConfig, pad_per_axis


def random_unet(**kw) -> UNet3D:
    """Tiny U-Net with its zero-initialised layers randomised, so the output is not trivially 0."""
    cfg = dict(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, norm_groups=4)
    cfg.update(kw)
    torch.manual_seed(0)
    m = UNet3D(UNetConfig(**cfg)).eval()
    for mod in m.modules():
        if isinstance(mod, nn.Conv3d):
            nn.init.normal_(mod.weight, std=0.2)
            nn.init.normal_(mod.bias, std=0.1)
    return m


@pytest.mark.parametrize("mult,shape", [((1,), (6, 6, 10)), ((1, 2), (8, 8, 16)), ((1, 2, 2), (8, 12, 16))])
def test_output_shape(mult, shape):
    m = random_unet(channel_mult=mult)
    x = torch.randn(3, 1, *shape)
    with torch.no_grad():
        y = m(x, torch.tensor([0, 10, 999]))
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_gb_model_layout_and_zero_init():
    """The GB model: 2 levels x 3 residual blocks; a fresh model outputs exactly 0."""
    m = UNet3D(UNetConfig(base_channels=16, channel_mult=(1, 2), num_res_blocks=3))
    n_res = sum(type(mod).__name__ == "ResBlock" for mod in m.modules())
    assert n_res == 2 * 3 + 2 + 2 * 4  # down + middle + up (one extra per level on the way up)
    with torch.no_grad():
        assert torch.equal(m(torch.randn(1, 1, 8, 8, 8), 5), torch.zeros(1, 1, 8, 8, 8))


def test_bad_grid_size_is_refused():
    m = random_unet(channel_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="divisible"):
        m(torch.randn(1, 1, 8, 8, 6), 0)


def test_pad_per_axis_circular_and_zero():
    x = torch.arange(1, 1 + 4 * 4 * 4, dtype=torch.float32).reshape(1, 1, 4, 4, 4)
    p = pad_per_axis(x, 1, (True, False, True))
    assert p.shape == (1, 1, 6, 6, 6)
    inner = p[:, :, :, 1:-1, :]
    assert torch.equal(inner[:, :, 0, :, 1:-1], x[:, :, -1])   # x wraps around
    assert torch.equal(inner[:, :, -1, :, 1:-1], x[:, :, 0])
    assert torch.equal(inner[:, :, 1:-1, :, 0], x[..., -1])    # z wraps around
    assert torch.all(p[:, :, :, 0] == 0) and torch.all(p[:, :, :, -1] == 0)  # y is zero-padded


def test_roll_equivariance_on_periodic_axes_only():
    """Periodic x, y / open z: rolling the input along x or y rolls the output (shifts by a
    multiple of 2**(levels-1)); along z it does not, because z is zero-padded."""
    m = random_unet(periodic=(True, True, False))
    torch.manual_seed(1)
    x = torch.randn(2, 1, 8, 8, 16)
    t = torch.tensor([3, 700])
    with torch.no_grad():
        y = m(x, t)
        for dim in (2, 3):
            for shift in (2, 4, -2):
                torch.testing.assert_close(m(x.roll(shift, dim), t), y.roll(shift, dim), atol=1e-5, rtol=1e-4)
        dz = (m(x.roll(2, 4), t) - y.roll(2, 4)).abs().max()
    assert dz > 1e-3


def test_fully_periodic_model_rolls_along_z_too():
    m = random_unet(periodic=(True, True, True))
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x.roll(4, 4), 9), m(x, 9).roll(4, 4), atol=1e-5, rtol=1e-4)


def test_time_conditioning_and_channels_last():
    m = random_unet()
    x = torch.randn(2, 1, 8, 8, 8)
    with torch.no_grad():
        y1, y2 = m(x, 10), m(x, 900)
        assert (y1 - y2).abs().max() > 1e-3
        m_cl = m.to(memory_format=torch.channels_last_3d)
        y3 = m_cl(x.contiguous(memory_format=torch.channels_last_3d), 10)
    torch.testing.assert_close(y3, y1, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("periodic", [(True, True, False), (True, True, True), (False, True, False)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pad_matches_fpad_and_keeps_memory_format(periodic, channels_last):
    """Hand-written padding = F.pad circular on periodic axes then zeros on open ones, values and
    gradients; it keeps channels_last_3d (the GPU layout) where F.pad circular would not."""
    import torch.nn.functional as F

    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    xi = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    got = pad_per_axis(xi, 2, periodic)
    circ = sum(([2, 2] if p else [0, 0] for p in reversed(periodic)), [])
    zero = sum(([0, 0] if p else [2, 2] for p in reversed(periodic)), [])
    ref = F.pad(F.pad(x, circ, mode="circular"), zero)
    assert torch.equal(got, ref)
    assert got.is_contiguous(memory_format=torch.channels_last_3d) == channels_last
    w = torch.randn_like(ref)
    g_got, = torch.autograd.grad((got * w).sum(), x)
    g_ref, = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(g_got, g_ref)


@pytest.mark.parametrize("periodic", [(True, True, False), (False, True, False), (True, True, True)])
@pytest.mark.parametrize("pad", [1, 5])      # 5: wider than the 4-voxel axis (the by-index path)
def test_convolution_padding_open_axes_equals_padding_them_by_hand(periodic, pad):
    """PaddedConv3d leaves open axes to the convolution's own zero padding (zeros=False): the
    same convolution as zero-padding them by hand first, on either padding path."""
    import torch.nn.functional as F

    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(4, 3, 2 * pad + 1, 2 * pad + 1, 2 * pad + 1, dtype=torch.float64)
    by_hand = F.conv3d(pad_per_axis(x, pad, periodic), w)
    by_conv = F.conv3d(pad_per_axis(x, pad, periodic, zeros=False), w,
                       padding=tuple(0 if p else pad for p in periodic))
    torch.testing.assert_close(by_conv, by_hand)
    unpadded = pad_per_axis(x, pad, periodic, zeros=False)
    assert [n for n, p in zip(unpadded.shape[2:], periodic) if not p] == [n for n, p in zip(x.shape[2:], periodic) if not p]
