"""The field type of every string a caller sends to either service, and the receipt both services return."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from steward.canonical import check_storable


def _storable(value: str) -> str:
    problem = check_storable(value)
    if problem:
        raise ValueError(problem)
    return value


# Every string a caller sends. JSON can carry a lone surrogate ("\ud800") that Python decodes but no UTF-8
# encoder, tokenizer or database accepts, and U+0000, which PostgreSQL text refuses: found at the schema, such
# a string fails its own request with a 422 naming the field, never a batch or an audit transaction it joined.
Text = Annotated[str, AfterValidator(_storable)]

# Who a request is about (OpenAI's ``user`` field: "a unique identifier representing your end-user"). The log
# stores only its HMAC under the service secret, so `steward audit erase --subject ID` finds every decision
# about that person; a caller who sends none can erase by decision id only.
Subject = Annotated[Text | None, Field(None, min_length=1, max_length=256, description=(
    "An id of the person the request is about (yours, not their name). Stored only as a keyed hash; a data-"
    "protection request for that id erases every decision about them (steward audit erase --subject)."))]



class Receipt(BaseModel):
    """Which leaf of the audit log holds this decision. The signed checkpoint and the inclusion proof that
    make it checkable offline (``steward audit verify-receipt``) are at ``url`` once the next checkpoint is
    signed (within ``transparency.checkpoint_interval_s``)."""

    leaf_index: int
    leaf_hash: str = Field(description="RFC 9162 leaf hash (hex) of the record's hash")
    record_hash: str
    url: str


def receipt_of(row: dict[str, object]) -> Receipt:
    """The receipt of a stored audit row (as the audit writer returns it)."""
    from steward.service.transparency import record_leaf

    return Receipt(leaf_index=int(str(row["seq"])) - 1, leaf_hash=record_leaf(str(row["hash"])).hex(),
                   record_hash=str(row["hash"]), url=f"/v1/receipts/{row['decision_id']}")


__all__ = ["Receipt", "Text", "receipt_of"]
