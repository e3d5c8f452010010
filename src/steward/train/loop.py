"""The training loop: weighted loss, AdamW with warmup/decay, clipping or DP-SGD, early stopping,
checkpoints and exact resume. Runs unchanged under ``accelerate launch`` (DDP) when not private.

One loop for every task: a classifier's label per text, a tagger's label per token, and a chat model's next
token on its answers (labels from ``chat.py``; the prompt's are IGNORE). For chat only the positions from
the batch's first answer token on go through the LM head (``logits_to_keep``): on a support conversation
the prompt is most of the tokens, and the vocabulary projection of each is work and memory for no loss.
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

from steward.config_base import config_digest
from steward.errors import ConfigError, TrainStageError
from steward.metrics import classification_metrics, multilabel_metrics, ner_metrics
from steward.progress import progress_bar
from steward.tracking import Tracker
from steward.train import checkpoint
from steward.train.config import TrainConfig
from steward.train.data import IGNORE_INDEX, TOKEN_TASKS, TrainData, collate

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
    tokens_per_second: float = 0.0  # input tokens (padding excluded) trained on per second
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
    chosen = cfg.early_stopping.metric
    if task == "chat":
        if chosen not in ("auto", "loss"):
            raise ConfigError(f"train.early_stopping.metric: {chosen!r} is a classifier's metric; a chat run "
                              f"stops on validation loss. Fix: metric: loss (or auto)")
        return "loss"
    if chosen != "auto":
        return chosen
    return "entity_f1" if task == "ner" else "macro_f1"


def next_token_logits(logits: Any, labels: Any) -> tuple[Any, Any]:
    """A causal LM's logits and the tokens they predict, aligned. ``logits`` may cover only the last positions
    (``logits_to_keep``) or more than the labels (prompt tuning prepends virtual tokens): position t predicts
    token t + 1, so the last kept position predicts nothing."""
    t = labels.shape[1]
    n = min(logits.shape[1], t)
    return logits[:, -n:-1], labels[:, t - n + 1:]


def token_losses(logits: Any, labels: Any, task: str) -> tuple[Any, Any]:
    """Per-token cross-entropy and its mask (1 where a token is a target) of a tagger or a chat model."""
    import torch.nn.functional as F

    if task == "chat":
        logits, labels = next_token_logits(logits, labels)
    elif logits.shape[1] > labels.shape[1]:  # prompt tuning: virtual tokens come first and carry no tag
        logits = logits[:, -labels.shape[1]:]
    # Only the target positions, as rows of (token, class): cross_entropy's (batch, class, position) layout on
    # a transposed 49k-word vocabulary ran ~20x slower on CPU (1.5 s a batch for the tiny test model,
    # profiled), and a chat batch's prompt positions are no target at all.
    valid = labels != IGNORE_INDEX
    where = valid.nonzero(as_tuple=True)
    per_tok = logits.new_zeros(labels.shape)
    per_tok = per_tok.index_put(where, F.cross_entropy(logits[where], labels[where], reduction="none"))
    return per_tok, valid.float()


def weighted_loss(logits: Any, labels: Any, weight: Any, task: str, multi_label: bool) -> Any:
    """Per-example loss times its sample weight, averaged over the batch (what Opacus expects: 'mean'). A
    tagger's or chat model's example loss is the mean over its target tokens."""
    import torch.nn.functional as F

    if task in TOKEN_TASKS:
        per_tok, valid = token_losses(logits, labels, task)
        per_ex = (per_tok * valid).sum(1) / valid.sum(1).clamp(min=1.0)
    elif multi_label:
        per_ex = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)
    else:
        per_ex = F.cross_entropy(logits, labels, reduction="none")
    return (per_ex * weight).mean()


def model_inputs_for(task: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What the model is called with: ids and mask; for chat also how many last positions need logits."""
    if task != "chat":
        return lambda b: {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]}

    def chat_inputs(b: dict[str, Any]) -> dict[str, Any]:
        targets = (b["labels"] != IGNORE_INDEX).any(0).nonzero()
        first = int(targets[0]) if len(targets) else 1  # the batch's first answer token
        keep = b["input_ids"].shape[1] - max(first - 1, 0)  # from the position that predicts it, to the end
        return {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"], "logits_to_keep": keep}

    return chat_inputs


def evaluate_lm(model: Any, examples: list[dict[str, Any]], tokenizer: Any, batch_size: int) -> dict[str, float]:
    """A chat model's validation loss on the answers (mean over conversations, as trained) and perplexity
    (exp of the mean over every answer token)."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(examples, batch_size=batch_size, shuffle=False, collate_fn=collate(tokenizer, "chat"))
    inputs = model_inputs_for("chat")
    was_training = model.training
    model.eval()
    example_loss, nll, tokens = 0.0, 0.0, 0.0
    with torch.no_grad():
        for batch in loader:
            per_tok, valid = token_losses(model(**inputs(batch)).logits, batch["labels"], "chat")
            summed = (per_tok * valid).sum(1)
            example_loss += float((summed / valid.sum(1).clamp(min=1.0)).sum())
            nll, tokens = nll + float(summed.sum()), tokens + float(valid.sum())
    model.train(was_training)
    token_loss = nll / max(tokens, 1.0)
    return {"loss": example_loss / len(examples), "token_loss": token_loss,
            "perplexity": math.exp(min(token_loss, 50.0)), "answer_tokens": tokens}


def evaluate(model: Any, examples: list[dict[str, Any]], data: TrainData, tokenizer: Any, batch_size: int) -> dict[str, float]:
    """Validation metrics and unweighted loss, on the whole set (every process sees the same numbers)."""
    import torch
    from torch.utils.data import DataLoader

    if data.task == "chat":
        return evaluate_lm(model, examples, tokenizer, batch_size)
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


def _explicit_ids(model: Any, task: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Model inputs with per-example ``token_type_ids`` and ``position_ids`` where the model takes them.

    BERT-like models otherwise broadcast a (1, T) buffer over the batch; Opacus then sees a batch of one
    in those embeddings and cannot form per-example gradients.
    """
    import inspect

    import torch

    accepted = set(inspect.signature(_unwrap(model).forward).parameters)
    if "kwargs" in accepted and hasattr(_unwrap(model), "get_base_model"):  # peft wrappers forward **kwargs
        accepted |= set(inspect.signature(_unwrap(model).get_base_model().forward).parameters)

    plain = model_inputs_for(task)

    def inputs(batch: dict[str, Any]) -> dict[str, Any]:
        out = plain(batch)
        b, t = batch["input_ids"].shape
        if "token_type_ids" in accepted:
            out["token_type_ids"] = torch.zeros((b, t), dtype=torch.long)
        if "position_ids" in accepted:
            out["position_ids"] = torch.arange(t).unsqueeze(0).repeat(b, 1)
        return out

    return inputs


def _optimizer(model: Any, cfg: TrainConfig, task: str) -> Any:
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr(task))


