"""The federated stage on Flower's simulation engine (Ray), three sites with the tiny BERT: what the
federation and every site keep, the aggregate against the sites' own updates, and sites that cannot take part."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from steward.errors import ConfigError, FederatedError
from steward.ledger import verify
from tests.federated.conftest import federation, site


def _events(run_dir: Path, stage: str) -> list[dict[str, Any]]:
    lines = (run_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["stage"] == stage]


def _npz(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


@pytest.fixture(scope="module")
def fedavg_run(site_files: dict[str, Any], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from steward.federated import run

    run_dir = tmp_path_factory.mktemp("federation")
    sites = [site(f"site-{i}", p) for i, p in enumerate(site_files["files"])]
    run(federation(run_dir, sites, tiny_model, site_files["labels"]))
    return run_dir


def test_each_round_averages_the_updates_the_sites_recorded(fedavg_run: Path) -> None:
    rounds = _events(fedavg_run, "federated_round")
    assert [e["summary"]["round"] for e in rounds] == [1, 2]
    for event in rounds:
        s = event["summary"]
        assert s["aggregated"] and s["sites"] == ["site-0", "site-1", "site-2"] and not s["left_out"]
        updates, weights = [], []
        for name in s["sites"]:
            site_dir = fedavg_run / "sites" / name
            sent = [e for e in _events(site_dir, "federated_update") if e["summary"]["round"] == s["round"]]
            # what the site recorded sending is what the federation recorded receiving
            assert len(sent) == 1 and sent[0]["summary"]["update_sha256"] == s["update_sha256"][name]
            updates.append(_npz(site_dir / "federated" / "updates" / f"round-{s['round']:04d}.npz"))
            weights.append(s["rows"][name])
        aggregate = _npz(fedavg_run / event["outputs"][0]["path"])
        total = sum(weights)
        for k, tensor in enumerate(aggregate):  # FedAvg: the row-weighted mean of the sites' tensors
            expected = sum(w * u[k] for w, u in zip(weights, updates, strict=True)) / total
            np.testing.assert_allclose(tensor, expected, rtol=1e-5, atol=1e-6)
    assert verify(fedavg_run).ok
    for name in ("site-0", "site-1", "site-2"):
        assert verify(fedavg_run / "sites" / name).ok


def test_the_final_model_is_a_train_folder_naming_every_site(fedavg_run: Path, site_files: dict[str, Any]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = json.loads((fedavg_run / "train" / "manifest.json").read_text())
    fed = manifest["federation"]
    assert manifest["labels"] == site_files["labels"] and manifest["method"] == "lora"
    assert [s["name"] for s in fed["sites"]] == ["site-0", "site-1", "site-2"]
    for s in fed["sites"]:  # each site's data card, by the hash the site reported
        card = fedavg_run / "sites" / s["name"] / "data" / "data_card.md"
        from steward.hashing import sha256_file

        assert s["data_card_sha256"] == sha256_file(card)
    last = fed["history"][-1]
    assert set(last["scores"]) == {"site-0", "site-1", "site-2"}  # each site scored the global model locally
    accs = [v["accuracy"] for v in last["scores"].values()]
    assert last["accuracy_worst"] == pytest.approx(min(accs), abs=1e-6)
    assert last["accuracy_spread"] == pytest.approx(max(accs) - min(accs), abs=1e-6)
    final = _events(fedavg_run, "federated")[-1]
    assert final["summary"]["rounds"] == 2
    # the folder loads as any trained model: the last aggregate merged into the base
    model = AutoModelForSequenceClassification.from_pretrained(fedavg_run / "train" / "model")
    tok = AutoTokenizer.from_pretrained(fedavg_run / "train" / "model")
    assert model(**tok(["where is my parcel"], return_tensors="pt")).logits.shape == (1, len(manifest["labels"]))


def test_a_site_that_cannot_take_part_is_left_out_by_name(site_files: dict[str, Any], tiny_model: Path,
                                                          tmp_path: Path) -> None:
    """Through the real command, on a YAML file with paths relative to it: a site with labels outside the
    agreed set and a site whose data stage fails are each named with their reason in every round's record;
    the two good sites still train the model."""
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    from steward.demo import PLANTED_LOSS_LIMITS

    files = site_files["files"]
    shutil.copy(files[0], tmp_path / "a.csv")
    shutil.copy(files[1], tmp_path / "b.csv")
    (tmp_path / "odd.csv").write_text(files[2].read_text(encoding="utf-8").replace(",refund,", ",chitchat,"),
                                      encoding="utf-8")
    lines = files[2].read_text(encoding="utf-8").splitlines(keepends=True)  # a site that sees one label only
    (tmp_path / "one.csv").write_text(lines[0] + "".join(x for x in lines[1:] if ",billing," in x), encoding="utf-8")
    sites = [{"name": n, "data": {"input": {"path": f}}} for n, f in
             (("good-a", "a.csv"), ("good-b", "b.csv"), ("odd-labels", "odd.csv"), ("no-file", "missing.csv"),
              ("one-label", "one.csv"))]
    (tmp_path / "federation.yaml").write_text(yaml.safe_dump({
        "run_dir": "run",
        "data": {"input": {"group_columns": ["gender"]}, "loss": {"max_share_by_reason": PLANTED_LOSS_LIMITS},
                 "pii": {"ner": False}, "split": {"validation": 0.15, "test": 0.15}},
        "federated": {"sites": sites, "rounds": 2, "min_sites": 2},
        "train": {"model": str(tiny_model), "labels": site_files["labels"], "batch_size": 16, "max_length": 32,
                  "mlflow": False}}), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "steward.cli.app", "federated", "-c", "federation.yaml", "--json"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600,
                       env={**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""})
    assert r.returncode == 0, r.stderr[-3000:]
    fed = json.loads(r.stdout)  # --json: the federation's manifest and nothing else on stdout
    assert [h["round"] for h in fed["history"]] == [1, 2]
    for event in _events(tmp_path / "run", "federated_round"):
        s = event["summary"]
        assert s["aggregated"] and s["sites"] == ["good-a", "good-b", "one-label"]
        assert "chitchat" in s["left_out"]["odd-labels"] and "outside the agreed set" in s["left_out"]["odd-labels"]
        assert "data stage failed" in s["left_out"]["no-file"]
    assert (tmp_path / "run" / "sites" / "good-a" / "data" / "manifest.json").is_file()  # resolved beside the YAML


def test_too_few_sites_left_is_an_error_not_a_model(site_files: dict[str, Any], tiny_model: Path,
                                                    tmp_path: Path) -> None:
    from steward.federated import run

    sites = [site("good-a", site_files["files"][0]), site("no-file", tmp_path / "missing.csv")]
    with pytest.raises(FederatedError, match="no-file"):
        run(federation(tmp_path / "run", sites, tiny_model, site_files["labels"], rounds=1, min_sites=2))
    assert not (tmp_path / "run" / "train").exists()


def test_malformed_updates_never_reach_the_average() -> None:
    """The strategy's check on Flower's own reply objects: a wrong shape, NaN values, a hash that is not the
    one the site recorded — each left out with its reason; with too few left the round keeps the old model."""
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters
    from flwr.server.strategy import FedAvg

    from steward.federated.apps import recorded_strategy
    from steward.federated.params import ParamSpec, update_hash

    spec = ParamSpec(("w", "b"), ((2, 2), (2,)))

    class Proxy:
        def __init__(self, cid: str) -> None:
            self.cid = cid

    def reply(name: str, arrays: list[np.ndarray], rows: int, claimed: str | None = None) -> tuple[Proxy, FitRes]:
        metrics = {"site": name, "update_sha256": claimed or update_hash(arrays)}
        return Proxy(name), FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), rows, metrics)

    good = [np.ones((2, 2), np.float32), np.zeros(2, np.float32)]
    other = [np.full((2, 2), 3.0, np.float32), np.ones(2, np.float32)]
    nan = [np.full((2, 2), np.nan, np.float32), np.zeros(2, np.float32)]
    rounds: list[tuple[Any, ...]] = []

    class Rec:
        def round(self, *args: Any, secure: bool = False) -> None:
            rounds.append(args)

    strategy = recorded_strategy(FedAvg(), spec, 2, True, Rec())
    results = [reply("a", good, 1), reply("b", other, 3), reply("shape", [np.ones((3, 2), np.float32), np.zeros(2, np.float32)], 5),
               reply("nan", nan, 5), reply("forged", good, 5, claimed="sha256:" + "0" * 64)]
    params, _ = strategy.aggregate_fit(1, results, [])
    from flwr.common import parameters_to_ndarrays

    mean = parameters_to_ndarrays(params)
    np.testing.assert_allclose(mean[0], np.full((2, 2), 2.5))  # (1·1 + 3·3) / 4: only a and b
    left_out = rounds[-1][3]
    assert "shape" in left_out["shape"] and "NaN" in left_out["nan"] and "hash" in left_out["forged"]
    params, _ = strategy.aggregate_fit(2, [reply("a", good, 1), reply("nan", nan, 5)], [])
    assert params is None and rounds[-1][1] is None  # one valid site < min_sites: no new global model
    # under secure aggregation every reply holds the one unmasked sum; individual updates stop the run
    secure = recorded_strategy(FedAvg(), spec, 2, True, Rec(), secure=True)
    assert secure.aggregate_fit(1, [reply("a", good, 1), reply("b", good, 3)], [])[0] is not None
    with pytest.raises(FederatedError, match="SecAgg"):
        secure.aggregate_fit(2, [reply("a", good, 1), reply("b", other, 3)], [])


def test_fedprox_pulls_toward_the_global_weights() -> None:
    import torch

    from steward.federated.site import proximal_term

    model = torch.nn.Linear(3, 2)
    term = proximal_term(model, 0.5)
    assert float(term(model)) == 0.0  # at the global weights
    with torch.no_grad():
        model.weight.add_(1.0)
    assert float(term(model)) == pytest.approx(0.5 / 2 * 6)  # μ/2 · ‖Δ‖², six weights moved by 1
    assert proximal_term(model, 0.0) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"train": {"labels": None}}, "train.labels"),
    ({"train": {"labels": ["x", "y"], "privacy": {"enabled": True}}}, "fresh accountant"),
    ({"federated": {"sites": [{"name": "a"}, {"name": "a"}]}}, "unique"),
    ({"federated": {"sites": [{"name": "a"}, {"name": "b"}], "min_sites": 3}}, "min_sites"),
    ({"federated": {"sites": [{"name": "A b"}, {"name": "b"}]}}, "sites.0.name"),
    ({"federated": {"sites": [{"name": "a"}, {"name": "b"}], "secure_aggregation": {"enabled": True},
                    "central_dp": {"enabled": True, "clipping": "server"}}}, "never sees one site's update"),
    ({"federated": {"sites": [{"name": "a"}, {"name": "b"}], "strategy": {"weighted": True},
                    "central_dp": {"enabled": True}}}, "sites count alike"),
    ({"federated": {"sites": [{"name": "a"}, {"name": "b"}], "strategy": {"name": "fedadam"},
                    "central_dp": {"enabled": True}}}, "no \\(ε, δ\\) would hold"),
    ({"federated": {"sites": [{"name": f"s{i}"} for i in range(70)], "secure_aggregation": {"enabled": True}}},
     "wrap around"),
])
def test_bad_federation_configs_name_the_field(change: dict[str, Any], message: str) -> None:
    from steward.config import parse_federation

    raw: dict[str, Any] = {"federated": {"sites": [{"name": "a"}, {"name": "b"}]}, "train": {"labels": ["x", "y"]}}
    for key, value in change.items():
        raw[key] = {**raw[key], **value}
    with pytest.raises(ConfigError, match=message):
        parse_federation(raw)


@pytest.fixture(scope="module")
def private_run(site_files: dict[str, Any], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Secure aggregation (SecAgg+) and central DP with client-side clipping, on the same three sites."""
    from steward.federated import run

    run_dir = tmp_path_factory.mktemp("private_federation")
    sites = [site(f"site-{i}", p) for i, p in enumerate(site_files["files"])]
    run(federation(run_dir, sites, tiny_model, site_files["labels"], min_sites=2,
                   secure_aggregation={"enabled": True},
                   central_dp={"enabled": True, "noise_multiplier": 0.5, "clipping_norm": 0.1}))
    return run_dir


