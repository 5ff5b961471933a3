"""``contrastkit.distributed``: single-process helpers, and two gloo processes against one for ``in-batch``.

The two-process test forks two ranks (``torch.multiprocessing.start_processes``, the engine of
``torch.multiprocessing.spawn``, with the ``fork`` start method: the workers are this module's
functions, and pytest's ``importlib`` import mode leaves this module unimportable by name in a
freshly spawned interpreter; forking also skips re-importing torch). Each rank runs a pipeline under
``DistributedDataParallel`` on its half ``B`` of a ``2B`` batch; one process runs the same pipeline
on the whole batch. What is compared, and why it is exact:

- loss: each rank's loss is the mean over its ``B`` anchors, so the mean of the ranks' losses equals
  the one-process loss (mean over ``2B``);
- gradients: ``gather_with_grad`` sums the gathered gradient over ranks, so rank ``r`` holds
  ``d(L_0 + L_1)/d theta`` through its own inputs; DDP *averages* over ranks, which gives
  ``d((L_0 + L_1)/2)/d theta``, the one-process gradient. After ``backward`` every rank's ``.grad``
  is that average, so each must equal the one-process gradient;
- ``mi_lower_bound``: ``K`` is the global one (``2B - 1``, or ``4B - 2`` with same-view negatives), so
  the ranks' mean bound equals the one-process bound.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from contrastkit import distributed
from contrastkit.distributed import gather_with_grad
from contrastkit.pipeline import Pipeline

B = 5  # per-rank batch
WORLD = 2


class LinearEncoder(nn.Module):
    """A tiny deterministic encoder without batch statistics (batch norm would differ per rank)."""

    feature_dim = 6

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels * 4 * 4, self.feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _pipeline(same_view: bool) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline(
        views="color-split",
        encoder=[LinearEncoder(1), LinearEncoder(2)],
        critic={"name": "cosine", "head": "linear", "embedding_dim": 4, "temperature": 0.5},
        objective={"name": "infonce", "two_way": True, "same_view_negatives": same_view},
        dataset_size=WORLD * B,
    )


def _batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {"image": torch.rand(WORLD * B, 3, 4, 4, generator=gen), "index": torch.arange(WORLD * B)}


def _step(model: nn.Module, pipeline: Pipeline, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    out = model(batch)
    out.loss.backward()
    return {
        "loss": float(out.loss.detach()),
        "mi": float(out.metrics["mi_lower_bound/v1-v2"]),
        "grads": {name: p.grad.detach().clone() for name, p in pipeline.named_parameters()},
    }


def _worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        assert distributed.is_distributed() and distributed.rank() == rank and distributed.world_size() == WORLD
        # gather_with_grad: rows in rank order; the backward sums every rank's gradient for this slice.
        x = torch.full((2, 3), float(rank), requires_grad=True)
        gathered = gather_with_grad(x)
        weight = torch.arange(WORLD * 6, dtype=torch.float32).view(WORLD * 2, 3)
        (gathered * weight).sum().backward()
        results: dict[str, Any] = {"gathered": gathered.detach(), "x_grad": x.grad}
        batch = {k: v[rank * B : (rank + 1) * B] for k, v in _batch().items()}
        for same_view in (False, True):
            pipeline = _pipeline(same_view)
            ddp = nn.parallel.DistributedDataParallel(pipeline)
            results[same_view] = _step(ddp, pipeline, batch)
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_helpers_without_torch_distributed() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    x = torch.randn(4, 3)
    assert torch.equal(gather_with_grad(x), x)


def test_gather_with_grad_gradcheck_single_process() -> None:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gather_with_grad, (x,))
    assert torch.autograd.gradgradcheck(lambda t: gather_with_grad(t).square(), (x,))


@pytest.mark.skipif(
    not torch.distributed.is_available() or "fork" not in mp.get_all_start_methods(),
    reason="needs torch.distributed with gloo and the fork start method",
)
def test_two_gloo_processes_match_one_process_in_batch(tmp_path: Path) -> None:
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]

    expected_rows = torch.cat([torch.full((2, 3), float(r)) for r in range(WORLD)])
    weight = torch.arange(WORLD * 6, dtype=torch.float32).view(WORLD * 2, 3)
    for r, result in enumerate(ranks):
        assert torch.equal(result["gathered"], expected_rows)
        assert torch.equal(result["x_grad"], WORLD * weight[2 * r : 2 * r + 2])  # summed over ranks

    batch = _batch()
    for same_view in (False, True):
        pipeline = _pipeline(same_view)
        single = _step(pipeline, pipeline, batch)
        per_rank = [result[same_view] for result in ranks]
        assert sum(p["loss"] for p in per_rank) / WORLD == pytest.approx(single["loss"], rel=1e-5)
        assert sum(p["mi"] for p in per_rank) / WORLD == pytest.approx(single["mi"], rel=1e-5, abs=1e-5)
        k = 2 * WORLD * B - 2 if same_view else WORLD * B - 1
        assert single["mi"] == pytest.approx(math.log(k + 1) - single["loss"] / 2, abs=1e-5)
        for p in per_rank:
            assert p["grads"].keys() == single["grads"].keys()
            for name, grad in single["grads"].items():
                torch.testing.assert_close(p["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
