"""The real default models end to end: `steward demo` trains all-MiniLM-L6-v2 (PyPI), evaluates, compresses and
serves it, fine-tunes SmolLM2-135M-Instruct (PyPI) on support conversations and chats with it through the
gateway, and verifies both runs' ledgers."""

import json
import os
import subprocess
import sys
from pathlib import Path

from steward.hashing import digest


def test_demo_trains_the_real_model(tmp_path: Path) -> None:
    env = {**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "steward.cli.app", "demo", "--run-dir", str(tmp_path / "demo"),
                        "--rows", "800", "--chat-rows", "40", "--federated-rows", "450", "--json"],
                       capture_output=True, text=True, env=env,
                       timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    m = out["train"]
    assert m["base_model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2" and m["method"] == "lora"
    assert len(m["labels"]) == 8
    # 8 intents from ~600 messages in one epoch: far above the 1/8 chance level
    assert m["best_metric"]["value"] > 0.5, m["history"]
    assert out["ledger"]["ok"] and out["ledger"]["events"] == 4  # data, train, evaluate, compress
    assert (tmp_path / "demo" / "train" / "model" / "model.safetensors").is_file()
    sc = out["evaluate"]
    probes = sc["probes"]
    assert not any(p.get("skipped") for p in probes.values()), {k: p.get("skipped") for k, p in probes.items()}
    # The real model learnt the intents: accuracy well above chance, with an interval around it.
    acc = probes["performance"]["figures"]["accuracy"]
    assert acc["value"] > 0.5 and acc["ci"][0] <= acc["value"] <= acc["ci"][1]
    assert set(probes["fairness"]["details"]["columns"]) == {"gender", "age_band"}
    assert probes["explainability"]["figures"]["comprehensiveness"]["value"] > \
        probes["explainability"]["figures"]["comprehensiveness_random"]["value"]
    assert {g["gate"] for g in sc["gates"]} >= {"min_f1", "max_attack_success", "max_mia_auc"}
    assert (tmp_path / "demo" / "evaluate" / "report.html").stat().st_size > 50_000
    comp = out["compress"]
    assert [c["name"] for c in comp["candidates"]] == ["original", "dynamic_int8", "onnx_int8"]
    by = {c["name"]: c for c in comp["candidates"]}
    assert by["onnx_int8"]["size_bytes"] < 0.4 * by["original"]["size_bytes"]  # int8 weights and embeddings
    assert all(c["accuracy"] is not None for c in comp["candidates"])
    served = out["serve"]
    plain, pii, injection = served["requests"]
    assert plain["status"] == 200 and pii["status"] == 200
    found = {f["type"] for g in pii["body"]["decisions"][0]["findings"] if g["guard"] == "pii" for f in g["findings"]}
    assert found == {"CREDIT_CARD", "EMAIL_ADDRESS"}
    assert injection["status"] == 422 and injection["body"]["error"]["code"] == "prompt_injection"
    assert served["audit"]["ok"] and served["audit"]["records"] == 4  # 2 decisions, 1 refusal, 1 feedback
    # the demo fetched a decision's receipt and verified it offline; the CLI agrees, with the key alone
    receipt = served["receipt"]
    assert receipt["tree_size"] >= 1 and receipt["leaf_index"] == plain["body"]["decisions"][0]["receipt"]["leaf_index"]
    check = subprocess.run([sys.executable, "-m", "steward.cli.app", "audit", "verify-receipt", receipt["path"],
                            "--public-key", receipt["public_key"]], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    chosen = json.loads((tmp_path / "demo" / "compress" / "chosen.json").read_text())
    version = plain["body"]["decisions"][0]["model_version"]
    assert (chosen["name"] in version) if chosen["name"] != "original" else ("-" not in version.split("@")[1])
    chat = out["chat"]
    tm = chat["train"]
    assert tm["task"] == "chat" and tm["method"] == "lora"
    assert tm["base_model"]["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and tm["tokens_per_second"] > 0
    gw = chat["gateway"]
    facts = gw["facts"]
    assert facts["model"]["source"] == "run" and facts["model"]["method"] == "lora"  # the fine-tuned model, not the base
    assert facts["model_hash"] == digest(tm["model_weights_sha256"])
    ordinary, injection, pii = gw["turns"]
    assert ordinary["status"] == 200 and ordinary["body"]["choices"][0]["message"]["content"].strip()
    assert injection["status"] == 400 and injection["body"]["error"]["code"] == "prompt_injection"
    assert pii["status"] == 200
    found = {f["type"] for g in pii["body"]["steward"]["findings"] if g.get("guard") == "pii" for f in g["findings"]}
    assert found >= {"CREDIT_CARD", "EMAIL_ADDRESS"}
    assert gw["audit"]["ok"] and gw["audit"]["records"] == 3
    assert ordinary["body"]["steward"]["receipt"]["leaf_index"] >= 0  # every answer carries its receipt
    assert gw["audit_model_hashes"] == [facts["model_hash"]]  # every answer names the model that gave it
    # the chat part ends with the generative scorecard of the fine-tuned model against its base
    ev = chat["evaluate"]
    assert ev["task"] == "chat" and ev["base"]["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    for probe in ("quality", "safety", "counterfactual", "toxicity", "injection", "privacy", "resources"):
        assert not ev["probes"][probe].get("skipped"), (probe, ev["probes"][probe].get("skipped"))
        assert ev["probes"][probe]["delta"], probe
    # fine-tuned on the support conversations: their held-out answers are likelier than under the base model
    assert ev["probes"]["quality"]["delta"]["token_loss"]["value"] < 0
    assert ev["probes"]["privacy"]["details"]["canaries"] and "canary_exposure_max" in ev["probes"]["privacy"]["figures"]
    assert {g["gate"] for g in ev["gates"]} == {"max_safety_regression", "max_pii_regurgitation"}
    assert (tmp_path / "demo" / "chat" / "evaluate" / "report.html").is_file()
    assert out["chat_ledger"]["ok"] and out["chat_ledger"]["events"] == 3  # data, train, evaluate
    # the federated part: three sites on Flower under secure aggregation, every ledger intact
    fed = out["federated"]
    assert [h["sites"] for h in fed["history"]] == [["east", "north", "south"]] * 2
    assert all(h["aggregated"] and not h["left_out"] for h in fed["history"]) and fed["secure_aggregation"]["enabled"]
    assert out["federated_ledger"]["ok"] and out["federated_ledger"]["events"] == 3  # two rounds, then the model
    for name in ("north", "south", "east"):  # each site: its data stage and the two updates it sent
        assert out[f"site_ledger_{name}"]["ok"] and out[f"site_ledger_{name}"]["events"] == 3
