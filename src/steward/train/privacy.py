"""Differential privacy through Opacus: noise calibrated to a target ε, a ledger of what was spent.

The accountant's history (noise multiplier, sample rate, steps) is the record: it goes into every
checkpoint and the model manifest, and ``spent_epsilon`` recomputes ε from it with a fresh accountant,
so the reported figure can be checked by anyone with Opacus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steward.errors import ConfigError, PrivacyBudgetExceeded
from steward.train.config import PrivacySettings


@dataclass
class PrivacyState:
    engine: Any
    accountant: str
    target_epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float
    history: list[tuple[float, float, int]] = field(default_factory=list)

    def epsilon(self) -> float:
        return spent_epsilon(self.accountant, self.engine.accountant.history, self.delta)

    def check_next_step(self) -> None:
        """Raise before a step that would take ε past the target (Opacus itself never stops)."""
        hist = list(self.engine.accountant.history)
        if hist and hist[-1][0] == self.noise_multiplier and hist[-1][1] == self.sample_rate:
            hist[-1] = (hist[-1][0], hist[-1][1], hist[-1][2] + 1)
        else:
            hist.append((self.noise_multiplier, self.sample_rate, 1))
        nxt = spent_epsilon(self.accountant, hist, self.delta)
        if nxt > self.target_epsilon:
            spent = self.epsilon() if self.engine.accountant.history else 0.0
            raise PrivacyBudgetExceeded(
                f"stopping before overspending: the next step would reach ε={nxt:.3f} > target "
                f"{self.target_epsilon} (spent so far ε={spent:.3f}, δ={self.delta:.2e}); raise "
                f"train.privacy.target_epsilon or train for fewer steps",
                epsilon_spent=spent, target_epsilon=self.target_epsilon)

    def record(self) -> dict[str, Any]:
        return {
            "enabled": True, "accountant": self.accountant, "target_epsilon": self.target_epsilon,
            "epsilon": round(self.epsilon(), 4) if self.engine.accountant.history else 0.0, "delta": self.delta,
            "noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate,
            "max_grad_norm": self.max_grad_norm,
            "history": [list(h) for h in self.engine.accountant.history],
        }


def _accountant(name: str) -> Any:
    from opacus.accountants import create_accountant

    return create_accountant(mechanism=name)


def spent_epsilon(accountant: str, history: list[tuple[float, float, int]], delta: float) -> float:
    acc = _accountant(accountant)
    acc.history = [tuple(h) for h in history]
    return float(acc.get_epsilon(delta=delta))


def calibrate_sigma(cfg: PrivacySettings, *, delta: float, batches_per_epoch: int, epochs: int
                    ) -> tuple[float, Exception | None]:
    """The smallest noise multiplier (to 0.2 %) whose planned steps spend at most ``target_epsilon``.

    Opacus' search can land a hair above the target, and it counts int(epochs / sample_rate) steps, which
    float rounding can make one short of epochs x batches; both are corrected here so that the budget
    guard never has to stop a run that followed its plan. Returns (σ, error) with σ = inf when no σ works.
    """
    from opacus.accountants.utils import get_noise_multiplier

    sample_rate = 1.0 / batches_per_epoch
    try:
        sigma = get_noise_multiplier(target_epsilon=cfg.target_epsilon, target_delta=delta, sample_rate=sample_rate,
                                     epochs=epochs, accountant=cfg.accountant)
    except ValueError as exc:
        return float("inf"), exc
    steps = epochs * batches_per_epoch
    while sigma <= cfg.max_noise_multiplier and \
            spent_epsilon(cfg.accountant, [(sigma, sample_rate, steps)], delta) > cfg.target_epsilon:
        sigma *= 1.002
    return float(sigma), None


def make_private(model: Any, optimizer: Any, loader: Any, cfg: PrivacySettings, *, epochs: int,
                 n_train: int) -> tuple[Any, Any, Any, PrivacyState]:
    """Wrap model, optimizer and loader for DP-SGD with σ chosen so ``epochs`` spend ``target_epsilon``."""
    from opacus import PrivacyEngine

    delta = cfg.delta if cfg.delta is not None else 1.0 / n_train
    sample_rate = 1.0 / len(loader)
    sigma, cause = calibrate_sigma(cfg, delta=delta, batches_per_epoch=len(loader), epochs=epochs)
    if sigma > cfg.max_noise_multiplier:
        raise ConfigError(
            f"train.privacy.target_epsilon: ε={cfg.target_epsilon} (δ={delta:.2e}) over {epochs} epoch(s) of "
            f"{n_train} rows needs noise multiplier σ={sigma:.1f}, above train.privacy.max_noise_multiplier="
            f"{cfg.max_noise_multiplier}: the model would learn nothing. Raise target_epsilon, use more data, "
            f"or train fewer epochs"
        ) from cause
    engine = PrivacyEngine(accountant=cfg.accountant)
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=cfg.max_grad_norm, poisson_sampling=cfg.poisson_sampling, grad_sample_mode=cfg.grad_sample_mode,
    )
    state = PrivacyState(engine, cfg.accountant, cfg.target_epsilon, delta, float(sigma), sample_rate,
                         cfg.max_grad_norm)
    return model, optimizer, loader, state
