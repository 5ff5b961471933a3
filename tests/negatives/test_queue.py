"""``queue``: FIFO order and wrap-around against a naive reference, logits, masking, the momentum key
encoder in the pipeline (keys as positives and as queued entries, no gradient), Trainer runs and a
bit-exact resume through a mid-run checkpoint, contract."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import contrastkit
from contrastkit.config import config_from_dict
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.momentum import MomentumTarget
from contrastkit.negatives.queue import QueueNegatives
from contrastkit.pipeline import Pipeline
from contrastkit.registry import Registry
from contrastkit.testing import CONTEXT, check_negative_sampler, check_registered
from contrastkit.training import Trainer, TrainResult
from contrastkit.training.checkpoint import CheckpointDir, load_checkpoint

REPO = Path(__file__).resolve().parents[2]


class _QueuePlugin:
    @staticmethod
    @contrastkit.hookimpl
    def register_negative_samplers(register) -> None:
        register("queue", QueueNegatives)


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The built-ins, plus ``queue`` when contrastkit does not register it (yet)."""
    registry = Registry(entry_points=False)
    if "queue" not in registry.names("negative_samplers"):
        registry.add_plugin(_QueuePlugin(), name="test-queue")
    return registry


def unit(*shape: int, gen: torch.Generator | None = None) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=gen), dim=-1)


# -- contract and parameters ---------------------------------------------------------------------
def test_contract_with_default_parameters(registry: Registry) -> None:
    check_negative_sampler(QueueNegatives(**CONTEXT["negative_samplers"]))
    check_registered("negative_samplers", "queue", registry=registry)


def test_contract_with_a_queue_smaller_than_the_batch() -> None:
    check_negative_sampler(QueueNegatives(num_views=2, dataset_size=0, embedding_dim=16, size=4), steps=3)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"size": True}, "size"),
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"num_views": 0}, "num_views"),
    ],
)
def test_invalid_parameters_are_refused(kwargs: dict[str, Any], parameter: str) -> None:
    base: dict[str, Any] = {"num_views": 2, "dataset_size": 10, "embedding_dim": 4}
    with pytest.raises(InvalidParameter, match=parameter):
        QueueNegatives(**{**base, **kwargs})


def test_wrong_shapes_are_refused() -> None:
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    queue = QueueNegatives(num_views=2, dataset_size=10, embedding_dim=4, size=8)
    z = unit(3, 4)
    with pytest.raises(ShapeError, match="D = 5"):
        queue.pair_logits(critic, unit(3, 5), unit(3, 5), index=torch.arange(3), anchor_view=0, target_view=1)
    with pytest.raises(ShapeError, match="index"):
        queue.pair_logits(critic, z, z, index=torch.arange(2), anchor_view=0, target_view=1)
    with pytest.raises(ShapeError, match="3 views|for 2 views"):
        queue.update([z, z, z], torch.arange(3))


def test_starts_full_of_random_unit_keys_and_is_in_the_state_dict() -> None:
    queue = QueueNegatives(num_views=3, dataset_size=10, embedding_dim=5, size=7)
    torch.testing.assert_close(queue.queue.norm(dim=-1), torch.ones(3, 7))
    assert set(queue.state_dict()) == {"queue", "queue_index", "ptr"}
    assert int(queue.ptr) == 0 and bool((queue.queue_index == -1).all())


# -- FIFO ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 5, 8, 13])
def test_fifo_order_and_wrap_around_match_a_one_by_one_python_queue(size: int) -> None:
    gen = torch.Generator().manual_seed(size)
    queue = QueueNegatives(num_views=2, dataset_size=1000, embedding_dim=3, size=size)
    slots = [[row.clone() for row in queue.queue[v]] for v in range(2)]  # naive reference: a list per view
    slot_index = [[-1] * size for _ in range(2)]
    ptr = 0
    next_index = 0
    for batch in (3, 1, 8, 4, 20, 2, 5):  # batches smaller than, equal to and larger than the queue
        keys = [unit(batch, 3, gen=gen) for _ in range(2)]
        index = torch.arange(next_index, next_index + batch)
        next_index += batch
        queue.update(keys, index)
        for b in range(batch):  # enqueue one key at a time, overwriting the oldest
            for v in range(2):
                slots[v][ptr] = keys[v][b]
                slot_index[v][ptr] = int(index[b])
            ptr = (ptr + 1) % size
        assert int(queue.ptr) == ptr
        for v in range(2):
            assert torch.equal(queue.queue[v], torch.stack(slots[v]))
            assert queue.queue_index[v].tolist() == slot_index[v]


