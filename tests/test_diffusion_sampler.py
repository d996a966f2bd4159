"""Sampler: 60 function evaluations, in-painting holds the known region, unconditional periodic
generation, swappable schedulers."""

import pytest
import torch
from diffusers import DDIMScheduler
from torch import nn

from gbsearch.diffusion import UNet3D, UNetConfig, make_scheduler, sample
from gbsearch.diffusion.synthetic import LatticeBlobs

SHAPE = (8, 8, 16)


def small_model(periodic=(True, True, False)) -> UNet3D:
    torch.manual_seed(0)
    m = UNet3D(UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, norm_groups=4,
                          periodic=periodic)).eval()
    # Randomise the zero-initialised output layer so the network's output matters.
    nn.init.normal_(m.conv_out.conv.weight, std=0.05)
    return m


class CallLog:
    """Forward hook recording each network call's input (x, t)."""

    def __init__(self, model):
        self.calls = []
        self.handle = model.register_forward_hook(lambda mod, args, out: self.calls.append(
            (args[0].detach().clone(), args[1].detach().clone())))


def gb_like_known(n=1):
    ds = LatticeBlobs(n, SHAPE, a=4, known_slabs=4)
    vox = torch.stack([ds[i][0] for i in range(n)])
    mask = torch.stack([ds[i][1] for i in range(n)])
    return vox, mask


def test_dpm_solver3_makes_exactly_60_network_evaluations():
    m = small_model()
    log = CallLog(m)
    out = sample(m, make_scheduler(), SHAPE, n=3, generator=torch.Generator().manual_seed(0), steps=60)
    assert len(log.calls) == 60
    assert out.shape == (3, 1, *SHAPE) and torch.isfinite(out).all()
    # The 60 evaluations run from high to low noise and each sees the whole batch.
    ts = [int(t[0]) for _, t in log.calls]
    assert ts == sorted(ts, reverse=True) and all(x.shape[0] == 3 for x, _ in log.calls)


@pytest.mark.parametrize("solver", ["dpm3-singlestep", "dpm2m", "unipc"])
def test_every_named_solver_makes_its_steps_and_holds_the_known_region(solver):
    """Each sampler of gbsearch.solvers: `steps` network evaluations from high to low noise, a
    finite sample inside the clip bounds, the known voxels exact."""
    m = small_model()
    log = CallLog(m)
    known = torch.rand(SHAPE)
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    mask[..., :2] = True
    out = sample(m, make_scheduler(solver=solver), SHAPE, n=2, known=known, known_mask=mask,
                 generator=torch.Generator().manual_seed(1), steps=7, clip=(0.0, 1.0))
    assert len(log.calls) == 7
    ts = [int(t[0]) for _, t in log.calls]
    assert ts == sorted(ts, reverse=True)
    assert torch.isfinite(out).all() and out.min() >= -1e-6 and out.max() <= 1 + 1e-6
    assert torch.equal(out[:, 0][:, mask], known[mask].expand(2, -1))


def test_an_unknown_solver_is_refused_with_the_known_names():
    from gbsearch.driver.config import CampaignConfig
    from gbsearch.errors import InputError
    with pytest.raises(ValueError, match="dpm3-singlestep, dpm2m, unipc"):
        make_scheduler(solver="euler")
    with pytest.raises(InputError, match="solver must be one of"):
        CampaignConfig(solver="euler")


def test_clip_bounds_every_data_estimate():
    # An untrained ε-network (output ≈ 0) makes the data estimate x/alpha_t, huge at high noise;
    # clipping keeps the final sample (the last data estimate) inside the bounds.
    m = small_model()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    free = sample(m, make_scheduler(), SHAPE, n=2, generator=g(), steps=12, scale=0.5)
    assert free.abs().max() > 2.0
    clipped = sample(m, make_scheduler(), SHAPE, n=2, generator=g(), steps=12, scale=0.5, clip=(0.0, 1.0))
    assert clipped.min() >= -1e-6 and clipped.max() <= 1.0 + 1e-6   # float round-off only


def test_inpainting_holds_known_region_exactly():
    m = small_model()
    known, mask = gb_like_known(2)
    scale = 0.25
    sched = make_scheduler()
    log = CallLog(m)
    out = sample(m, sched, SHAPE, n=2, known=known, known_mask=mask, scale=scale,
                 generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[mask], known[mask])
    # The unknown region is generated, not copied.
    assert (out[~mask] - known[~mask]).abs().max() > 1e-2
    # Every step saw the known region noised to that step's level, alpha_t*x0 + sigma_t*eps0,
    # with one fixed standard-normal eps0 (read back from the first call).
    abar = sched.alphas_cumprod
    x_first, t_first = log.calls[0]
    a0 = abar[int(t_first[0])]
    eps0 = (x_first - a0.sqrt() * known / scale) / (1 - a0).sqrt()
    assert 0.8 < eps0[mask].std() < 1.2 and abs(eps0[mask].mean()) < 0.2
    for x, t in log.calls[1:]:
        a = abar[int(t[0])]
        expect = a.sqrt() * known / scale + (1 - a).sqrt() * eps0
        torch.testing.assert_close(x[mask], expect[mask], atol=1e-5, rtol=1e-5)


def test_inpainting_broadcasts_one_known_array_over_the_batch():
    m = small_model()
    known, mask = gb_like_known(1)
    out = sample(m, make_scheduler(), SHAPE, n=3, known=known[0, 0], known_mask=mask[0, 0],
                 generator=torch.Generator().manual_seed(2), steps=12)
    assert out.shape == (3, 1, *SHAPE)
    for i in range(3):
        assert torch.equal(out[i][mask[0]], known[0][mask[0]])
    assert (out[0] - out[1]).abs().max() > 1e-3  # different candidates


def test_unconditional_fully_periodic_and_reproducible():
    m = small_model(periodic=(True, True, True))
    a = sample(m, make_scheduler(), (8, 8, 8), n=2, generator=torch.Generator().manual_seed(3), steps=9)
    b = sample(m, make_scheduler(), (8, 8, 8), n=2, generator=torch.Generator().manual_seed(3), steps=9)
    assert a.shape == (2, 1, 8, 8, 8)
    assert torch.equal(a, b)
    assert (a[0] - a[1]).abs().max() > 1e-3


def test_scheduler_is_swappable():
    """Any diffusers scheduler with the same VP betas drives the same sampler."""
    m = small_model()
    known, mask = gb_like_known(1)
    ddim = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    log = CallLog(m)
    out = sample(m, ddim, SHAPE, n=1, known=known, known_mask=mask, steps=10,
                 generator=torch.Generator().manual_seed(4))
    assert len(log.calls) == 10
    assert torch.equal(out[mask], known[mask])


def test_known_without_mask_is_refused():
    with pytest.raises(ValueError):
        sample(small_model(), make_scheduler(), SHAPE, n=1, known=torch.zeros(SHAPE))
    with pytest.raises(ValueError, match="does not fit"):
        sample(small_model(), make_scheduler(), SHAPE, n=2, known=torch.zeros(3, 1, *SHAPE),
               known_mask=torch.zeros(3, 1, *SHAPE, dtype=torch.bool))
