"""``memory-bank``: sampling invariants, CMC's update against a float64 reference, checkpoints, DDP."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import tomllib
import torch

from contrastkit.config import config_from_dict
from contrastkit.critics.cosine import CosineCritic
from contrastkit.errors import ConfigError, InvalidParameter, ShapeError
from contrastkit.factories import build_component
from contrastkit.negatives.memory_bank import MemoryBankNegatives, last_occurrence
from contrastkit.objectives.nce import NCEObjective
from contrastkit.pipeline import Pipeline
from contrastkit.registry import Registry
from contrastkit.testing import CONTEXT, check_negative_sampler, check_registered
from contrastkit.training import Trainer
from contrastkit.training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The built-in plugins only (no entry points): memory-bank and nce are registered there."""
    return Registry(entry_points=False)


def sampler(n: int = 20, d: int = 4, m: int = 2, **kwargs: Any) -> MemoryBankNegatives:
    return MemoryBankNegatives(num_views=m, dataset_size=n, embedding_dim=d, **kwargs)


def unit(*shape: int, dtype: torch.dtype = torch.float32, gen: torch.Generator | None = None) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(*shape, dtype=dtype, generator=gen), dim=-1)


# -- contract and parameters -----------------------------------------------------------------------
def test_contract_with_default_parameters(registry: Registry) -> None:
    check_negative_sampler(MemoryBankNegatives(**CONTEXT["negative_samplers"]))
    check_registered("negative_samplers", "memory-bank", registry=registry)


def test_contract_without_excluding_the_positive() -> None:
    check_negative_sampler(sampler(n=64, d=16, exclude_positive=False, num_negatives=7), embedding_dim=16)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"dataset_size": 0}, "dataset_size"),
        ({"dataset_size": 1}, "dataset_size"),  # nothing left to draw once the positive is excluded
        ({"num_negatives": 0}, "num_negatives"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"num_views": 0}, "num_views"),
        ({"positive": "fresh"}, "positive"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    base = {"num_views": 2, "dataset_size": 10, "embedding_dim": 4}
    with pytest.raises(InvalidParameter) as info:
        MemoryBankNegatives(**{**base, **kwargs})
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"{parameter}: ")


def test_a_recipe_error_names_the_table_key(registry: Registry) -> None:
    injected = {"num_views": 2, "dataset_size": 10, "embedding_dim": 4}
    with pytest.raises(ConfigError, match=r"^negatives\.momentum: must be in \[0, 1\) \(got 1\.5\)$"):
        build_component(registry, "negative_samplers", {"name": "memory-bank", "momentum": 1.5},
                        table="negatives", injected=injected)
    with pytest.raises(ConfigError, match=r"^negatives\.dataset_size: memory-bank needs at least 2"):
        build_component(registry, "negative_samplers", "memory-bank", table="negatives",
                        injected={**injected, "dataset_size": 0})
    built = build_component(registry, "negative_samplers", {"name": "memory-bank", "num_negatives": 5},
                            table="negatives", injected=injected)
    assert built.num_negatives == 5 and built.registered_name == "memory-bank"


def test_pipeline_without_data_reports_the_missing_dataset_size(registry: Registry) -> None:
    with pytest.raises(ConfigError, match=r"negatives\.dataset_size: memory-bank needs at least 2 training samples"):
        Pipeline(negatives="memory-bank", encoder={"name": "convnet", "width": 4}, registry=registry)


def test_default_num_negatives_is_bounded_by_the_dataset_but_a_given_one_is_kept() -> None:
    assert sampler(n=10).num_negatives == 9
    assert sampler(n=10, exclude_positive=False).num_negatives == 10
    assert sampler(n=100_000).num_negatives == 4096
    # Drawn with replacement (CMC): an explicit K above the dataset size is honoured, never clipped.
    big = sampler(n=10, num_negatives=32)
    assert big.num_negatives == 32
    z = unit(4, 4)
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    logits = big.pair_logits(critic, z, z, index=torch.arange(4), anchor_view=0, target_view=1).logits
    assert logits.shape == (4, 33)
    with pytest.raises(InvalidParameter, match="num_negatives: must be >= 1"):
        sampler(n=10, num_negatives=0)