def test_update_casts_low_precision_keys_and_stores_float32() -> None:
    queue = QueueNegatives(num_views=2, dataset_size=10, embedding_dim=4, size=6)
    keys = [unit(3, 4).bfloat16() for _ in range(2)]
    queue.update(keys, torch.arange(3))
    assert queue.queue.dtype == torch.float32
    torch.testing.assert_close(queue.queue[1, :3], keys[1].float())


# -- logits --------------------------------------------------------------------------------------
@pytest.mark.parametrize("exclude", [True, False])
def test_logits_match_a_float64_reference(exclude: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    tau = 0.3
    critic = CosineCritic(feature_dims=(6, 6), head="none", temperature=tau).double()
    queue = QueueNegatives(num_views=2, dataset_size=50, embedding_dim=6, size=10, exclude_same_index=exclude).double()
    queue.update([unit(4, 6, gen=gen).double() for _ in range(2)], torch.tensor([7, 8, 9, 10]))
    q, k = unit(5, 6, gen=gen).double(), unit(5, 6, gen=gen).double()
    index = torch.tensor([8, 1, 2, 10, 3])
    pair = queue.pair_logits(critic, q, k, index=index, anchor_view=0, target_view=1)
    assert pair.logits.shape == (5, 11) and pair.target.tolist() == [0] * 5 and pair.num_negatives == 10
    expected = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.queue[1].T], dim=1) / tau
    if exclude:  # slot 1 holds sample 8, slot 3 sample 10
        expected[0, 1 + 1] = float("-inf")
        expected[3, 1 + 3] = float("-inf")
    torch.testing.assert_close(pair.logits, expected, rtol=1e-12, atol=1e-12)


# -- the pipeline's momentum key encoder ---------------------------------------------------------
SMALL = {"name": "convnet", "width": 4, "depth": 2}


def queue_pipeline(registry: Registry, **negatives: Any) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline(
        encoder=SMALL,
        critic={"name": "cosine", "embedding_dim": 8},
        negatives={"name": "queue", "size": 32, **negatives},
        dataset_size=64,
        registry=registry,
    )


def batch(seed: int, n: int = 6) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, 16, 16, generator=gen), "index": torch.arange(seed * n, seed * n + n)}


def test_the_pipeline_builds_a_frozen_momentum_target_in_its_state_dict(registry: Registry) -> None:
    pipe = queue_pipeline(registry, momentum=0.9)
    assert isinstance(pipe.momentum_target, MomentumTarget) and pipe.momentum_target.momentum == 0.9
    assert not any(p.requires_grad for p in pipe.momentum_target.parameters())
    keys = set(pipe.state_dict())
    assert any(k.startswith("momentum_target.encoders.") for k in keys)
    assert {"negatives.queue", "negatives.queue_index", "negatives.ptr"} <= keys
    for online, target in zip(pipe.encoders.parameters(), pipe.momentum_target.encoders.parameters()):
        assert torch.equal(online, target) and online.data_ptr() != target.data_ptr()
    assert Pipeline(encoder=SMALL, dataset_size=8).momentum_target is None  # others get none


