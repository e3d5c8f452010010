"""``steward keys`` and ``steward audit``: API keys and the service's audit log, from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import (
    EXIT_FAILED,
    console,
    err_console,
    existing_run_dir,
    handle_errors,
    print_json,
    table,
)

keys_app = typer.Typer(help="Create, list and revoke the service's API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Verify and export the service's audit log (a signed transparency log), check "
                             "receipts, manage its signing key.", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (for serve.database_url).")]
RunDirOpt = Annotated[Path | None, typer.Option("--run-dir", "-r", help="The served run folder.")]


def _audit(config: Path | None, run_dir: Path | None):  # type: ignore[no-untyped-def]
    from steward.config.loader import load_config
    from steward.service.audit import AuditLog, database_url
    from steward.service.core import record_cipher

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else {})
    return AuditLog(database_url(cfg.serve.database_url, Path(cfg.run_dir)),
                    record_cipher(cfg.serve, Path(cfg.run_dir), create=False))


@keys_app.command("create")
@handle_errors
def keys_create(
    role: Annotated[str, typer.Option(help="predict (may also label its own decisions), reviewer (labels any "
                                           "decision), chat (the gateway) or admin.")],
    config: ConfigOpt = None, run_dir: RunDirOpt = None,
    name: Annotated[str | None, typer.Option(help="A label for the key (who or what uses it).")] = None,
) -> None:
    """Create a key. The key is printed once, on the last line, and never stored (only its hash is)."""
    from steward.service.keys import KeyStore

    log = _audit(config, run_dir)
    rec, key = KeyStore(log.engine).create(role, name)
    console.print(f"created key {rec.key_id} with role {rec.role}; store it now, it cannot be shown again:",
                  highlight=False)
    print(key)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after 'stw_').")],
                config: ConfigOpt = None, run_dir: RunDirOpt = None) -> None:
    """Revoke a key: requests with it get 401 from then on (a running service notices within its
    serve.key_cache_seconds, 2 s by default)."""
    from steward.service.keys import KeyStore

    if not KeyStore(_audit(config, run_dir).engine).revoke(key_id):
        err_console.print(f"[red]no key with id {key_id!r}[/] (see `steward keys list`)", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    console.print(f"revoked {key_id}")


@keys_app.command("list")
@handle_errors
def keys_list(config: ConfigOpt = None, run_dir: RunDirOpt = None,
              json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (ids, roles, names, creation time, revoked) — never the keys themselves."""
    from steward.service.keys import KeyStore

    keys = KeyStore(_audit(config, run_dir).engine).list()
    if json_out:
        print_json(keys)
        return
    t = table("API keys", "key_id", "role", "name", "created", "revoked")
    for k in keys:
        t.add_row(*(str(k[c]) for c in ("key_id", "role", "name", "created", "revoked")))
    console.print(t)


PublicKeyOpt = Annotated[str | None, typer.Option(
    "--public-key", help="The log's public key (base64 as `steward audit public-key` prints it, or a file holding "
                         "it). Default: the key this machine's service signs with.")]


def _public_key(value: str | None, config: Path | None, run_dir: Path | None) -> bytes:
    from steward.ledger.checkpoint import read_public_key

    if value is None:
        return _transparency(config, run_dir)[1].signer.public_key
    return read_public_key(value)


def _transparency(config: Path | None, run_dir: Path | None):  # type: ignore[no-untyped-def]
    from steward.config.loader import load_config
    from steward.errors import ConfigError
    from steward.service.audit import AuditLog, database_url
    from steward.service.signing import resolve

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else {})
    url = database_url(cfg.serve.database_url, Path(cfg.run_dir))
    t = resolve(cfg.serve.transparency, Path(cfg.run_dir), url, AuditLog(url).log_id)
    if t is None:
        raise ConfigError("serve.transparency.enabled is false: this log is not signed (no checkpoints, no receipts)")
    return cfg, t