def test_initialisation_follows_cmc() -> None:
    torch.manual_seed(0)
    d = 48
    bank = sampler(n=4000, d=d, m=3).bank
    stdv = 1.0 / math.sqrt(d / 3)
    assert bank.shape == (3, 4000, d) and bank.dtype == torch.float32
    assert float(bank.min()) >= -stdv and float(bank.max()) <= stdv
    assert float(bank.min()) < -0.95 * stdv and float(bank.max()) > 0.95 * stdv  # fills the whole interval
    assert float(bank.square().sum(-1).mean()) == pytest.approx(1.0, abs=0.02)  # unit norm in expectation
    normalised = sampler(n=50, d=d, normalize_init=True).bank
    assert torch.allclose(normalised.norm(dim=-1), torch.ones(2, 50))


# -- sampling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 5, 1000])
def test_sampled_indices_are_in_range_and_never_the_positive(n: int) -> None:
    torch.manual_seed(n)
    s = sampler(n=n, num_negatives=64)
    index = torch.randint(0, n, (256,))
    drawn = s.sample_indices(index)
    assert drawn.shape == (256, 64) and drawn.dtype == torch.int64
    assert bool((drawn >= 0).all()) and bool((drawn < n).all())
    assert not bool((drawn == index[:, None]).any())


def test_excluding_the_positive_stays_uniform_over_the_others() -> None:
    torch.manual_seed(0)
    n = 5
    s = sampler(n=n, num_negatives=4)
    index = torch.full((20000,), 2)
    counts = torch.bincount(s.sample_indices(index).flatten(), minlength=n).double()
    assert counts[2] == 0
    others = counts[[0, 1, 3, 4]] / counts.sum()
    assert torch.allclose(others, torch.full((4,), 0.25, dtype=torch.float64), atol=0.01)


def test_without_exclusion_every_index_can_be_drawn() -> None:
    torch.manual_seed(0)
    s = sampler(n=4, num_negatives=4, exclude_positive=False)
    drawn = s.sample_indices(torch.zeros(2000, dtype=torch.long))
    assert set(drawn.unique().tolist()) == {0, 1, 2, 3}


def test_one_randint_call_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = torch.randint

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(args)
        return real(*args, **kwargs)

    s = sampler(n=30, d=4, num_negatives=6)
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    z = unit(8, 4)
    monkeypatch.setattr(torch, "randint", counting)
    s.pair_logits(critic, z, z, index=torch.arange(8), anchor_view=0, target_view=1)
    assert len(calls) == 1


@pytest.mark.parametrize("positive", ["current", "bank"])
def test_logits_score_the_positive_then_the_target_views_bank_rows(positive: str) -> None:
    """Column 0: this step's positive, or (``positive = "bank"``, CMC's) its bank row; then K drawn rows."""
    torch.manual_seed(3)
    n, d, b, tau = 40, 5, 6, 0.3
    s = sampler(n=n, d=d, m=3, num_negatives=7, positive=positive, normalize_init=True)
    critic = CosineCritic(feature_dims=(d, d, d), head="none", temperature=tau)
    anchors, positives = unit(b, d), unit(b, d)
    index = torch.randperm(n)[:b]
    torch.manual_seed(11)
    drawn = s.sample_indices(index)
    torch.manual_seed(11)
    pair = s.pair_logits(critic, anchors, positives, index=index, anchor_view=2, target_view=1)
    assert pair.logits.shape == (b, 8) and pair.target.tolist() == [0] * b
    assert (pair.anchor_view, pair.target_view, pair.num_negatives) == (2, 1, 7)
    bank = s.bank.double()
    for i in range(b):
        current = float(anchors[i].double() @ positives[i].double()) / tau
        if positive == "current":
            assert float(pair.logits[i, 0]) == pytest.approx(current, abs=1e-5)
        else:
            # CMC: memory_ab[index], not this step's positive.
            expected = float(anchors[i].double() @ bank[1, int(index[i])]) / tau
            assert float(pair.logits[i, 0]) == pytest.approx(expected, abs=1e-5)
            assert float(pair.logits[i, 0]) != pytest.approx(current, abs=1e-3)
        for k in range(7):
            expected = float(anchors[i].double() @ bank[1, int(drawn[i, k])]) / tau
            assert float(pair.logits[i, k + 1]) == pytest.approx(expected, abs=1e-5)


