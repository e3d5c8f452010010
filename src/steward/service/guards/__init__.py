"""Input guards behind one interface, in one registry (importing this package registers them). Both
services run these on what a caller sends; each service keeps its own output guards (``steward.serve.
output_guards`` for a label, ``steward.gateway.guards`` for generated text)."""

from steward.service.guards import input  # noqa: F401  (imported to register)
from steward.service.guards.base import (
    INPUT_GUARDS,
    ChainResult,
    Guard,
    GuardContext,
    GuardResult,
    run_chain,
)

__all__ = ["INPUT_GUARDS", "ChainResult", "Guard", "GuardContext", "GuardResult", "build_inputs", "run_chain"]


def build_inputs(cfg, max_chars: int) -> list[Guard]:  # type: ignore[no-untyped-def]
    """The configured input guard chain, in order."""
    return [INPUT_GUARDS.create(n, cfg, max_chars) for n in cfg.input]