def test_secure_aggregation_with_central_dp(private_run: Path) -> None:
    """What the sites sent is clipped to the norm; the server's aggregate is their plain mean (SecAgg+ sums
    masked, quantised vectors: the sum comes out exact to quantisation) plus Gaussian noise of σ = z·C/min_sites;
    ε is the RDP accountant's for the rounds released."""
    from steward.federated.privacy import central_epsilon

    rounds = _events(private_run, "federated_round")
    assert [e["summary"]["round"] for e in rounds] == [1, 2]
    previous = None
    for event in rounds:
        s = event["summary"]
        assert s["aggregated"] and s["secure_aggregation"] and s["sites"] == ["site-0", "site-1", "site-2"]
        assert s["epsilon_spent"] == pytest.approx(central_epsilon(0.5, s["round"], 1e-5), rel=1e-3)
        global_before = (_npz(previous) if previous is not None else None)
        sent = []
        for name in s["sites"]:
            site_dir = private_run / "sites" / name
            update = _npz(site_dir / "federated" / "updates" / f"round-{s['round']:04d}.npz")
            sent.append(update)
            logged = [e for e in _events(site_dir, "federated_update") if e["summary"]["round"] == s["round"]]
            assert logged[0]["summary"]["update_sha256"] == s["update_sha256"][name]  # as the site reported it
            if global_before is not None:  # the change it sent is within the clipping norm
                delta = np.sqrt(sum(float(((u - g) ** 2).sum()) for u, g in zip(update, global_before, strict=True)))
                assert delta <= 0.1 + 1e-4
        path = private_run / event["outputs"][0]["path"]
        aggregate = _npz(path)
        noise = np.concatenate([(a - sum(u[k] for u in sent) / len(sent)).ravel() for k, a in enumerate(aggregate)])
        # σ = z · 2C / min_sites = 0.5 · 0.2 / 2: one site moves a mean of ≥ 2 equals by up to 2C/2
        assert noise.std() == pytest.approx(0.05, rel=0.05) and abs(noise.mean()) < 1e-3
        previous = path
    manifest = json.loads((private_run / "train" / "manifest.json").read_text())
    assert manifest["privacy"]["enabled"] and manifest["privacy"]["level"] == "site"
    assert manifest["privacy"]["epsilon"] == pytest.approx(central_epsilon(0.5, 2, 1e-5), rel=1e-3)
    assert verify(private_run).ok