@audit_app.command("keygen")
@handle_errors
def audit_keygen(out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the private key (PEM, "
                                                                       "mode 0600); outside any run folder.")],
                 data_key: Annotated[bool, typer.Option(
                     "--data-key", help="Make the audit data key instead (seals each record's text; "
                                        "audit_encryption.key).")] = False,
                 json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Create an Ed25519 signing key for the audit log and print its public key (publish that); with
    --data-key, the key that seals each record's text (keep it secret, apart from the database)."""
    from steward.ledger.checkpoint import Ed25519Signer, key_id, public_key_text, write_key

    if data_key:
        from steward.errors import ConfigError
        from steward.service.erasure import load_cipher, write_data_key

        if out.exists():
            raise ConfigError(f"--out: {out} exists; a data key is never overwritten (records sealed under it "
                              "could no longer be read). Fix: choose another path")
        path = write_data_key(out)
        doc = {"data_key": str(path), "key_id": load_cipher(path).key_id}  # type: ignore[union-attr]
        if json_out:
            print_json(doc)
        else:
            console.print(f"wrote {path} (key id {doc['key_id']}): keep it secret, outside the run folder and the "
                          "database; set audit_encryption.key to it", highlight=False)
        return

    signer = Ed25519Signer.generate()
    path = write_key(signer, out)
    doc = {"private_key": str(path), "public_key": public_key_text(signer.public_key),
           "key_id": key_id(signer.public_key)}
    if json_out:
        print_json(doc)
        return
    console.print(f"wrote {path} (keep it secret, apart from the run folder); public key:", highlight=False)
    print(doc["public_key"])


