"""The service with its default configuration serves the built-in injection detector (the real one).

The first test session on a machine builds it (data → train → evaluate of all-MiniLM-L6-v2 on the shipped set,
about 3 minutes on 2 cores) into $STEWARD_CACHE; later sessions, `make demo` and `steward serve` reuse it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest

from steward.service.audit import AuditLog, database_url
from steward.service.guards import GuardContext, run_chain
from steward.service.guards.detector import ensure
from steward.service.guards.input import InjectionGuard
from steward.service.keys import KeyStore
from tests.serve.conftest import LiveServer, _free_port
from tests.train.conftest import copy_run


@pytest.fixture(scope="module")
def default_service(served_run: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from steward.config import parse_config
    from steward.serve import create_app

    info = ensure()  # what `steward serve` does before it starts (with progress on the console)
    run_dir = copy_run(served_run, tmp_path_factory.mktemp("default") / "run")
    key = KeyStore(AuditLog(database_url(None, run_dir)).engine).create("admin")[1]
    cfg = parse_config({"run_dir": str(run_dir), "serve": {"rate_limit_per_minute": 100_000,
                                                           "rate_limit_burst": 10_000}})
    assert cfg.serve.guards.injection_model == "builtin"  # nothing set: the default
    with LiveServer(create_app(cfg), _free_port()) as srv:
        yield srv, key, info


def test_models_and_card_name_the_detector_and_its_scorecard(default_service) -> None:  # type: ignore[no-untyped-def]
    srv, key, info = default_service
    r = httpx.get(srv.url + "/v1/models", headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 200
    (facts,) = r.json()["data"][0]["guards"]
    assert facts["detector"] == "builtin" and facts["name"] == info.name and facts["key"] == info.key
    assert facts["weights_sha256"] == info.weights_sha256 and facts["scorecard"]["gates_passed"] is True
    assert facts["scorecard"]["recall"] >= 0.85 and facts["scorecard"]["false_block_rate"] <= 0.05
    card = httpx.get(srv.url + "/v1/models/card", headers={"X-API-Key": key}, timeout=30).text
    assert info.name in card and "Guards with models of their own" in card


def test_the_default_service_stops_injections_the_patterns_miss(default_service) -> None:  # type: ignore[no-untyped-def]
    srv, key, info = default_service
    test = pd.read_parquet(info.run_dir / "data" / "test.parquet")  # the detector never trained on these
    patterns = InjectionGuard(0.5, "patterns")
    missed = [t for t in test.loc[test["label"] == "injection", "text"]
              if run_chain([patterns], t, GuardContext()).blocked is None]
    benign = list(test.loc[(test["label"] == "benign") & (test["source"] == "labelled"), "text"])
    assert len(missed) >= 20  # most real injections are polite requests no pattern matches

    def blocked(text: str) -> bool:
        r = httpx.post(srv.url + "/v1/predict", json={"text": text}, headers={"X-API-Key": key}, timeout=60)
        assert r.status_code in (200, 422), r.text
        return r.status_code == 422 and r.json()["error"]["code"] == "prompt_injection"

    # Requests with personal data reach the classifier without the PII guard's placeholders (which it would
    # read as markup): the demo's own request once got a 422 this way.
    assert not blocked("I was charged twice on card 4111 1111 1111 1111, email me at jane.doe@example.com")
    assert not blocked("my name is Jane, call me on +44 20 7946 0958 about card 4111-1111-1111-1111")
    stopped = sum(blocked(t) for t in missed)
    false_blocks = sum(blocked(t) for t in benign)
    assert stopped / len(missed) >= 0.8, (stopped, len(missed))
    assert false_blocks / len(benign) <= 0.05, (false_blocks, len(benign))
