"""The serve stage: a guarded inference service with API keys, an audit log, metrics, drift and feedback."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.serve.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.serve.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.serve import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
