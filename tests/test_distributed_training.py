"""The Trainer under torch.distributed (gloo, CPU): W processes with batch B match one with batch W*B."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    from contrastkit.config import EvalConfig, LogConfig, TrainConfig
    from contrastkit.negatives.memory_bank import MemoryBankNegatives
    from contrastkit.pipeline import Pipeline
    from contrastkit.training import Trainer

    N, B = 64, 8


    class Deterministic(MemoryBankNegatives):
        # The same negatives whatever the number of ranks: index + 1, ..., index + K (mod N).
        def sample_indices(self, index):
            return (index[:, None] + torch.arange(1, self.num_negatives + 1)) % self.dataset_size


    def run(world, rank, out, negatives, steps):
        torch.manual_seed(0)
        sampler = "in-batch" if negatives == "in-batch" else Deterministic(
            num_views=2, dataset_size=N, embedding_dim=16, num_negatives=12)
        pipe = Pipeline(
            data={"name": "colorful-moving-digits", "size": N, "image_size": 16, "digit_size": 8},
            encoder={"name": "convnet", "width": 4, "depth": 2, "norm": "group"},  # per sample: no BN coupling
            critic={"name": "cosine", "head": "linear", "embedding_dim": 16, "temperature": 0.5},
            negatives=sampler,
        )
        train = TrainConfig(batch_size=2 * B // world, max_steps=steps, optimizer="sgd", momentum=0.0, lr=0.5,
                            weight_decay=0.0, device="cpu", out_dir=f"{out}/{negatives}-{world}", seed=0,
                            checkpoint_every_n_steps=1)
        trainer = Trainer(pipe, train=train, eval=EvalConfig(knn=False, linear=False),
                          log=LogConfig(progress=False, tensorboard=False, every_n_steps=1), print_fn=lambda _: None)
        result = trainer.fit()
        torch.save({"state": pipe.state_dict(), "loss": result.final_metrics["loss"]},
                   f"{out}/{negatives}-{world}-{rank}-{steps}.pt")


    def worker(rank, out, negatives, steps):
        dist.init_process_group("gloo", init_method=f"file://{out}/store-{negatives}-{steps}", rank=rank,
                                world_size=2)
        try:
            run(2, rank, out, negatives, steps)
        finally:
            dist.destroy_process_group()


    if __name__ == "__main__":
        out, negatives, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
        run(1, 0, out, negatives, steps)
        mp.spawn(worker, args=(out, negatives, steps), nprocs=2)
    """
)


def _run(tmp_path: Path, negatives: str, steps: int) -> tuple[dict, dict, dict]:
    script = tmp_path / "ddp_train.py"
    script.write_text(_SCRIPT)
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))  # keep what is set
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path), negatives, str(steps)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    load = lambda w, r: torch.load(tmp_path / f"{negatives}-{w}-{r}-{steps}.pt")  # noqa: E731
    return load(1, 0), load(2, 0), load(2, 1)


@pytest.mark.parametrize("negatives", ["in-batch", "memory-bank"])
def test_two_ranks_with_batch_b_take_the_step_of_one_process_with_batch_2b(tmp_path: Path, negatives: str) -> None:
    single, rank0, rank1 = _run(tmp_path, negatives, steps=1)
    # Each rank's loss is the mean over its own anchors; their mean is the whole batch's loss.
    assert (rank0["loss"] + rank1["loss"]) / 2 == pytest.approx(single["loss"], rel=1e-5)
    # After one SGD step the weights (so the averaged gradients) match the single process's.
    for name, value in single["state"].items():
        torch.testing.assert_close(rank0["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        torch.testing.assert_close(rank1["state"][name], rank0["state"][name], rtol=0, atol=0, msg=name)
    # One set of outputs: rank 0 alone wrote the checkpoints.
    assert (tmp_path / f"{negatives}-2" / "checkpoints" / "final.pt").is_file()


def test_memory_banks_stay_identical_across_ranks_and_match_one_process(tmp_path: Path) -> None:
    single, rank0, rank1 = _run(tmp_path, "memory-bank", steps=3)
    assert torch.equal(rank0["state"]["negatives.bank"], rank1["state"]["negatives.bank"])
    torch.testing.assert_close(rank0["state"]["negatives.bank"], single["state"]["negatives.bank"], rtol=1e-4,
                               atol=1e-5)
