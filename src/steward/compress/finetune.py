"""Short fine-tuning for the compress stage: recovery after pruning and knowledge distillation.

Not the train stage's loop on purpose: that one carries DP, checkpoints, resume and early stopping for a
run that must be reproducible to the step; here a compressed copy gets a few hundred plain AdamW steps,
optionally against a teacher's soft labels (Hinton et al. 2015), and is then re-scored in full by the
evaluate stage, which is what decides whether it ships.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from steward.compress.config import FineTuneSettings
from steward.progress import progress_bar


def fit(model: Any, tokenizer: Any, texts: Sequence[str], labels: np.ndarray, cfg: FineTuneSettings, epochs: float,
        *, teacher_logits: np.ndarray | None = None, temperature: float = 2.0, alpha: float = 0.5,
        after_step: Callable[[], None] | None = None, progress: bool = False, description: str = "fine-tune") -> dict[str, Any]:
    """Train ``model`` in place; returns steps and the mean loss of the last epoch.

    With ``teacher_logits`` the loss is ``alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)``.
    ``after_step`` runs after every optimiser step (pruning masks use it to keep removed weights at zero).
    """
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    n = len(texts)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = max(1, round(steps_per_epoch * epochs))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    y = torch.as_tensor(labels, dtype=torch.long)
    soft = torch.as_tensor(teacher_logits, dtype=torch.float32) if teacher_logits is not None else None
    model.train()
    step, losses = 0, []
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=total) if bar else None
        while step < total:
            order = rng.permutation(n)
            losses = []
            for k in range(0, n, cfg.batch_size):
                if step >= total:
                    break
                idx = order[k:k + cfg.batch_size]
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=cfg.max_length,
                                return_tensors="pt")
                logits = model(**enc).logits
                loss = F.cross_entropy(logits, y[idx])
                if soft is not None:
                    t = temperature
                    kd = F.kl_div(F.log_softmax(logits / t, -1), F.softmax(soft[idx] / t, -1), reduction="batchmean")
                    loss = alpha * t * t * kd + (1 - alpha) * loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                if after_step:
                    after_step()
                losses.append(float(loss.detach()))
                step += 1
                if bar:
                    bar.update(task, advance=1, description=f"{description} loss {np.mean(losses[-20:]):.3f}")
    model.eval()
    return {"steps": step, "epochs": epochs, "rows": n, "last_epoch_loss": float(np.mean(losses)) if losses else None}


def head_importance(model: Any, layers: list[Any], tokenizer: Any, texts: Sequence[str], labels: np.ndarray,
                    batch_size: int, max_length: int) -> np.ndarray:
    """|∂loss/∂gate| per attention head (Michel et al. 2019): a gate of 1.0 multiplies each head's output, and
    the heads whose gate the loss cares least about go first. Shape (layers, heads)."""
    import torch
    import torch.nn.functional as F

    heads = layers[0].attention.self.num_attention_heads
    d = layers[0].attention.self.attention_head_size
    gates = torch.ones(len(layers), heads, requires_grad=True)
    hooks = []
    for i, layer in enumerate(layers):
        def pre(mod: Any, args: tuple[Any, ...], i: int = i) -> tuple[Any, ...]:
            x = args[0]
            shape = x.shape
            return ((x.view(*shape[:-1], heads, d) * gates[i].view(1, 1, heads, 1)).view(shape),)
        hooks.append(layer.attention.output.dense.register_forward_pre_hook(pre))
    model.eval()
    y = torch.as_tensor(labels, dtype=torch.long)
    try:
        for k in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[k:k + batch_size]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            loss = F.cross_entropy(model(**enc).logits, y[k:k + batch_size])
            loss.backward()
    finally:
        for h in hooks:
            h.remove()
    model.zero_grad(set_to_none=True)
    return gates.grad.abs().numpy() if gates.grad is not None else np.zeros((len(layers), heads))
