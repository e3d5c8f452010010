"""ε of central DP across a federation's rounds: the Gaussian mechanism on the mean of the sites' clipped
updates, every site in every round (no sampling amplification), composed over the rounds with Opacus' RDP
accountant — the accountant the train stage's DP-SGD uses, so the two figures are computed alike."""

from __future__ import annotations

from typing import Any

from steward.errors import ConfigError
from steward.federated.config import CentralDPSettings


def central_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """ε after ``rounds`` releases of a mean whose one-site sensitivity the noise covers ``noise_multiplier``
    times over (σ = z·Δ; Δ = 2C/m for a mean of at least m sites each clipped to C, one replaced)."""
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    for _ in range(rounds):
        acc.step(noise_multiplier=noise_multiplier, sample_rate=1.0)
    return float(acc.get_epsilon(delta))


def privacy_record(dp: CentralDPSettings, rounds_released: int, min_sites: int) -> dict[str, Any]:
    """What the manifest and the ledger say about central DP after ``rounds_released`` noised aggregates."""
    if not dp.enabled:
        return {"enabled": False}
    eps = central_epsilon(dp.noise_multiplier, rounds_released, dp.delta) if rounds_released else 0.0
    return {"enabled": True, "level": "site", "epsilon": round(eps, 4), "delta": dp.delta,
            "noise_multiplier": dp.noise_multiplier, "clipping_norm": dp.clipping_norm, "clipping": dp.clipping,
            "noise_stdev": dp.noise_multiplier * 2 * dp.clipping_norm / min_sites, "rounds": rounds_released,
            "sensitivity": "2·clipping_norm/min_sites: one site's data replaced, in a mean of at least min_sites",
            "accountant": "rdp (opacus), sample rate 1"}


def check_budget(dp: CentralDPSettings, rounds: int) -> None:
    """Refuse, before any site trains, a federation whose rounds would spend more than ``target_epsilon``."""
    if not dp.enabled or dp.target_epsilon is None:
        return
    eps = central_epsilon(dp.noise_multiplier, rounds, dp.delta)
    if eps > dp.target_epsilon:
        raise ConfigError(f"federated.central_dp: {rounds} rounds at noise_multiplier {dp.noise_multiplier} spend "
                          f"ε = {eps:.2f} at δ = {dp.delta}, above target_epsilon {dp.target_epsilon}. Fix: raise "
                          f"noise_multiplier, lower federated.rounds, or raise target_epsilon")
