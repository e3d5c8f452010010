"""Input and output guards behind one interface, in two registries (importing this package registers them)."""

from steward.serve.guards import input, output  # noqa: F401  (imported to register)
from steward.serve.guards.base import (
    INPUT_GUARDS,
    OUTPUT_GUARDS,
    ChainResult,
    Guard,
    GuardContext,
    GuardResult,
    run_chain,
)

__all__ = ["INPUT_GUARDS", "OUTPUT_GUARDS", "ChainResult", "Guard", "GuardContext", "GuardResult", "run_chain"]


def build(cfg, max_chars: int) -> tuple[list[Guard], list[Guard]]:  # type: ignore[no-untyped-def]
    """The configured input and output guard chains, in order."""
    return ([INPUT_GUARDS.create(n, cfg, max_chars) for n in cfg.input],
            [OUTPUT_GUARDS.create(n, cfg) for n in cfg.output])
