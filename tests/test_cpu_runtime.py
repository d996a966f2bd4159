"""OpenVINO wrapper of the U-Net (gbsearch.diffusion.cpu_runtime): same outputs as torch, and
usable by sample(). Skipped where openvino is not installed."""

import pytest
import torch
from torch import nn

from gbsearch.diffusion import UNet3D, UNetConfig, make_scheduler, sample
from gbsearch.nn_padding import _pad_by_index, pad_per_axis

SHAPE = (8, 8, 16)


def small_model() -> UNet3D:
    torch.manual_seed(0)
    m = UNet3D(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, norm_groups=4,
                          periodic=(True, True, False))).eval()
    for p in m.parameters():          # no zero-initialised layers: every block matters
        nn.init.normal_(p, std=0.1)
    return m


@pytest.mark.parametrize("periodic", [(True, True, False), (True, True, True), (False, True, False)])
@pytest.mark.parametrize("zeros", [True, False])
def test_export_padding_path_equals_eager(periodic, zeros):
    x = torch.randn(2, 3, 5, 6, 7)
    for pad in (1, 2):
        assert torch.equal(_pad_by_index(x, pad, periodic, zeros), pad_per_axis(x, pad, periodic, zeros))


def test_openvino_model_matches_torch_and_samples():
    pytest.importorskip("openvino")
    from gbsearch.diffusion.cpu_runtime import OpenVINOModel

    m = small_model()
    ov_m = OpenVINOModel(m, SHAPE, precision="f32", threads=1)
    x = torch.randn(3, 1, *SHAPE)
    t = torch.tensor([10, 500, 999])
    with torch.no_grad():
        ref = m(x, t)
    out = ov_m(x, t)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)
    assert torch.allclose(ov_m(x[:1], 500), m(x[:1], 500).detach(), atol=1e-4, rtol=1e-4)   # scalar t

    g = lambda: torch.Generator().manual_seed(0)
    a = sample(ov_m, make_scheduler(), SHAPE, n=2, generator=g(), steps=6)
    b = sample(m, make_scheduler(), SHAPE, n=2, generator=g(), steps=6, autocast=False)
    assert torch.allclose(a, b, atol=1e-3)
