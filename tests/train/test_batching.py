"""Length-grouped batches (non-private) and length-sorted physical batches under DP."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from steward.train.loop import EpochSampler, physical_batches


def _padding(order: list[int], lengths: list[int], batch: int) -> int:
    """Padded token slots when ``order`` is cut into batches and each is padded to its longest row."""
    total = 0
    for k in range(0, len(order), batch):
        part = [lengths[i] for i in order[k:k + batch]]
        total += max(part) * len(part) - sum(part)
    return total


def test_grouped_order_is_a_reproducible_permutation_with_far_less_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.choice([3, 5, 8, 12, 20, 40, 60]) for _ in range(2000)]
    grouped = EpochSampler(len(lengths), seed=7, lengths=lengths, batch_size=32)
    plain = EpochSampler(len(lengths), seed=7)
    first = list(grouped)
    assert sorted(first) == list(range(len(lengths)))
    assert list(grouped) == first  # same epoch, same order: resume can replay it
    grouped.set_epoch(1)
    second = list(grouped)
    assert second != first and sorted(second) == sorted(first)
    assert _padding(first, lengths, 32) < 0.2 * _padding(list(plain), lengths, 32)
    # Batches are not simply sorted by length across the epoch: the first batches are a mix.
    heads = [max(lengths[i] for i in first[k:k + 32]) for k in range(0, 320, 32)]
    assert len(set(heads)) > 2


def test_short_tail_batch_stays_last() -> None:
    lengths = list(range(1, 101))
    order = list(EpochSampler(100, seed=1, lengths=lengths, batch_size=32))
    assert len(set(order[96:])) == 4 and sorted(order) == list(range(100))


def _batch(lengths: list[int], ner: bool = False) -> dict[str, torch.Tensor]:
    width = max(lengths)
    ids = torch.zeros((len(lengths), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.arange(1, n + 1) + 100 * i
        mask[i, :n] = 1
    labels = torch.where(mask.bool(), ids % 3, -100) if ner else torch.arange(len(lengths)) % 2
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weight": torch.ones(len(lengths))}


@pytest.mark.parametrize("ner", [False, True])
def test_physical_batches_keep_every_row_and_trim_padding(ner: bool) -> None:
    batch = _batch([5, 1, 9, 3, 7, 2, 9], ner=ner)
    parts = physical_batches(batch, 3, token_labels=ner)
    assert [len(p["weight"]) for p in parts] == [3, 3, 1]
    widths = [p["input_ids"].shape[1] for p in parts]
    assert widths == [9, 5, 1]  # sorted longest first, each trimmed to its own longest row
    rows = sorted(tuple(r[r > 0].tolist()) for p in parts for r in p["input_ids"])
    assert rows == sorted(tuple(r[r > 0].tolist()) for r in batch["input_ids"])
    for p in parts:
        if ner:
            assert p["labels"].shape == p["input_ids"].shape
            assert torch.equal(p["labels"] == -100, p["attention_mask"] == 0)
        else:
            assert p["labels"].shape == (len(p["weight"]),)
    assert physical_batches(batch, 64, token_labels=ner) == [batch]


def test_dp_update_is_the_same_however_the_poisson_batch_is_split(tiny_model: Path) -> None:
    """With noise off, one DP-SGD step over physical batches of 2 equals the step over the whole batch."""
    from opacus import PrivacyEngine
    from transformers import AutoModelForSequenceClassification

    from steward.config import parse_config
    from steward.train.loop import _explicit_ids, _private_step

    batch = _batch([6, 2, 11, 4, 9, 3, 7])
    batch["weight"] = torch.tensor([1.0, 0.5, 2.0, 1.0, 1.0, 1.5, 1.0])
    data = SimpleNamespace(task="classification", multi_label=False)  # all a step reads of TrainData
    updates = []
    for size in (64, 2):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        loader = torch.utils.data.DataLoader(list(range(70)), batch_size=7)
        model, opt, _ = PrivacyEngine().make_private(module=model, optimizer=opt, data_loader=loader,
                                                     noise_multiplier=0.0, max_grad_norm=0.05,
                                                     poisson_sampling=False)
        cfg = parse_config({"train": {"privacy": {"enabled": True, "physical_batch_size": size}}}).train
        _private_step(model, opt, batch, _explicit_ids(model, data.task), cfg, data)  # type: ignore[arg-type]
        updates.append({n.removeprefix("_module."): p.detach() - before[n.removeprefix("_module.")]
                        for n, p in model.named_parameters()})
    whole, split = updates
    assert any(float(v.abs().max()) > 0 for v in whole.values())
    for name, delta in whole.items():
        torch.testing.assert_close(split[name], delta, atol=1e-6, rtol=1e-4, msg=name)
