"""The training loop: weighted loss, AdamW with warmup/decay, clipping or DP-SGD, early stopping,
checkpoints and exact resume. Runs unchanged under ``accelerate launch`` (DDP) when not private.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steward.config.loader import config_digest
from steward.config.models import TrainConfig
from steward.errors import ConfigError, TrainStageError
from steward.metrics import classification_metrics, multilabel_metrics, ner_metrics
from steward.progress import progress_bar
from steward.tracking import Tracker
from steward.train import checkpoint
from steward.train.data import IGNORE_INDEX, TrainData, collate

StepCallback = Callable[[int, float], None]


@dataclass
class LoopResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    metric_name: str = ""
    epochs_run: int = 0
    global_step: int = 0
    seconds: float = 0.0
    samples_per_second: float = 0.0
    stopped_early: bool = False
    privacy: dict[str, Any] | None = None
    model: Any = None  # the unwrapped model with the best epoch's weights


class EpochSampler:
    """A fresh permutation per epoch from ``seed + epoch``: the data order of any epoch can be replayed
    exactly on resume, independent of what ran before.

    With ``lengths`` the permutation is length-grouped the way transformers' ``LengthGroupedSampler`` does
    it: shuffle, cut into mega-batches of 50 batches, sort each by length, then shuffle the batches. A
    DataLoader cutting it into ``batch_size`` chunks gets batches of similar length (little padding) in a
    random order; accelerate shards those whole batches across processes unchanged.
    """

    MEGA = 50

    def __init__(self, n: int, seed: int, lengths: list[int] | None = None, batch_size: int = 1) -> None:
        self.n, self.seed, self.epoch = n, seed, 0
        self.lengths, self.batch_size = lengths, batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # type: ignore[no-untyped-def]
        import torch

        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        if self.lengths is None or self.batch_size <= 1:
            return iter(perm)
        mega = self.MEGA * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, self.n, mega):
            chunk = sorted(perm[start:start + mega], key=lambda i: -self.lengths[i])  # type: ignore[index]
            batches.extend(chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size))
        # The last batch may be short: keep it last so every other batch is full.
        full, tail = (batches[:-1], batches[-1:]) if len(batches[-1]) < self.batch_size else (batches, [])
        order = torch.randperm(len(full), generator=g).tolist()
        return iter([i for b in [full[k] for k in order] + tail for i in b])

    def __len__(self) -> int:
        return self.n


def physical_batches(batch: dict[str, Any], size: int, token_labels: bool) -> list[dict[str, Any]]:
    """Split one (Poisson) batch into length-sorted chunks of ``size`` rows, each trimmed to its longest row.

    Per-example gradients do not depend on how rows are grouped, so DP-SGD's clipped sum is unchanged while
    padding (most of the compute on short texts) mostly disappears.
    """
    n = len(batch["weight"])
    if n <= size:
        return [batch]
    lengths = batch["attention_mask"].sum(1)
    order = lengths.argsort(descending=True)
    out = []
    for k in range(0, n, size):
        idx = order[k:k + size]
        width = int(lengths[idx].max())
        part = {key: v[idx] for key, v in batch.items()}
        for key in ("input_ids", "attention_mask", *(("labels",) if token_labels else ())):
            part[key] = part[key][:, :width]
        out.append(part)
    return out


def metric_name(cfg: TrainConfig, task: str) -> str:
    if cfg.early_stopping.metric != "auto":
        return cfg.early_stopping.metric
    return "entity_f1" if task == "ner" else "macro_f1"


def weighted_loss(logits: Any, labels: Any, weight: Any, task: str, multi_label: bool) -> Any:
    """Per-example loss times its sample weight, averaged over the batch (what Opacus expects: 'mean')."""
    import torch.nn.functional as F

    if task == "ner":
        per_tok = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
        valid = (labels != IGNORE_INDEX).float()
        per_ex = (per_tok * valid).sum(1) / valid.sum(1).clamp(min=1.0)
    elif multi_label:
        per_ex = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)
    else:
        per_ex = F.cross_entropy(logits, labels, reduction="none")
    return (per_ex * weight).mean()


def evaluate(model: Any, examples: list[dict[str, Any]], data: TrainData, tokenizer: Any, batch_size: int) -> dict[str, float]:
    """Validation metrics and unweighted loss, on the whole set (every process sees the same numbers)."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(examples, batch_size=batch_size, shuffle=False, collate_fn=collate(tokenizer, data.task))
    was_training = model.training
    model.eval()
    losses, preds, golds = [], [], []
    with torch.no_grad():
        for batch in loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            losses.append(float(weighted_loss(logits, batch["labels"], torch.ones_like(batch["weight"]), data.task,
                                              data.multi_label)) * len(batch["weight"]))
            if data.task == "ner":
                pred = logits.argmax(-1)
                for p_row, g_row in zip(pred.tolist(), batch["labels"].tolist(), strict=True):
                    keep = [i for i, g in enumerate(g_row) if g != IGNORE_INDEX]
                    preds.append([data.labels[p_row[i]] for i in keep])
                    golds.append([data.labels[g_row[i]] for i in keep])
            elif data.multi_label:
                preds.append((torch.sigmoid(logits) >= 0.5).int().numpy())
                golds.append(batch["labels"].int().numpy())
            else:
                preds.extend(logits.argmax(-1).tolist())
                golds.extend(batch["labels"].tolist())
    model.train(was_training)
    if data.task == "ner":
        out = ner_metrics(golds, preds)
    elif data.multi_label:
        out = multilabel_metrics(np.concatenate(golds), np.concatenate(preds))
    else:
        out = classification_metrics(golds, preds, n_labels=len(data.labels))
    out["loss"] = sum(losses) / len(examples)
    return out


