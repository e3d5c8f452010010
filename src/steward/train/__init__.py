"""The train stage: ``steward.train.run(cfg)`` fine-tunes an encoder on the data stage's splits."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.train.stage import TrainResult, run

__all__ = ["TrainResult", "run"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.train.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.train import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