def test_gradients_reach_anchors_and_positives_but_not_the_bank() -> None:
    s = sampler(n=30, d=4, num_negatives=5)
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    anchors = unit(6, 4).requires_grad_()
    positives = unit(6, 4).requires_grad_()
    pair = s.pair_logits(critic, anchors, positives, index=torch.arange(6), anchor_view=0, target_view=1)
    torch.nn.functional.cross_entropy(pair.logits, pair.target).backward()
    assert anchors.grad is not None and positives.grad is not None
    assert not s.bank.requires_grad


def test_bank_positive_sends_no_gradient_to_the_positive_and_survives_the_update() -> None:
    s = sampler(n=30, d=4, num_negatives=5, positive="bank")
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    anchors = unit(6, 4).requires_grad_()
    positives = unit(6, 4).requires_grad_()
    index = torch.arange(6)
    pair = s.pair_logits(critic, anchors, positives, index=index, anchor_view=0, target_view=1)
    before = pair.logits.detach().clone()
    s.update([unit(6, 4), unit(6, 4)], index)  # the trainer writes the bank before backward
    torch.nn.functional.cross_entropy(pair.logits, pair.target).backward()
    assert anchors.grad is not None and positives.grad is None
    assert torch.equal(pair.logits.detach(), before)


def test_bank_positive_is_a_recipe_key(registry: Registry) -> None:
    pipe = Pipeline(
        data={"name": "colorful-moving-digits", "size": 32, "image_size": 16, "digit_size": 8},
        encoder={"name": "convnet", "width": 4, "depth": 2},
        negatives={"name": "memory-bank", "num_negatives": 8, "positive": "bank"}, registry=registry,
    )
    assert pipe.negatives.positive == "bank"
    with pytest.raises(ConfigError, match=r"negatives\.positive: must be one of 'current', 'bank' \(got 'bnak'\)"):
        Pipeline(
            data={"name": "colorful-moving-digits", "size": 32, "image_size": 16, "digit_size": 8},
            encoder={"name": "convnet", "width": 4, "depth": 2},
            negatives={"name": "memory-bank", "positive": "bnak"}, registry=registry,
        )


def test_shape_errors() -> None:
    s = sampler(n=20, d=4)
    critic = CosineCritic(feature_dims=(4, 4), head="none")
    z = unit(3, 4)
    with pytest.raises(ShapeError, match="must both be"):
        s.pair_logits(critic, z, unit(2, 4), index=torch.arange(3), anchor_view=0, target_view=1)
    with pytest.raises(ShapeError, match="embedding_dim = 4"):
        s.pair_logits(critic, unit(3, 5), unit(3, 5), index=torch.arange(3), anchor_view=0, target_view=1)
    with pytest.raises(ShapeError, match="index"):
        s.pair_logits(critic, z, z, index=torch.arange(4), anchor_view=0, target_view=1)
    with pytest.raises(ShapeError, match="2 views"):
        s.update([z], torch.arange(3))
    with pytest.raises(ShapeError, match=r"\[B, 4\]"):
        s.update([z, z], torch.arange(4))


# -- update ----------------------------------------------------------------------------------------
def naive_update(bank: torch.Tensor, embeddings: list[torch.Tensor], index: torch.Tensor, m: float) -> torch.Tensor:
    """CMC's update written out row by row in float64 (index without duplicates)."""
    out = bank.clone()
    for v, z in enumerate(embeddings):
        for b, i in enumerate(index.tolist()):
            row = [m * float(out[v, i, c]) + (1 - m) * float(z[b, c]) for c in range(out.shape[2])]
            norm = math.sqrt(sum(x * x for x in row))
            for c in range(out.shape[2]):
                out[v, i, c] = row[c] / norm
    return out


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_update_matches_the_float64_reference(momentum: float) -> None:
    gen = torch.Generator().manual_seed(int(momentum * 10))
    n, d, b = 25, 6, 7
    s = sampler(n=n, d=d, m=3, momentum=momentum).double()
    assert s.bank.dtype == torch.float64
    before = s.bank.clone()
    index = torch.randperm(n, generator=gen)[:b]
    embeddings = [unit(b, d, dtype=torch.float64, gen=gen) for _ in range(3)]
    s.update(embeddings, index)
    expected = naive_update(before, embeddings, index, momentum)
    assert torch.allclose(s.bank, expected, atol=1e-12, rtol=0)


