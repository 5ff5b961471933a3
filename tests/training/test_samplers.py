"""The training batch samplers: the default shuffled batches and InfoMin's alternating labelled batches."""

from __future__ import annotations

import pytest
import torch

from contrastkit.training.samplers import AlternatingBatchSampler

LABELLED = torch.tensor([1, 4, 6, 9, 13, 17, 22, 30])  # 8 of 40


def sampler(**kw) -> AlternatingBatchSampler:
    return AlternatingBatchSampler(40, **{"labelled": LABELLED, "batch_size": 4, "seed": 0, **kw})


def test_batches_alternate_whole_labelled_and_whole_unlabelled_batches() -> None:
    labelled = set(LABELLED.tolist())
    batches = list(sampler())
    assert len(batches) == 2 * (32 // 4) == sampler().batches_per_epoch
    for i, batch in enumerate(batches):
        assert len(batch) == len(set(batch)) == 4
        assert (set(batch) <= labelled) if i % 2 == 0 else not set(batch) & labelled
    unlabelled = [i for b in batches[1::2] for i in b]
    assert sorted(unlabelled) == sorted(set(range(40)) - labelled)  # each unlabelled sample once an epoch
    seen = [i for b in batches[0::2] for i in b]
    assert {seen.count(i) for i in labelled} == {4}  # 8 labelled batches of 4 = four passes over 8 samples


def test_order_depends_only_on_seed_and_epoch_and_resumes_mid_epoch() -> None:
    assert list(sampler()) == list(sampler())
    assert list(sampler()) != list(sampler(seed=1))
    s = sampler()
    s.set_epoch(1)
    epoch1 = list(s)
    assert epoch1 != list(sampler())
    s.set_epoch(1, start_batch=5)
    assert list(s) == epoch1[5:] and len(s) == len(epoch1) - 5


def test_ranks_split_the_global_batches_of_one_process() -> None:
    whole = list(sampler(batch_size=4))
    halves = [list(sampler(batch_size=2, rank=r, world_size=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == whole


@pytest.mark.parametrize(("labelled", "message"), [
    (torch.tensor([0, 1, 2]), "3 labelled samples cannot fill one batch of 4"),
    (torch.arange(38), "2 unlabelled samples cannot fill one batch of 4"),
    (torch.tensor([0, 40]), r"labelled indices must lie in \[0, 40\)"),
])
def test_sets_too_small_for_a_batch_or_out_of_range_are_refused(labelled: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sampler(labelled=labelled)