def _explicit_ids(model: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Model inputs with per-example ``token_type_ids`` and ``position_ids`` where the model takes them.

    BERT-like models otherwise broadcast a (1, T) buffer over the batch; Opacus then sees a batch of one
    in those embeddings and cannot form per-example gradients.
    """
    import inspect

    import torch

    accepted = set(inspect.signature(_unwrap(model).forward).parameters)
    if "kwargs" in accepted and hasattr(_unwrap(model), "get_base_model"):  # peft wrappers forward **kwargs
        accepted |= set(inspect.signature(_unwrap(model).get_base_model().forward).parameters)

    def inputs(batch: dict[str, Any]) -> dict[str, Any]:
        out = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        b, t = batch["input_ids"].shape
        if "token_type_ids" in accepted:
            out["token_type_ids"] = torch.zeros((b, t), dtype=torch.long)
        if "position_ids" in accepted:
            out["position_ids"] = torch.arange(t).unsqueeze(0).repeat(b, 1)
        return out

    return inputs


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr())


def _unwrap(model: Any) -> Any:
    return getattr(model, "_module", model)  # Opacus' GradSampleModule keeps the real model here


def run_loop(model: Any, tokenizer: Any, data: TrainData, train_ex: list[dict[str, Any]], val_ex: list[dict[str, Any]],
             cfg: TrainConfig, work_dir: Path, *, resume: bool, tracker: Tracker,
             on_step: StepCallback | None = None, progress: bool = False) -> LoopResult:
    import torch
    from accelerate import Accelerator
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    private = cfg.privacy.enabled
    if private and accelerator.num_processes > 1:
        raise ConfigError("train.privacy.enabled with several processes is not supported; run DP training in one "
                          "process (plain `steward train`, not `accelerate launch`)")
    digest = config_digest(cfg)
    last_dir, best_dir = work_dir / "last", work_dir / "best"
    if not resume and accelerator.is_main_process and (last_dir.exists() or best_dir.exists()):
        import shutil

        shutil.rmtree(work_dir)  # a fresh run starts fresh; resume is explicit
    accelerator.wait_for_everyone()
    if resume:
        prev = checkpoint.read_progress(last_dir)
        if prev is None:
            raise TrainStageError(f"--resume: no checkpoint in {last_dir}; run without --resume")
        if prev["config_digest"] != digest:
            changed = sorted(k for k in set(prev["config"]) | set(cfg.model_dump(mode="json"))
                             if prev["config"].get(k) != cfg.model_dump(mode="json").get(k))
            raise ConfigError(f"--resume: the checkpoint in {last_dir} was made with a different train config "
                              f"(changed: {', '.join(changed)}); restore those settings to resume, or run "
                              f"without --resume to start over (the checkpoint is left untouched)")

    torch.manual_seed(cfg.seed)
    lengths = [len(e["input_ids"]) for e in train_ex] if cfg.group_by_length and not private else None
    sampler = EpochSampler(len(train_ex), cfg.seed, lengths=lengths, batch_size=cfg.batch_size)
    loader = DataLoader(train_ex, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate(tokenizer, data.task),
                        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = _optimizer(model, cfg)
    privacy_state = None
    if private:
        from steward.train.privacy import make_private

        model.train()
        model, optimizer, loader, privacy_state = make_private(model, optimizer, loader, cfg.privacy,
                                                               epochs=cfg.epochs, n_train=len(train_ex))
    else:
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model_inputs = _explicit_ids(model) if private else (
        lambda b: {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]})
    steps_per_epoch = len(loader)
    total_steps = min(cfg.max_steps or math.inf, steps_per_epoch * cfg.epochs)
    scheduler = get_scheduler("constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler, optimizer,
                              num_warmup_steps=int(cfg.warmup_ratio * total_steps), num_training_steps=int(total_steps))
    name = metric_name(cfg, data.task)
    higher_is_better = name != "loss"
    res = LoopResult(metric_name=name)
    start_epoch, skip_batches, bad_epochs = 0, 0, 0
    if resume:
        prog = checkpoint.load(last_dir, model=_unwrap(accelerator.unwrap_model(model)), optimizer=optimizer,
                               scheduler=scheduler)
        start_epoch, skip_batches = prog["epoch"], prog["step_in_epoch"]
        res.global_step, res.history = prog["global_step"], prog["history"]
        res.best_metric, res.best_epoch, bad_epochs = prog["best_metric"], prog["best_epoch"], prog["bad_epochs"]
        res.seconds = prog.get("seconds", 0.0)
        if privacy_state is not None:
            privacy_state.engine.accountant.history = [tuple(h) for h in prog.get("privacy_history", [])]

    def save_last(epoch: int, step_in_epoch: int) -> None:
        if not accelerator.is_main_process:
            return
        checkpoint.save(last_dir, model=_unwrap(accelerator.unwrap_model(model)), optimizer=optimizer, scheduler=scheduler,
                        progress={"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": res.global_step,
                                  "history": res.history, "best_metric": res.best_metric, "best_epoch": res.best_epoch,
                                  "bad_epochs": bad_epochs, "seconds": res.seconds, "config_digest": digest,
                                  "config": cfg.model_dump(mode="json"), "labels": data.labels,
                                  "privacy_history": [list(h) for h in privacy_state.engine.accountant.history]
                                  if privacy_state else []})

    bar = progress_bar(progress and accelerator.is_main_process, remaining=True)
    seen = 0
    t0 = time.perf_counter()
    model.train()
    with bar as pbar:
        task = pbar.add_task("train", total=int(total_steps), completed=res.global_step) if pbar else None
        for epoch in range(start_epoch, cfg.epochs):
            if res.global_step >= total_steps:
                break
            # accelerate's loader re-applies its own epoch counter to the sampler on every iter(): tell it.
            (loader if hasattr(loader, "set_epoch") else sampler).set_epoch(epoch)
            batches: Any = loader
            if skip_batches:  # resuming mid-epoch: replay the same order, skip what was done
                batches = itertools.islice(iter(loader), skip_batches, None)
            step_in_epoch = skip_batches
            skip_batches = 0
            for batch in batches:
                if res.global_step >= total_steps:
                    break
                if privacy_state is not None:
                    privacy_state.check_next_step()
                if len(batch["weight"]) == 0:  # Poisson sampling can draw an empty batch: still a DP step
                    optimizer.zero_grad()
                    optimizer.step()
                    scheduler.step()
                elif private:
                    loss_value = _private_step(model, optimizer, batch, model_inputs, cfg, data)
                    scheduler.step()
                    seen += len(batch["weight"])
                else:
                    logits = model(**model_inputs(batch)).logits
                    loss = weighted_loss(logits, batch["labels"], batch["weight"], data.task, data.multi_label)
                    accelerator.backward(loss)
                    if cfg.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                    seen += len(batch["weight"]) * accelerator.num_processes
                    loss_value = loss.item()
                if len(batch["weight"]):
                    if on_step:
                        on_step(res.global_step + 1, loss_value)
                    if pbar:
                        rate = seen / max(1e-9, time.perf_counter() - t0)
                        pbar.update(task, advance=1, description=f"train e{epoch + 1} loss {loss_value:.3f} "
                                                                 f"{rate:.0f} samples/s")
                res.global_step += 1
                step_in_epoch += 1
                if cfg.checkpoint_every_steps and res.global_step % cfg.checkpoint_every_steps == 0:
                    res.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    save_last(epoch, step_in_epoch)
            metrics = evaluate(_unwrap(accelerator.unwrap_model(model)), val_ex, data, tokenizer, cfg.eval_batch_size)
            record = {"epoch": epoch + 1, "step": res.global_step, **{k: round(v, 6) for k, v in metrics.items()}}
            if privacy_state is not None:
                record["epsilon"] = round(privacy_state.epsilon(), 4)
            res.history.append(record)
            tracker.metrics({k: v for k, v in record.items() if k not in ("epoch", "step")}, res.global_step)
            value = metrics[name]
            improved = res.best_metric is None or (
                value > res.best_metric + cfg.early_stopping.min_delta if higher_is_better
                else value < res.best_metric - cfg.early_stopping.min_delta)
            if improved:
                res.best_metric, res.best_epoch, bad_epochs = value, epoch + 1, 0
                if accelerator.is_main_process:
                    checkpoint.save_weights(best_dir, _unwrap(accelerator.unwrap_model(model)),
                                            {"epoch": epoch + 1, name: value})
            else:
                bad_epochs += 1
            res.seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            save_last(epoch + 1, 0)
            if bad_epochs >= cfg.early_stopping.patience:
                res.stopped_early = True
                break
    accelerator.wait_for_everyone()
    res.epochs_run = len(res.history)
    res.samples_per_second = round(seen / res.seconds, 2) if res.seconds and seen else 0.0
    base = _unwrap(accelerator.unwrap_model(model))
    checkpoint.load_weights(best_dir, base)
    if privacy_state is not None:
        res.privacy = privacy_state.record()
    res.model = base
    return res


def _private_step(model: Any, optimizer: Any, batch: dict[str, Any], model_inputs: Callable[[dict[str, Any]], Any],
                  cfg: TrainConfig, data: TrainData) -> float:
    """One DP-SGD step over a Poisson batch, run as length-sorted physical batches.

    Opacus clips and sums per-example gradients on every ``step()`` and only adds noise and updates on the
    last one (``signal_skip_step``), exactly as its BatchMemoryManager does; we split by length, not position.
    """
    parts = physical_batches(batch, cfg.privacy.physical_batch_size, token_labels=data.task == "ner")
    total = 0.0
    for j, part in enumerate(parts):
        optimizer.signal_skip_step(do_skip=j < len(parts) - 1)
        logits = model(**model_inputs(part)).logits
        loss = weighted_loss(logits, part["labels"], part["weight"], data.task, data.multi_label)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        total += loss.item() * len(part["weight"])
    return total / len(batch["weight"])