def test_update_touches_only_the_batch_rows_and_leaves_them_unit_norm() -> None:
    torch.manual_seed(0)
    n, d = 50, 8
    s = sampler(n=n, d=d, m=2)
    before = s.bank.clone()
    index = torch.tensor([3, 17, 42, 0])
    s.update([unit(4, d), unit(4, d)], index)
    touched = torch.zeros(n, dtype=torch.bool)
    touched[index] = True
    assert torch.equal(s.bank[:, ~touched], before[:, ~touched])
    assert torch.allclose(s.bank[:, touched].norm(dim=-1), torch.ones(2, 4))
    assert not torch.equal(s.bank[:, touched], before[:, touched])


def test_update_accepts_low_precision_embeddings_and_keeps_a_float32_bank() -> None:
    s = sampler(n=10, d=4)
    s.update([unit(3, 4).bfloat16(), unit(3, 4).bfloat16()], torch.tensor([1, 2, 3]))
    assert s.bank.dtype == torch.float32
    assert torch.allclose(s.bank[:, 1:4].norm(dim=-1), torch.ones(2, 3), atol=1e-5)


def test_duplicate_indices_write_their_last_occurrence() -> None:
    s = sampler(n=10, d=4, momentum=0.5).double()
    before = s.bank.clone()
    z = [unit(4, 4, dtype=torch.float64) for _ in range(2)]
    s.update(z, torch.tensor([7, 2, 7, 5]))
    expected = naive_update(before, [e[[1, 2, 3]] for e in z], torch.tensor([2, 7, 5]), 0.5)
    assert torch.allclose(s.bank, expected, atol=1e-12, rtol=0)


def test_last_occurrence_matches_a_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    index = torch.randint(0, 6, (50,), generator=gen)
    expected = [max(q for q in range(50) if index[q] == index[p]) for p in range(50)]
    assert last_occurrence(index).tolist() == expected


# -- in a pipeline: checkpoints, training ------------------------------------------------------------
def tiny_pipeline(n: int = 32, **kwargs: Any) -> Pipeline:
    return Pipeline(
        encoder={"name": "convnet", "width": 4, "depth": 2},
        critic={"name": "cosine", "embedding_dim": 8, "temperature": 0.2},
        negatives=MemoryBankNegatives(num_views=2, dataset_size=n, embedding_dim=8, num_negatives=16),
        dataset_size=n,
        **kwargs,
    )


def test_bank_round_trips_through_the_pipeline_state_dict() -> None:
    torch.manual_seed(0)
    pipe = tiny_pipeline()
    pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    state = pipe.state_dict()
    assert "negatives.bank" in state and state["negatives.bank"].shape == (2, 32, 8)
    torch.manual_seed(1)
    fresh = tiny_pipeline()
    assert not torch.equal(fresh.negatives.bank, pipe.negatives.bank)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.negatives.bank, pipe.negatives.bank)


def test_eval_mode_leaves_the_bank_alone() -> None:
    pipe = tiny_pipeline().eval()
    before = pipe.negatives.bank.clone()
    pipe({"image": torch.rand(8, 3, 16, 16), "index": torch.arange(8)})
    assert torch.equal(pipe.negatives.bank, before)


@pytest.mark.parametrize("objective", ["infonce", "nce"])
def test_a_few_optimizer_steps_train_and_fill_the_bank(objective: str) -> None:
    torch.manual_seed(0)
    n = 32
    pipe = tiny_pipeline(n, objective=NCEObjective(dataset_size=n) if objective == "nce" else "infonce")
    optimizer = torch.optim.SGD(pipe.parameters(), lr=0.05)
    initial = pipe.negatives.bank.clone()
    images = torch.rand(n, 3, 16, 16)
    for step in range(4):
        index = torch.arange(step * 8, step * 8 + 8)
        out = pipe({"image": images[index], "index": index})
        assert torch.isfinite(out.loss)
        assert (objective == "nce") == ("mi_lower_bound/v1-v2" not in out.metrics)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    changed = (pipe.negatives.bank != initial).any(-1)
    assert bool(changed.all())  # every sample was in one batch
    assert torch.allclose(pipe.negatives.bank.norm(dim=-1), torch.ones(2, n), atol=1e-5)


