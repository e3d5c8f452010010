"""The guarded chat gateway: an OpenAI-compatible API in front of a generative model, behind the serve
stage's keys, guards and audit log."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steward.gateway.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): ``steward.gateway.config`` is read by the config that composes every stage,
    # which must not pull in this stage's libraries just to validate a YAML file.
    if name in __all__:
        from steward.gateway import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
