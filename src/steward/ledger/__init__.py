"""The run ledger: an append-only, hash-chained record of every stage run in a run folder.

``append`` adds one event; ``verify`` proves no event or artifact was edited, deleted, reordered or
appended out of chain after the fact.
"""

from steward.ledger.store import (
    GENESIS,
    LEDGER_NAME,
    Ledger,
    LedgerEvent,
    VerifyReport,
    append_event,
    artifact,
    check_ref,
    now_iso,
    verify,
)

__all__ = ["GENESIS", "LEDGER_NAME", "Ledger", "LedgerEvent", "VerifyReport", "append_event", "artifact",
           "check_ref", "now_iso", "verify"]