def test_positives_and_queued_entries_are_the_momentum_keys_and_get_no_gradient(registry: Registry) -> None:
    pipe = queue_pipeline(registry)
    with torch.no_grad():  # make the key encoder differ from the online one
        for p in pipe.momentum_target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    original = pipe.negatives.pair_logits

    def spy(critic: Any, anchors: torch.Tensor, positives: torch.Tensor, **kw: Any) -> Any:
        seen.append((anchors, positives))
        return original(critic, anchors, positives, **kw)

    pipe.negatives.pair_logits = spy  # type: ignore[method-assign]
    data = batch(1)
    out = pipe(data)
    prepared = pipe.prepare_batch(data)
    views = out.views
    keys = pipe.momentum_target.embed(views)
    online = [pipe.critic.embed(f, view=i) for i, f in enumerate(pipe.encode(views))]
    (a01, k01), (a10, k10) = seen  # v1 -> v2, then v2 -> v1
    assert a01.requires_grad and not k01.requires_grad and not k10.requires_grad
    torch.testing.assert_close(k01, keys[1])
    torch.testing.assert_close(k10, keys[0])
    assert not torch.allclose(k01, online[1])  # really the key encoder's, not the online embeddings
    torch.testing.assert_close(pipe.negatives.queue[1, :6], keys[1])  # the queue stores keys
    assert pipe.negatives.queue_index[0, :6].tolist() == prepared["index"].tolist()
    out.loss.backward()
    assert all(p.grad is None for p in pipe.momentum_target.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in pipe.encoders.parameters())


def test_update_momentum_is_the_ema_of_the_online_weights(registry: Registry) -> None:
    pipe = queue_pipeline(registry, momentum=0.7)
    before = {k: v.double().clone() for k, v in pipe.momentum_target.state_dict().items()}
    with torch.no_grad():
        for p in list(pipe.encoders.parameters()) + list(pipe.critic.parameters()):
            p.add_(torch.randn_like(p))
    pipe.train()(batch(2))  # batch norm running statistics change in the online encoders
    pipe.update_momentum()
    online = {f"encoders.{k}": v for k, v in pipe.encoders.state_dict().items()}
    online |= {f"critic.{k}": v for k, v in pipe.critic.state_dict().items()}
    params = {n for n, _ in pipe.momentum_target.named_parameters()}
    for name, value in pipe.momentum_target.state_dict().items():
        if name in params:
            expected = 0.7 * before[name] + 0.3 * online[name].double()
            torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-6)
        else:  # buffers are copied
            assert torch.equal(value, online[name]), name


def test_different_momenta_for_negatives_and_regularizer_are_refused(registry: Registry) -> None:
    with pytest.raises(ConfigError, match="different momentum"):
        Pipeline(
            encoder=SMALL,
            negatives={"name": "queue", "size": 8, "momentum": 0.99},
            regularizer={"name": "relic", "target_momentum": 0.9},
            dataset_size=8,
            registry=registry,
        )


def test_relic_target_momentum_gives_in_batch_an_ema_target_network(registry: Registry) -> None:
    pipe = Pipeline(encoder=SMALL, regularizer={"name": "relic", "target_momentum": 0.99}, dataset_size=8, registry=registry)
    assert pipe.momentum_target is not None and pipe.momentum_target.momentum == 0.99
    out = pipe(batch(3))
    out.loss.backward()
    assert all(p.grad is None for p in pipe.momentum_target.parameters())
    assert Pipeline(encoder=SMALL, regularizer="relic", dataset_size=8).momentum_target is None


# -- Trainer -------------------------------------------------------------------------------------
def tiny(out_dir: Path, **train: Any) -> dict[str, Any]:
    """tests/test_trainer.py's tiny recipe with a queue of 64 keys."""
    return {
        "data": {"name": "colorful-moving-digits", "size": 96, "image_size": 16, "digit_size": 8},
        "augment": {"name": "crop-flip"},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "critic": {"name": "cosine", "embedding_dim": 8},
        "negatives": {"name": "queue", "size": 64},
        "train": {"batch_size": 16, "device": "cpu", "out_dir": str(out_dir), "deterministic": True, **train},
        "eval": {"knn": False},
        "log": {"progress": False, "every_n_steps": 2, "images_every_n_steps": 0, "projector_samples": 0},
    }


