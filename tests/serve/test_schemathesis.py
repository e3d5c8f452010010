"""Schemathesis against the service's own OpenAPI, over real HTTP: no generated request gets a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from steward.service.audit import AuditLog, database_url
from steward.service.keys import KeyStore
from tests.serve.conftest import live
from tests.train.conftest import copy_run


@pytest.fixture(scope="module")
def running(served_run: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = copy_run(served_run, tmp_path_factory.mktemp("fuzz") / "run")
    key = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("admin")[1]
    with live(run_dir, rate_limit_per_minute=100_000, rate_limit_burst=10_000) as srv:
        yield srv, key


def test_no_server_errors(running) -> None:  # type: ignore[no-untyped-def]
    """Every operation, 25 generated requests each (valid and invalid bodies, headers, paths)."""
    srv, key = running
    schema = schemathesis.openapi.from_url(f"{srv.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"POST /v1/predict", "POST /v1/feedback",
                                                                      "POST /v1/explain", "GET /v1/models"}
    for op in operations:
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=srv.url, headers={"X-API-Key": key}, timeout=30)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])

        check()