def _recipe(out_dir: Path, **train: Any) -> dict[str, Any]:
    return {
        "data": {"name": "colorful-moving-digits", "size": 48, "image_size": 16, "digit_size": 8},
        "augment": {"name": "crop-flip"},
        "encoder": {"name": "convnet", "width": 4, "depth": 2},
        "critic": {"name": "cosine", "embedding_dim": 8},
        "negatives": {"name": "memory-bank", "num_negatives": 16},
        "objective": {"name": "nce", "dataset_size": 48, "z_mode": "running"},
        "train": {"batch_size": 8, "device": "cpu", "out_dir": str(out_dir), "deterministic": True,
                  "optimizer": "sgd", **train},
        "eval": {"knn": False},
        "log": {"progress": False, "every_n_steps": 2, "images_every_n_steps": 0, "projector_samples": 0},
    }


def _trainer(raw: dict[str, Any], registry: Registry) -> Trainer:
    config = config_from_dict(raw)
    torch.manual_seed(config.train.seed)
    pipeline = Pipeline.from_config(config, registry=registry)
    return Trainer(pipeline, train=config.train, eval=config.eval, log=config.log, config=config,
                   print_fn=lambda _: None)


def test_trainer_checkpoints_and_resumes_the_bank_and_z_to_the_bit(tmp_path: Path, registry: Registry) -> None:
    raw = _recipe(tmp_path / "a", max_steps=7, checkpoint_every_n_steps=3, keep_checkpoints=5)
    result = _trainer(raw, registry).fit()
    reference = load_checkpoint(result.checkpoint)["model"]
    assert math.isfinite(result.final_metrics["loss"])
    assert int(reference["objective.z_updates"]) == 7 * 2  # one per direction per step
    start = load_checkpoint(tmp_path / "a" / "checkpoints" / "step-00000003.pt")["model"]
    assert not torch.equal(start["negatives.bank"], reference["negatives.bank"])

    run_dir = tmp_path / "b"
    (run_dir / "checkpoints").mkdir(parents=True)
    source = tmp_path / "a" / "checkpoints" / "step-00000003.pt"
    (run_dir / "checkpoints" / source.name).write_bytes(source.read_bytes())
    resumed = _trainer({**raw, "train": {**raw["train"], "out_dir": str(run_dir)}}, registry).fit(resume=True)
    assert resumed.resumed_from is not None and resumed.steps == 7
    final = load_checkpoint(resumed.checkpoint)["model"]
    assert final.keys() == reference.keys()
    for key in reference:
        assert torch.equal(final[key], reference[key]), f"{key} differs after resuming"