def fit(raw: dict[str, Any], registry: Registry, *, resume: bool = False) -> tuple[Trainer, TrainResult]:
    """``Trainer.from_config`` with this module's registry."""
    config = config_from_dict(raw)
    torch.manual_seed(config.train.seed)
    pipeline = Pipeline.from_config(config, registry=registry)
    trainer = Trainer(pipeline, train=config.train, eval=config.eval, log=config.log, config=config, print_fn=lambda _: None)
    return trainer, trainer.fit(resume=resume)


def test_trainer_steps_move_the_key_encoder_and_fill_the_queue(registry: Registry, tmp_path: Path) -> None:
    trainer, result = fit(tiny(tmp_path, max_steps=3, optimizer="sgd", lr=0.5), registry)
    assert result.steps == 3
    pipe = trainer.pipeline
    assert int(pipe.negatives.ptr) == (3 * 16) % 64
    assert sorted(pipe.negatives.queue_index[0, :48].tolist()) == sorted(set(pipe.negatives.queue_index[0, :48].tolist()))
    online = dict(pipe.encoders.named_parameters())
    target = dict(pipe.momentum_target.encoders.named_parameters())
    moved = [not torch.equal(online[n], target[n]) for n in online]
    assert any(moved)  # the key encoder lags behind the trained one
    saved = load_checkpoint(result.checkpoint)["model"]
    assert torch.equal(saved["negatives.queue"], pipe.negatives.queue)
    assert any(k.startswith("momentum_target.") for k in saved)


def test_resume_from_a_mid_run_checkpoint_equals_the_uninterrupted_run(registry: Registry, tmp_path: Path) -> None:
    # 96 samples / 16 = 6 batches per epoch; the 64-key queue wraps around from step 5 on
    raw = tiny(tmp_path / "a", max_steps=9, checkpoint_every_n_steps=2, keep_checkpoints=10, optimizer="sgd")
    _, result = fit(raw, registry)
    folder = CheckpointDir(tmp_path / "a" / "checkpoints")
    reference = load_checkpoint(result.checkpoint)["model"]
    for resume_at in (4, 6):
        run_dir = tmp_path / f"b{resume_at}"
        (run_dir / "checkpoints").mkdir(parents=True)
        source = folder.path / f"step-{resume_at:08d}.pt"
        (run_dir / "checkpoints" / source.name).write_bytes(source.read_bytes())
        _, resumed = fit({**raw, "train": {**raw["train"], "out_dir": str(run_dir)}}, registry, resume=True)
        assert resumed.resumed_from == run_dir / "checkpoints" / source.name and resumed.steps == 9
        weights = load_checkpoint(resumed.checkpoint)["model"]
        assert weights.keys() == reference.keys()
        for key in reference:
            assert torch.equal(weights[key], reference[key]), f"{key} differs"


# -- distributed -----------------------------------------------------------------------------------
_DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from contrastkit.negatives.queue import QueueNegatives

    def run(world, rank, out):
        torch.manual_seed(0)
        queue = QueueNegatives(num_views=2, dataset_size=100, embedding_dim=4, size=10)
        gen = torch.Generator().manual_seed(1)
        for step in range(3):  # 3 global batches of 8: the 10-key queue wraps around
            keys = [torch.randn(8, 4, generator=gen) for _ in range(2)]
            index = torch.arange(step * 8, step * 8 + 8)
            half = slice(rank * 8 // world, (rank + 1) * 8 // world)
            queue.update([k[half] for k in keys], index[half])
        torch.save(queue.state_dict(), f"{out}/queue-{world}-{rank}.pt")

    def worker(rank, out):
        dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
        try:
            run(2, rank, out)
        finally:
            dist.destroy_process_group()

    if __name__ == "__main__":
        out = sys.argv[1]
        run(1, 0, out)
        mp.spawn(worker, args=(out,), nprocs=2)
    """
)


def test_two_gloo_ranks_hold_the_queue_of_one_process_with_the_whole_batch(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))  # keep what is set
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    single = torch.load(tmp_path / "queue-1-0.pt")
    ranks = [torch.load(tmp_path / f"queue-2-{r}.pt") for r in range(2)]
    for key in ("queue", "queue_index", "ptr"):
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key} differs between ranks"
        assert torch.equal(ranks[0][key], single[key]), f"{key} differs from one process"