def _unwrap(model: Any) -> Any:
    return getattr(model, "_module", model)  # Opacus' GradSampleModule keeps the real model here


def run_loop(model: Any, tokenizer: Any, data: TrainData, train_ex: list[dict[str, Any]], val_ex: list[dict[str, Any]],
             cfg: TrainConfig, work_dir: Path, *, resume: bool, tracker: Tracker,
             on_step: StepCallback | None = None, progress: bool = False,
             regulariser: Callable[[Any], Any] | None = None, keep_best: bool = True) -> LoopResult:
    """Train ``model`` and return the result with the best epoch's weights loaded (see :class:`_Loop`).

    ``regulariser(model)`` returns a term added to every batch's loss (FedProx's proximal term keeps a site's
    weights near the global model's); not with DP-SGD, whose per-example clipping it would bypass.
    ``keep_best=False``: every epoch runs and the last epoch's weights are returned (a federated site's
    local update is its weights after its local epochs, not its best validation epoch)."""
    return _Loop(model, tokenizer, data, train_ex, val_ex, cfg, work_dir, resume=resume, tracker=tracker,
                 on_step=on_step, progress=progress, regulariser=regulariser, keep_best=keep_best).run()


class _Loop:
    """One training run as named steps, the way opacus' ``make_private`` prepares its parts: the work
    folder (fresh or resumed), the loader, the optimisation (plain under accelerate, or DP-SGD), the resumed
    state; then per batch one step (plain or private), per epoch evaluation, the best checkpoint and early
    stopping, and the ``last`` checkpoint that exact resume reads. The order of the ``_prepare_*`` calls is
    the order random numbers are drawn in: an exact resume depends on it."""

    def __init__(self, model: Any, tokenizer: Any, data: TrainData, train_ex: list[dict[str, Any]],
                 val_ex: list[dict[str, Any]], cfg: TrainConfig, work_dir: Path, *, resume: bool, tracker: Tracker,
                 on_step: StepCallback | None, progress: bool, regulariser: Callable[[Any], Any] | None = None,
                 keep_best: bool = True) -> None:
        import torch
        from accelerate import Accelerator

        self.model, self.tokenizer, self.data, self.cfg = model, tokenizer, data, cfg
        self.train_ex, self.val_ex, self.tracker = train_ex, val_ex, tracker
        self.on_step, self.progress, self.regulariser, self.keep_best = on_step, progress, regulariser, keep_best
        self.resume = resume
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.private = cfg.privacy.enabled
        self.digest = config_digest(cfg)
        self.last_dir, self.best_dir = work_dir / "last", work_dir / "best"
        self.work_dir = work_dir
        self.name = metric_name(cfg, data.task)
        self.res = LoopResult(metric_name=self.name)
        self.privacy_state: Any = None
        self.start_epoch, self.skip_batches, self.bad_epochs, self.seen, self.seen_tokens = 0, 0, 0, 0, 0
        self.t0 = 0.0

    def run(self) -> LoopResult:
        self._prepare_work_dir()
        self._prepare_loader()
        self._prepare_optimisation()
        if self.resume:
            self._prepare_resumed_state()
        self.t0 = time.perf_counter()
        self.model.train()
        with progress_bar(self.progress and self.accelerator.is_main_process, remaining=True) as pbar:
            task = pbar.add_task("train", total=int(self.total_steps), completed=self.res.global_step) if pbar else None
            for epoch in range(self.start_epoch, self.cfg.epochs):
                if self.res.global_step >= self.total_steps:
                    break
                self._train_epoch(epoch, pbar, task)
                if self._end_epoch(epoch):
                    break
        return self._finish()

    def _prepare_work_dir(self) -> None:
        """A fresh run starts from an empty work folder; a resumed one checks the checkpoint's config."""
        acc = self.accelerator
        if self.private and self.regulariser is not None:
            raise ConfigError("a loss regulariser (FedProx's proximal term) with train.privacy.enabled: DP-SGD clips "
                              "each example's gradient, and a term on the weights would bypass it. Fix: use "
                              "strategy fedavg with DP-SGD at the sites, or turn site DP off for FedProx")
        if self.private and acc.num_processes > 1:
            raise ConfigError("train.privacy.enabled with several processes is not supported; run DP training in "
                              "one process (plain `steward train`, not `accelerate launch`)")
        if not self.resume and acc.is_main_process and (self.last_dir.exists() or self.best_dir.exists()):
            import shutil

            shutil.rmtree(self.work_dir)  # a fresh run starts fresh; resume is explicit
        acc.wait_for_everyone()
        if not self.resume:
            return
        prev = checkpoint.read_progress(self.last_dir)
        if prev is None:
            raise TrainStageError(f"--resume: no checkpoint in {self.last_dir}; run without --resume")
        if prev["config_digest"] != self.digest:
            now = self.cfg.model_dump(mode="json")
            changed = sorted(k for k in set(prev["config"]) | set(now) if prev["config"].get(k) != now.get(k))
            raise ConfigError(f"--resume: the checkpoint in {self.last_dir} was made with a different train config "
                              f"(changed: {', '.join(changed)}); restore those settings to resume, or run "
                              f"without --resume to start over (the checkpoint is left untouched)")

    def _prepare_loader(self) -> None:
        import torch
        from torch.utils.data import DataLoader

        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        lengths = [len(e["input_ids"]) for e in self.train_ex] if cfg.group_by_length and not self.private else None
        self.sampler = EpochSampler(len(self.train_ex), cfg.seed, lengths=lengths, batch_size=cfg.batch_size)
        self.loader: Any = DataLoader(self.train_ex, batch_size=cfg.batch_size, sampler=self.sampler,
                                      collate_fn=collate(self.tokenizer, self.data.task),
                                      generator=torch.Generator().manual_seed(cfg.seed))

    def _prepare_optimisation(self) -> None:
        """AdamW, wrapped by opacus (DP-SGD) or accelerate; the learning-rate schedule over the run's steps."""
        from transformers import get_scheduler

        cfg = self.cfg
        self.optimizer = _optimizer(self.model, cfg, self.data.task)
        if self.private:
            from steward.train.privacy import make_private

            self.model.train()
            self.model, self.optimizer, self.loader, self.privacy_state = make_private(
                self.model, self.optimizer, self.loader, cfg.privacy, epochs=cfg.epochs, n_train=len(self.train_ex))
            self.model_inputs = _explicit_ids(self.model, self.data.task)
        else:
            self.model, self.optimizer, self.loader = self.accelerator.prepare(self.model, self.optimizer, self.loader)
            self.model_inputs = model_inputs_for(self.data.task)
        self.total_steps = min(cfg.max_steps or math.inf, len(self.loader) * cfg.epochs)
        self.scheduler = get_scheduler("constant_with_warmup" if cfg.scheduler == "constant" else cfg.scheduler,
                                       self.optimizer, num_warmup_steps=int(cfg.warmup_ratio * self.total_steps),
                                       num_training_steps=int(self.total_steps))

    def _base(self) -> Any:
        return _unwrap(self.accelerator.unwrap_model(self.model))

    def _prepare_resumed_state(self) -> None:
        """Weights, optimiser, schedule, counters, history and the privacy accountant from ``last``."""
        res = self.res
        prog = checkpoint.load(self.last_dir, model=self._base(), optimizer=self.optimizer, scheduler=self.scheduler)
        self.start_epoch, self.skip_batches = prog["epoch"], prog["step_in_epoch"]
        res.global_step, res.history = prog["global_step"], prog["history"]
        res.best_metric, res.best_epoch, self.bad_epochs = prog["best_metric"], prog["best_epoch"], prog["bad_epochs"]
        res.seconds = prog.get("seconds", 0.0)
        self.seen, self.seen_tokens = prog.get("seen", 0), prog.get("seen_tokens", 0)
        if self.privacy_state is not None:
            self.privacy_state.engine.accountant.history = [tuple(h) for h in prog.get("privacy_history", [])]

    def _save_last(self, epoch: int, step_in_epoch: int) -> None:
        if not self.accelerator.is_main_process:
            return
        res, ps = self.res, self.privacy_state
        checkpoint.save(self.last_dir, model=self._base(), optimizer=self.optimizer, scheduler=self.scheduler,
                        progress={"epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": res.global_step,
                                  "history": res.history, "best_metric": res.best_metric, "best_epoch": res.best_epoch,
                                  "bad_epochs": self.bad_epochs, "seconds": res.seconds, "seen": self.seen,
                                  "seen_tokens": self.seen_tokens, "config_digest": self.digest,
                                  "config": self.cfg.model_dump(mode="json"), "labels": self.data.labels,
                                  "privacy_history": [list(h) for h in ps.engine.accountant.history] if ps else []})

    def _clock(self) -> None:
        """Add the time since the last mark to the run's seconds (a resumed run keeps counting)."""
        self.res.seconds += time.perf_counter() - self.t0
        self.t0 = time.perf_counter()

    def _train_epoch(self, epoch: int, pbar: Any, task: Any) -> None:
        # accelerate's loader re-applies its own epoch counter to the sampler on every iter(): tell it.
        (self.loader if hasattr(self.loader, "set_epoch") else self.sampler).set_epoch(epoch)
        batches: Any = self.loader
        if self.skip_batches:  # resuming mid-epoch: replay the same order, skip what was done
            batches = itertools.islice(iter(self.loader), self.skip_batches, None)
        step_in_epoch, self.skip_batches = self.skip_batches, 0
        res, every = self.res, self.cfg.checkpoint_every_steps
        for batch in batches:
            if res.global_step >= self.total_steps:
                break
            loss_value = self._step(batch)
            if loss_value is not None:
                self._report(epoch, loss_value, pbar, task)
            res.global_step += 1
            step_in_epoch += 1
            if every and res.global_step % every == 0:
                self._clock()
                self._save_last(epoch, step_in_epoch)

    def _step(self, batch: dict[str, Any]) -> float | None:
        """One optimisation step; the batch's loss, or None for an empty Poisson batch (still a DP step)."""
        if self.privacy_state is not None:
            self.privacy_state.check_next_step()
        if len(batch["weight"]) == 0:  # Poisson sampling can draw an empty batch: still a DP step
            self.optimizer.zero_grad()
            self.optimizer.step()
            self.scheduler.step()
            return None
        if self.private:
            loss_value = _private_step(self.model, self.optimizer, batch, self.model_inputs, self.cfg, self.data)
            self.scheduler.step()
            self.seen += len(batch["weight"])
            self.seen_tokens += int(batch["attention_mask"].sum())
            return loss_value
        return self._plain_step(batch)

    def _plain_step(self, batch: dict[str, Any]) -> float:
        acc, data = self.accelerator, self.data
        logits = self.model(**self.model_inputs(batch)).logits
        loss = weighted_loss(logits, batch["labels"], batch["weight"], data.task, data.multi_label)
        if self.regulariser is not None:
            loss = loss + self.regulariser(self._base())
        acc.backward(loss)
        if self.cfg.max_grad_norm:
            acc.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        rows, tokens = len(batch["weight"]), int(batch["attention_mask"].sum())
        if acc.num_processes > 1:  # length-grouped batches differ in size between processes: count them all
            import torch

            rows, tokens = (int(v) for v in acc.reduce(torch.tensor([rows, tokens]), reduction="sum"))
        self.seen += rows
        self.seen_tokens += tokens
        return float(loss.item())

    def _report(self, epoch: int, loss_value: float, pbar: Any, task: Any) -> None:
        if self.on_step:
            self.on_step(self.res.global_step + 1, loss_value)
        if pbar:
            spent = max(1e-9, self.res.seconds + time.perf_counter() - self.t0)  # the counts are the run's too
            rate = (f"{self.seen_tokens / spent:.0f} tokens/s" if self.data.task == "chat"
                    else f"{self.seen / spent:.0f} samples/s")
            pbar.update(task, advance=1, description=f"train e{epoch + 1} loss {loss_value:.3f} {rate}")

    def _end_epoch(self, epoch: int) -> bool:
        """Evaluate, keep the best weights, checkpoint; True when early stopping ends the run."""
        value = self._evaluate(epoch)
        res, es = self.res, self.cfg.early_stopping
        improved = res.best_metric is None or (
            value > res.best_metric + es.min_delta if self.name != "loss" else value < res.best_metric - es.min_delta)
        if improved:
            res.best_metric, res.best_epoch, self.bad_epochs = value, epoch + 1, 0
            if self.accelerator.is_main_process:
                checkpoint.save_weights(self.best_dir, self._base(), {"epoch": epoch + 1, self.name: value})
        else:
            self.bad_epochs += 1
        self._clock()
        self._save_last(epoch + 1, 0)
        if self.keep_best and self.bad_epochs >= es.patience:
            res.stopped_early = True
            return True
        return False

    def _evaluate(self, epoch: int) -> float:
        """The validation metrics of this epoch, recorded in the history and the tracker; the watched one."""
        metrics = evaluate(self._base(), self.val_ex, self.data, self.tokenizer, self.cfg.eval_batch_size)
        record = {"epoch": epoch + 1, "step": self.res.global_step, **{k: round(v, 6) for k, v in metrics.items()}}
        if self.privacy_state is not None:
            record["epsilon"] = round(self.privacy_state.epsilon(), 4)
        self.res.history.append(record)
        self.tracker.metrics({k: v for k, v in record.items() if k not in ("epoch", "step")}, self.res.global_step)
        return metrics[self.name]

    def _finish(self) -> LoopResult:
        """Counters, the best epoch's weights into the model, the privacy record."""
        self.accelerator.wait_for_everyone()
        res = self.res
        res.epochs_run = len(res.history)
        res.samples_per_second = round(self.seen / res.seconds, 2) if res.seconds and self.seen else 0.0
        res.tokens_per_second = round(self.seen_tokens / res.seconds, 1) if res.seconds and self.seen_tokens else 0.0
        base = self._base()
        if self.keep_best:
            checkpoint.load_weights(self.best_dir, base)
        if self.privacy_state is not None:
            res.privacy = self.privacy_state.record()
        res.model = base
        return res


def _private_step(model: Any, optimizer: Any, batch: dict[str, Any], model_inputs: Callable[[dict[str, Any]], Any],
                  cfg: TrainConfig, data: TrainData) -> float:
    """One DP-SGD step over a Poisson batch, run as length-sorted physical batches.

    Opacus clips and sums per-example gradients on every ``step()`` and only adds noise and updates on the
    last one (``signal_skip_step``), exactly as its BatchMemoryManager does; we split by length, not position.
    """
    parts = physical_batches(batch, cfg.privacy.physical_batch_size, token_labels=data.task in TOKEN_TASKS)
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
