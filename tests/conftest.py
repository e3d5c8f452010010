from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

# Set before anything imports presidio/tldextract or transformers: no network is ever attempted.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}; tests expect ../shared beside the checkout")
    return SHARED_DATA


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """A small classification set with a known mix of problems."""
    rows = [
        ["I want a refund for my broken headphones please", "refund", "female"],
        ["i want a refund for my BROKEN headphones, please!", "refund", "male"],  # exact dup (normalised)
        ["where is my parcel, it was due on monday and the tracking has not moved", "delivery", "female"],
        ["where is my parcel, it was due on monday and the tracking has not moved at all", "delivery", "male"],
        ["", "refund", "female"],  # empty
        ["my card 4111 1111 1111 1111 was charged twice for the same order", "billing", "male"],
        ["email me at jane.doe@example.com about the invoice for march", "billing", "female"],
        ["the app crashes whenever I open the settings page on my phone", "technical", "female"],
        ["please cancel my subscription at the end of the month thank you", "cancel", "male"],
        ["the router will not connect to wifi after the latest update", "technical", "male"],
        ["why was I billed twice this month for the family plan", "billing", "female"],
        ["cancel the annual plan before it renews next week please", "cancel", "female"],
        ["how long does a refund take after you receive the item back", "refund", "male"],
        ["the courier left the package with a neighbour I do not know", "delivery", "female"],
        ["this label is not declared anywhere in the config", "spam", "male"],
    ]
    return write_csv(tmp_path / "small.csv", ["text", "label", "gender"], rows)
