"""DDP on CPU: two gloo processes train together and end with identical weights."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gbsearch.diffusion import UNetConfig, train
from gbsearch.diffusion.synthetic import LatticeBlobs


def _worker(rank: int, world: int, tmp: str) -> None:
    torch.set_num_threads(1)  # two processes on a small CI machine
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        cfg = UNetConfig(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, norm_groups=4,
                         periodic=(True, True, True))
        res = train(cfg, LatticeBlobs(64, (8, 8, 8), a=4), LatticeBlobs(8, (8, 8, 8), a=4, seed=1),
                    os.path.join(tmp, "run"), steps=30, batch_size=2, lr=3e-3, val_every=15,
                    device="cpu", progress=False)
        torch.save({"state": res.model.state_dict(), "history": res.history}, os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_identical_weights_and_loss_falls(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    # Validation is all-reduced, so both ranks record the same losses and learning rates.
    assert r0["history"] == r1["history"]
    vals = [h["val_loss"] for h in r0["history"]]
    assert vals[-1] < 0.7 * vals[0], vals
    # Rank 0 wrote the checkpoint, with the shared weights.
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["step"] == 30
    for k, v in ck["model_state"].items():
        assert torch.equal(v, r0["state"][k])
