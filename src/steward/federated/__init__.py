"""Federated fine-tuning on Flower: ``steward.federated.run(cfg)`` trains one model across sites whose rows
never leave them (each runs its own data stage and local training; only the trainable tensors travel)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.federated.stage import FederatedResult, run

__all__ = ["FederatedResult", "run"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): the config that composes a federation reads steward.federated.config,
    # which must not pull in Flower, Ray or torch just to validate a YAML file.
    if name in __all__:
        from steward.federated import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