def test_the_privacy_budget_is_checked_before_any_site_trains(site_files: dict[str, Any], tiny_model: Path,
                                                              tmp_path: Path) -> None:
    from steward.federated import run
    from steward.federated.privacy import central_epsilon

    assert central_epsilon(1.0, 3, 1e-5) < central_epsilon(1.0, 6, 1e-5) < central_epsilon(0.5, 6, 1e-5)
    sites = [site(f"site-{i}", p) for i, p in enumerate(site_files["files"])]
    cfg = federation(tmp_path / "run", sites, tiny_model, site_files["labels"], rounds=50,
                     central_dp={"enabled": True, "noise_multiplier": 0.5, "target_epsilon": 8.0})
    with pytest.raises(ConfigError, match=r"above target_epsilon 8\.0"):
        run(cfg)
    assert not (tmp_path / "run" / "sites").exists()  # refused before any site ran its data stage


def test_central_dp_noise_is_calibrated_unpredictable_and_clips() -> None:
    """Flower's server-side DP wrapper inside ours, on Flower's own reply objects: each update is clipped to C
    around the global weights, the noise on the mean has σ = z·2C/min_sites, and seeding numpy (as the train
    stage does) does not make it reproducible; with client-side clipping an unclipped update is left out."""
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

    from steward.federated.apps import recorded_strategy
    from steward.federated.params import ParamSpec, update_hash

    spec = ParamSpec(("w",), ((200, 100),))
    zero = [np.zeros((200, 100), np.float32)]

    class Proxy:
        cid = "x"

    def reply(name: str, arrays: list[np.ndarray]) -> tuple[Proxy, FitRes]:
        return Proxy(), FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), 10,
                               {"site": name, "update_sha256": update_hash(arrays)})

    class Rec:
        def round(self, *args: Any, secure: bool = False) -> None:
            self.last = args

    def noised(seed: int) -> np.ndarray:
        dp = DifferentialPrivacyServerSideFixedClipping(FedAvg(), noise_multiplier=2 * 0.5, clipping_norm=1.0,
                                                        num_sampled_clients=2)
        dp.current_round_params = zero  # what its configure_fit records from the round's global weights
        strategy = recorded_strategy(dp, spec, 2, False, Rec(), noised=True)
        big = [np.full((200, 100), 5.0, np.float32)]  # norm 707: clipped to 1, i.e. 0.005 a value
        np.random.seed(seed)
        params, _ = strategy.aggregate_fit(1, [reply("a", big), reply("b", [-big[0]])], [])
        return parameters_to_ndarrays(params)[0]

    first, second = noised(13), noised(13)
    assert first.std() == pytest.approx(0.5 * 2 * 1.0 / 2, rel=0.05)  # the clipped mean is 0: all noise
    assert not np.allclose(first, second)  # the same seed, different noise
    rec = Rec()
    client = recorded_strategy(FedAvg(), spec, 2, False, rec, client_clip=1.0)
    client.global_arrays = zero  # what its configure_fit records from the round's global weights
    within = [np.full((200, 100), 0.004, np.float32)]  # norm 0.57 ≤ 1
    params, _ = client.aggregate_fit(1, [reply("a", within), reply("b", within),
                                         reply("loud", [np.full((200, 100), 0.5, np.float32)])], [])
    _, aggregate, kept, left_out = rec.last
    assert params is not None and [k[2] for k in kept] == ["a", "b"]
    assert "exceeds central_dp.clipping_norm" in left_out["loud"]
    np.testing.assert_allclose(aggregate[0], within[0])


def test_secure_aggregation_that_cannot_recover_the_sum_is_recorded(site_files: dict[str, Any], tiny_model: Path,
                                                                    tmp_path: Path) -> None:
    """Two sites under SecAgg+, one of which fails: the protocol cannot recover the sum, the round is on the
    record as not aggregated with the reason, and with no round aggregated the run fails without a model."""
    from steward.federated import run

    sites = [site("good-a", site_files["files"][0]), site("no-file", tmp_path / "missing.csv")]
    with pytest.raises(FederatedError, match="no round aggregated"):
        run(federation(tmp_path / "run", sites, tiny_model, site_files["labels"], rounds=1, min_sites=2,
                       secure_aggregation={"enabled": True}))
    rounds = _events(tmp_path / "run", "federated_round")
    assert len(rounds) == 1 and not rounds[0]["summary"]["aggregated"]
    assert "could not recover the sum" in json.dumps(rounds[0]["summary"]["left_out"])
    assert not (tmp_path / "run" / "train").exists()
