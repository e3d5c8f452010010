"""The data stage: ``steward.data.run(cfg)`` turns raw labelled text into clean, safe, balanced splits."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.data.stage import DataResult, run

__all__ = ["DataResult", "run"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.data.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.data import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
