"""Real headless Chromium (Debian's package, driven by playwright) for the report tests: a page that records
console errors and every request it makes, so a test can assert a report is clean and self-contained."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def chromium_page(errors: list[str], requests: list[str]) -> Iterator[Any]:
    """A 1200×900 page; console errors and page errors go to ``errors``, request URLs to ``requests``. Skips
    without Chromium, or fails when STEWARD_REQUIRE_BROWSER is set (CI installs it)."""
    if shutil.which("chromium") is None:
        if os.environ.get("STEWARD_REQUIRE_BROWSER"):
            pytest.fail("chromium not found; .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        try:
            yield page
        finally:
            browser.close()