@audit_app.command("public-key")
@handle_errors
def audit_public_key(config: ConfigOpt = None, run_dir: RunDirOpt = None,
                     json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The public key (and log name) that the service signs this run's audit checkpoints with."""
    _cfg, t = _transparency(config, run_dir)
    if json_out:
        print_json(t.describe())
        return
    print(t.public_key)


@audit_app.command("verify-receipt")
@handle_errors
def audit_verify_receipt(
    receipt: Annotated[Path, typer.Argument(help="A receipt (JSON) from GET /v1/receipts/{decision_id}.")],
    public_key: Annotated[str, typer.Option("--public-key", help="The log's public key (base64) or a file "
                                                                  "holding it.")],
    record_hash: Annotated[str | None, typer.Option(
        "--record-hash", help="The record hash the service's response gave for this decision (its `receipt`): "
                              "without it the receipt proves that some record is in the log, not which.")] = None,
    origin: Annotated[str | None, typer.Option(
        "--origin", help="The log's name (/v1/models: transparency.origin). Default: any Steward audit log.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check a receipt offline, with the public key alone: the checkpoint's signature and the decision's
    inclusion in it. Exit 0 if it holds, 1 naming what fails."""
    import json as json_mod

    from steward.errors import LedgerIntegrityError
    from steward.service.transparency import verify_receipt

    doc = json_mod.loads(receipt.read_text(encoding="utf-8"))
    key = _public_key(public_key, None, None)
    try:
        cp = verify_receipt(doc, key, record_hash=record_hash, origin=origin)
    except LedgerIntegrityError as exc:
        if json_out:
            print_json({"ok": False, "error": str(exc)})
        else:
            err_console.print(f"[bold red]receipt does not verify[/]: {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    out = {"ok": True, "decision_id": doc.get("decision_id"), "leaf_index": doc["leaf_index"], "tree_size": cp.size,
           "signed_at": cp.time, "origin": cp.origin}
    if json_out:
        print_json(out)
        return
    console.print(f"[green]receipt verifies[/]: decision {out['decision_id']} is entry {out['leaf_index']} of the "
                  f"log {cp.origin} of {cp.size} entries signed at {cp.time}", highlight=False)


@audit_app.command("verify")
@handle_errors
def audit_verify(config: ConfigOpt = None, run_dir: RunDirOpt = None,
                 witness: Annotated[Path | None, typer.Option(
                     "--witness", help="A witness folder of signed checkpoints: the log must extend every one.")] = None,
                 public_key: PublicKeyOpt = None,
                 json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Exit 0 if the chain is intact (and, with --witness, extends every checkpoint the witness holds);
    1 naming the first edited, deleted or reordered record, or the checkpoint the log contradicts."""
    log = _audit(config, run_dir)
    if witness is None:
        report = log.verify()
    else:
        from dataclasses import replace

        from steward.service.audit import AuditReport
        from steward.service.signing import check_witness

        _cfg, t = _transparency(config, run_dir)
        key = _public_key(public_key, config, run_dir)
        report = log.verify()
        problem = check_witness(log, replace(t, witness_dir=witness.expanduser().resolve()), key,
                                replaced_is_error=True) if report.ok else None
        if problem:
            report = AuditReport(False, report.records, problem)
    if json_out:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"[green]audit log intact[/]: {report.records} records")
    else:
        err_console.print(f"[bold red]audit log broken[/]: {report.error}", highlight=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@audit_app.command("rotate-key")
@handle_errors
def audit_rotate_key(
    new_key: Annotated[Path, typer.Option("--new-key", help="The new signing key (PEM, from `steward audit keygen`); "
                                                            "the current one comes from the config.")],
    config: ConfigOpt = None, run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Hand the audit log to a new signing key, recorded in the log: the current key signs the handover (a
    key_rotation record) and a checkpoint covering it; from then on only the new key signs. Stop the service
    first, then set transparency.signing_key to the new key and start it. Verifiers holding either key keep
    verifying the whole log."""
    from steward.ledger import witness as witness_mod
    from steward.ledger.checkpoint import Checkpoint, load_signer

    _cfg, t = _transparency(config, run_dir)
    log = _audit(config, run_dir)
    new = load_signer(new_key, run_dir=Path(_cfg.run_dir))
    done = log.rotate_key(t.signer, new, t.origin)
    if done["checkpoint"] is not None:  # the witness gets the old key's last word at once
        witness_mod.record(Checkpoint.from_dict(done["checkpoint"]), t.witness_dir)
    if json_out:
        print_json(done)
        return
    console.print(f"audit log handed from key {done['old_key_id']} to {done['new_key_id']} at record {done['seq']}; "
                  f"now set transparency.signing_key to {new_key} and start the service", highlight=False)


@audit_app.command("erase")
@handle_errors
def audit_erase(
    decision_id: Annotated[str | None, typer.Option("--decision-id", help="The decision to erase (with the "
                                                                          "feedback on it).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Erase every decision about this subject id: "
                                                "the 'user' field the requests sent, exactly as sent.")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the log (e.g. the request's reference).")] = "erasure request",
    config: ConfigOpt = None, run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Erase a decision's text for good, or every decision about one subject (a data-protection request): their
    records' data keys are destroyed, the erasure is logged as a record of its own, and the chain, the tree and
    every receipt still verify."""
    import getpass

    from steward.errors import ConfigError

    if (decision_id is None) == (subject is None):
        raise ConfigError("give exactly one of --decision-id ID (one decision) or --subject ID (every decision "
                          "whose request sent that 'user')")
    log = _audit(config, run_dir)
    if log.cipher is None:
        raise ConfigError("no audit data key on this machine: the records' text was never sealed here, or the key "
                          "is elsewhere. Fix: set audit_encryption.key (or $STEWARD_AUDIT_DATA_KEY) to the service's")
    by = f"cli:{getpass.getuser()}"
    if subject is not None:
        done = log.erase_subject(_subject_hash(config, run_dir, subject), by=by, reason=reason)
        what = f"{len(done['decisions'])} decision(s) about this subject"
    else:
        done = log.erase(decision_id or "", by=by, reason=reason)
        what = f"decision {decision_id}"
    if json_out:
        print_json(done)
        return
    console.print(f"erased {what}: records {done['erased_records']} can no longer be read; logged as record "
                  f"{done['erasure_record']}", highlight=False)
    if done["wal_cleared"] is False:
        console.print("[yellow]warning:[/] the write-ahead log was busy (a reader): the erased keys' old pages "
                      "leave it at the next checkpoint; run the command again to force it now")


def _subject_hash(config: Path | None, run_dir: Path | None, subject: str) -> str:
    """The subject's HMAC under the service secret of the run (``$STEWARD_AUDIT_KEY`` or ``serve/audit.key``)."""
    import os

    from steward.config.loader import load_config
    from steward.errors import ConfigError
    from steward.service.audit import subject_hash
    from steward.service.runfiles import SECRET_ENV, service_secret

    folder = Path(load_config(config, {"run_dir": str(run_dir)} if run_dir else {}).run_dir)
    if not os.environ.get(SECRET_ENV) and not (folder / "serve" / "audit.key").is_file():
        raise ConfigError(f"--subject: {folder / 'serve' / 'audit.key'} is missing (and ${SECRET_ENV} is unset): "
                          "subject ids are hashed under the service's secret, so without it none can be found. "
                          "Fix: run this where the service runs, or set the variable it uses")
    return subject_hash(service_secret(folder), subject)


@audit_app.command("export")
@handle_errors
def audit_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    config: ConfigOpt = None, run_dir: RunDirOpt = None,
    since: Annotated[str | None, typer.Option(help="ISO time (UTC), e.g. 2026-11-01T00:00:00.")] = None,
) -> None:
    """Write the records (all, or those since a time) as JSON lines for auditors."""
    n = _audit(config, run_dir).export(out, since)
    console.print(f"wrote {n} records to {out}")


@handle_errors
def reaudit(config: ConfigOpt = None, run_dir: RunDirOpt = None,
            json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Recompute performance and group fairness on the feedback collected by the service; judge the
    evaluate stage's performance and fairness gates on it (exit 1 if one fails). Writes RUN_DIR/reaudit/."""
    from steward.config.loader import load_config
    from steward.serve.reaudit import reaudit as do_reaudit

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else {})
    existing_run_dir(cfg)
    out = do_reaudit(cfg)
    if json_out:
        print_json(out)
    else:
        console.print(f"feedback cases: {out['feedback_cases']}")
        for name, p in out.get("probes", {}).items():
            for fig, v in p.get("figures", {}).items():
                console.print(f"  {name}.{fig} = {v['value']:.4g}")
        for g in out["gates"]:
            console.print(f"[{'green' if g['passed'] else 'red'}]{g['message']}[/]", highlight=False)
    if not out["passed"]:
        raise typer.Exit(EXIT_FAILED)


@handle_errors
def retrain(
    new_run_dir: Annotated[Path, typer.Option("--new-run-dir", help="Where the new run is written.")],
    config: ConfigOpt = None, run_dir: RunDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train a new run from the original data plus the service's labelled feedback, then evaluate it with the
    same gates (exit 1 if one fails). The original run is not touched."""
    from steward.config.loader import load_config
    from steward.serve.retrain import retrain as do_retrain

    cfg = load_config(config, {"run_dir": str(run_dir)} if run_dir else {})
    existing_run_dir(cfg)
    res = do_retrain(cfg, new_run_dir, progress=not json_out)
    summary = {"run_dir": str(res.run_dir), "feedback_rows": res.feedback_rows, "passed": res.passed,
               "best_metric": res.train_manifest["best_metric"],
               "gates": res.scorecard["gates"], "composite": res.scorecard["composite"]["value"]}
    if json_out:
        print_json(summary)
    else:
        console.print(f"new run {res.run_dir}: {res.feedback_rows} feedback rows added to train; best "
                      f"{summary['best_metric']['name']} {summary['best_metric']['value']:.4f}; composite "
                      f"{summary['composite']:.4g}", highlight=False)
        for g in res.scorecard["gates"]:
            console.print(f"[{'green' if g['passed'] else 'red'}]{g['message']}[/]", highlight=False)
    if not res.passed:
        raise typer.Exit(EXIT_FAILED)
