"""The field type of every string a caller sends to either service."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

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

__all__ = ["Text"]
