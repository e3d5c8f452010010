"""What ``/v1/models`` says about the served model: release facts a caller may see, never a server path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steward.compress.release import ServedModel
from steward.ledger.trust import summary
from steward.records import Scorecard, TrainManifest


def public_base_model(manifest: TrainManifest) -> dict[str, Any] | None:
    """The train manifest's base model as a caller may see it: a name and the weights' hash, never a path on
    the server (a local model folder is named by its last part; hub ids and the embedded default as they are)."""
    base = manifest.base_model
    if not base:
        return None
    model_id = str(base.get("id") or "")
    if Path(model_id).is_absolute() or model_id.startswith(("./", "../", "~")):
        model_id = Path(model_id).name
    return {"id": model_id, "weights_sha256": base.get("weights_sha256")}


def public_inputs(inputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The train manifest's data inputs with paths outside the run folder named by their file name only."""
    if not inputs:
        return inputs
    return {k: {**v, "path": Path(str(v.get("path", ""))).name if Path(str(v.get("path", ""))).is_absolute()
                else v.get("path")} for k, v in inputs.items()}


def scorecard_summary(sc: Scorecard | None) -> dict[str, Any] | None:
    """The scorecard's verdict, composite, gates and headline figures."""
    if sc is None:
        return None
    return {"passed": sc.passed, "composite": (sc.composite or {}).get("value"),
            "gates": [{k: g[k] for k in ("gate", "measured", "threshold", "passed")} for g in sc.gates],
            "figures": {f"{p}.{k}": v.get("value") for p, d in sc.probes.items()
                        for k, v in (d.get("figures") or {}).items()}}


def model_entry(served: ServedModel, run_dir: Path, guards: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``/v1/models`` entry: version, labels, hashes, threshold, privacy, scorecard, card, guard models."""
    card = run_dir / "evaluate" / "MODEL_CARD.md"
    return {
        "id": served.version, "labels": served.labels, "base_model": public_base_model(served.manifest),
        "method": served.manifest.method, "weights_sha256": served.weights_sha256,
        "artifact": served.model_dir.relative_to(run_dir).as_posix()
        if served.model_dir.is_relative_to(run_dir) else served.model_dir.name,
        "data_inputs": public_inputs(served.manifest.data_inputs), "abstain_threshold": served.threshold,
        "threshold_source": served.threshold_source, "privacy": served.manifest.privacy,
        "scorecard": scorecard_summary(served.scorecard), "model_card": "/v1/models/card" if card.is_file() else None,
        "guards": guards, "ledger": summary(served.ledger)}



def evidence_section(transparency: dict[str, Any] | None, served: ServedModel) -> str:
    """The served model card's "Evidence" section: the key that signs the audit log (to verify receipts with)
    and the signed ledger events that vouch for the model served (docs/audit.md)."""
    lines = ["", "", "## Evidence: how to check this service", ""]
    if transparency is not None:
        lines.append(f"- Audit log `{transparency['origin']}`, signed with {transparency['algorithm']} key "
                     f"`{transparency['key_id']}`; public key `{transparency['public_key']}`. Check a receipt "
                     f"offline: `steward audit verify-receipt receipt.json --public-key {transparency['public_key']}`.")
    else:
        lines.append("- The audit log is not signed (`transparency.enabled: false`): its hash chain alone.")
    ledger = summary(served.ledger)
    lines.append(f"- The served files, as the run's signed ledger recorded them (key `{ledger['signed_by']}`):")
    lines += [f"  - `{path}`: sha256 `{a['sha256'][:16]}…`, ledger event {a['event']} ({a['stage']})"
              for path, a in ledger["artifacts"].items()]
    return "\n".join(lines) + "\n"