@pytest.mark.parametrize("page", ["negatives/memory-bank.md", "objectives/nce.md"])
def test_the_docs_recipes_build_and_train_a_step(page: str, registry: Registry) -> None:
    text = (REPO / "docs" / page).read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    raw = tomllib.loads(blocks[0])
    raw["data"] = {**raw.get("data", {}), "name": "colorful-moving-digits", "size": 40, "image_size": 16, "digit_size": 8}
    raw["objective"]["dataset_size"] = 40
    raw["encoder"] = {"name": "convnet", "width": 4, "depth": 2}
    pipe = Pipeline.from_config(config_from_dict(raw), registry=registry)
    assert isinstance(pipe.negatives, MemoryBankNegatives) and isinstance(pipe.objective, NCEObjective)
    assert pipe.negatives.num_negatives == 4096 and pipe.negatives.dataset_size == 40
    before = pipe.negatives.bank.clone()
    batch = {k: torch.stack([pipe.dataset[i][k] for i in range(8)]) for k in ("image", "index")}
    out = pipe(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and not torch.equal(pipe.negatives.bank, before)


# -- distributed -------------------------------------------------------------------------------------
_DDP_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    from contrastkit.critics.cosine import CosineCritic
    from contrastkit.negatives.memory_bank import MemoryBankNegatives
    from contrastkit.objectives.nce import NCEObjective

    N, D, B, K = 40, 6, 5, 9


    class Deterministic(MemoryBankNegatives):
        # The same negatives on any number of ranks: index + 1, ..., index + K (mod N).
        def sample_indices(self, index):
            return (index[:, None] + torch.arange(1, self.num_negatives + 1)) % self.dataset_size


    def step(world, rank, out):
        torch.manual_seed(0)
        sampler = Deterministic(num_views=2, dataset_size=N, embedding_dim=D, num_negatives=K)
        objective = NCEObjective(dataset_size=N)
        critic = CosineCritic(feature_dims=(D, D), head="none", temperature=0.5)
        gen = torch.Generator().manual_seed(1)
        index = torch.randperm(N, generator=gen)[: 2 * B]
        z = [critic.embed(torch.randn(2 * B, D, generator=gen), v) for v in range(2)]
        mine = slice(rank * B, (rank + 1) * B) if world == 2 else slice(0, 2 * B)
        pair = sampler.pair_logits(critic, z[0][mine], z[1][mine], index=index[mine], anchor_view=0, target_view=1)
        loss = objective(pair.logits, pair.target)
        sampler.update([e[mine] for e in z], index[mine])
        # a second step whose negatives read the rows just written
        pair = sampler.pair_logits(critic, z[1][mine], z[0][mine], index=index[mine], anchor_view=1, target_view=0)
        loss2 = objective(pair.logits, pair.target)
        torch.save({"bank": sampler.bank, "log_z": objective.log_z, "loss": loss.detach(),
                    "loss2": loss2.detach()}, f"{out}/result-{world}-{rank}.pt")


    def worker(rank, out):
        dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank, world_size=2)
        try:
            step(2, rank, out)
        finally:
            dist.destroy_process_group()


    if __name__ == "__main__":
        out = sys.argv[1]
        step(1, 0, out)
        mp.spawn(worker, args=(out,), nprocs=2)
    """
)


def test_two_gloo_ranks_keep_the_bank_of_one_process_with_the_whole_batch(tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))  # keep what is set
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    single = torch.load(tmp_path / "result-1-0.pt")
    ranks = [torch.load(tmp_path / f"result-2-{r}.pt") for r in range(2)]
    for key in ("bank", "log_z"):
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key} differs between ranks"
        assert torch.allclose(ranks[0][key].double(), single[key].double(), atol=1e-6), f"{key} differs from one process"
    for key in ("loss", "loss2"):  # each rank's loss is the mean over its half
        assert float((ranks[0][key] + ranks[1][key]) / 2) == pytest.approx(float(single[key]), abs=1e-5)


# -- CUDA ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_everything_stays_on_the_device_and_duplicate_writes_are_deterministic() -> None:
    torch.manual_seed(0)
    n, d, b = 1000, 16, 512
    cpu = sampler(n=n, d=d, num_negatives=64)
    gpu = sampler(n=n, d=d, num_negatives=64).cuda()
    gpu.load_state_dict(cpu.state_dict())
    critic = CosineCritic(feature_dims=(d, d), head="none")
    index = torch.randint(0, 40, (b,))  # every index many times over
    z = [unit(b, d), unit(b, d)]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        pair = gpu.pair_logits(critic, z[0].cuda(), z[1].cuda(), index=index.cuda(), anchor_view=0, target_view=1)
    assert pair.logits.is_cuda and pair.target.is_cuda and pair.logits.shape == (b, 65)
    assert not bool((gpu.sample_indices(index.cuda()) == index.cuda()[:, None]).any())
    for _ in range(3):
        gpu.update([e.cuda() for e in z], index.cuda())
        cpu.update(z, index)
    assert torch.allclose(gpu.bank.cpu(), cpu.bank, atol=1e-6)


# -- shared negatives ---------------------------------------------------------------------------------
def test_shared_negatives_score_one_draw_for_the_whole_batch_and_mask_the_anchor_itself() -> None:
    torch.manual_seed(5)
    n, d, b, k, tau = 40, 4, 5, 30, 0.2
    s = sampler(n=n, d=d, m=2, num_negatives=k, shared_negatives=True)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=tau)
    anchors, positives = unit(b, d), unit(b, d)
    index = torch.tensor([0, 3, 5, 7, 11, 13, 17, 19, 23, 29])[:b]
    torch.manual_seed(2)
    drawn = torch.randint(0, n, (k,))  # the one draw pair_logits makes
    torch.manual_seed(2)
    pair = s.pair_logits(critic, anchors, positives, index=index, anchor_view=0, target_view=1)
    assert pair.logits.shape == (b, k + 1) and pair.num_negatives == k
    bank = s.bank.double()
    masked = 0
    for i in range(b):
        assert float(pair.logits[i, 0]) == pytest.approx(float(anchors[i].double() @ positives[i].double()) / tau, abs=1e-5)
        for j in range(k):
            if int(drawn[j]) == int(index[i]):
                assert pair.logits[i, j + 1] == float("-inf")
                masked += 1
            else:
                expected = float(anchors[i].double() @ bank[1, int(drawn[j])]) / tau
                assert float(pair.logits[i, j + 1]) == pytest.approx(expected, abs=1e-5)
    assert masked > 0  # 30 draws from 40 rows: some anchors met their own row, masked
    loss = torch.nn.functional.cross_entropy(pair.logits, pair.target)
    assert torch.isfinite(loss)
    check_negative_sampler(MemoryBankNegatives(**CONTEXT["negative_samplers"], shared_negatives=True))


def test_shared_negatives_gather_k_rows_not_b_times_k(monkeypatch: pytest.MonkeyPatch) -> None:
    s = sampler(n=100, d=8, m=2, num_negatives=16, shared_negatives=True)
    critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.1)
    seen: list[tuple[int, ...]] = []
    original = critic.score

    def recording(anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(candidates.shape))
        return original(anchors, candidates)

    monkeypatch.setattr(critic, "score", recording)
    s.pair_logits(critic, unit(32, 8), unit(32, 8), index=torch.arange(32), anchor_view=0, target_view=1)
    assert (16, 8) in seen and not any(len(shape) == 3 and shape[1] == 16 for shape in seen)


# -- dense vs gather scoring -------------------------------------------------------------------------
@pytest.mark.parametrize("max_scores", [2**25, 37])  # one product, or several anchor chunks
def test_dense_scoring_gives_the_gathered_scores_and_gradients(max_scores: int) -> None:
    from contrastkit.negatives.memory_bank import score_drawn_rows

    gen = torch.Generator().manual_seed(3)
    n, d, b, k = 50, 6, 7, 30
    rows = unit(n, d, dtype=torch.float64, gen=gen)
    drawn = torch.randint(0, n, (b, k), generator=gen)
    critic = CosineCritic(feature_dims=(d, d), head="none", temperature=0.3).double()
    grads = []
    for dense in (False, True):
        anchors = unit(b, d, dtype=torch.float64, gen=torch.Generator().manual_seed(4)).requires_grad_(True)
        scores = score_drawn_rows(critic, anchors, rows, drawn, dense=dense, max_scores=max_scores)
        # Naive float64 reference: a loop over anchors and draws.
        expected = torch.tensor([[float(anchors.detach()[i] @ rows[j]) / 0.3 for j in drawn[i]] for i in range(b)],
                                dtype=torch.float64)
        torch.testing.assert_close(scores.detach(), expected, rtol=0, atol=1e-12)
        (scores * torch.linspace(-1, 1, k, dtype=torch.float64)).sum().backward()
        grads.append(anchors.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_scoring_modes_agree_through_pair_logits_with_the_same_draws() -> None:
    critic = CosineCritic(feature_dims=(8, 8), head="none", temperature=0.1)
    z1, z2 = unit(5, 8), unit(5, 8)
    index = torch.tensor([0, 3, 7, 8, 19])
    out = []
    for scoring in ("gather", "dense"):
        torch.manual_seed(11)
        s = sampler(n=20, d=8, num_negatives=12, scoring=scoring)
        torch.manual_seed(12)
        out.append(s.pair_logits(critic, z1, z2, index=index, anchor_view=0, target_view=1).logits)
    torch.testing.assert_close(out[0], out[1])


def test_auto_scoring_is_dense_only_while_the_bank_is_at_most_32_k() -> None:
    assert sampler(n=32 * 100, num_negatives=100).dense_scoring
    assert not sampler(n=32 * 100 + 1, num_negatives=100).dense_scoring
    assert sampler(n=10**4, num_negatives=10, scoring="dense").dense_scoring
    assert not sampler(n=20, num_negatives=10, scoring="gather").dense_scoring
    assert "scoring=auto (dense)" in repr(sampler(n=20, num_negatives=10))
    with pytest.raises(InvalidParameter, match="scoring: must be"):
        sampler(scoring="sparse")


def test_dense_scoring_backward_survives_the_in_place_bank_update() -> None:
    # The pipeline updates the bank after the forward and before the backward.
    critic = CosineCritic(feature_dims=(8, 8), head="none")
    s = sampler(n=30, d=8, num_negatives=10, scoring="dense")
    z1, z2 = unit(4, 8).requires_grad_(True), unit(4, 8)
    logits = s.pair_logits(critic, z1, z2, index=torch.arange(4), anchor_view=0, target_view=1).logits
    before = logits.detach().clone()
    s.update([z1.detach(), z2], torch.arange(4))
    torch.nn.functional.cross_entropy(logits, torch.zeros(4, dtype=torch.long)).backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all()
    torch.testing.assert_close(logits.detach(), before)
