"""The data stage: raw labelled text -> clean, de-duplicated, PII-safe, balanced splits, with a full record.

Steps run in a fixed order (load, normalise, quality, dedup, pii, screen, balance, split, leakage). Each
step may drop rows (recorded in the quarantine with a reason) or change them (recorded as ``changed``);
``rows_in == rows_kept + rows_quarantined`` is checked before anything is written.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steward.at_rest import master_key, write_parquet
from steward.atomic import atomic_dir, write_json, write_text
from steward.config_base import config_digest
from steward.data import balance as bal
from steward.data import canaries, card, chat_steps, dedup, loss, normalise, quality, screen, splits
from steward.data import io as data_io
from steward.data.config import DataConfig, DataRun
from steward.data.pii.engine import PIIEngine
from steward.data.pii.operators import (
    OperatorContext,
    PIIKey,
    apply_operators,
    apply_to_tagged_tokens,
)
from steward.data.quarantine import FAILED_DIR, Quarantine
from steward.errors import ConfigError, DataLossError, DataStageError
from steward.hashing import sha256_file
from steward.ledger.store import Ledger, artifact, now_iso
from steward.progress import progress_bar
from steward.provenance import stamp
from steward.records import DataManifest
from steward.types import DatasetManifest

STAGE = "data"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DataResult:
    """What ``run`` returns: the summary (also in summary.json), the manifest and where outputs are."""

    summary: dict[str, Any]
    manifest: DatasetManifest
    out_dir: Path


def _normalise(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> pd.DataFrame:
    ncfg = cfg.normalise
    if cfg.input.task == "chat":
        return chat_steps.normalise_turns(frame, cfg, q)
    if cfg.input.task == "ner":
        new_tokens = [[normalise.normalise_token(t, ncfg) for t in toks] for toks in frame["tokens"]]
        # Tokens emptied by normalisation (a lone zero-width space) are removed with their tag.
        kept = [[(t, g) for t, g in zip(toks, tags, strict=True) if t] for toks, tags in zip(new_tokens, frame["tags"],
                                                                                             strict=True)]
        frame = frame.assign(tokens=[[t for t, _ in k] for k in kept], tags=[[g for _, g in k] for k in kept])
        new_text = pd.Series([" ".join(t) for t in frame["tokens"]], index=frame.index)
    else:
        new_text = frame["text"].map(lambda t: normalise.normalise_text(t, ncfg))
    changed = new_text != frame["text"]
    q.changed(frame[changed], "normalised", "normalise")
    return frame.assign(text=new_text)


def _quality(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> pd.DataFrame:
    reasons = quality.quality_reasons(frame, cfg.quality, cfg.input.task)
    bad = reasons != ""
    for reason, part in frame[bad].groupby(reasons[bad], sort=True):
        q.drop(part, str(reason).split(":")[0], "quality", f"{reason}" if ":" in str(reason) else "")
    return frame[~bad]


def _dedup(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> tuple[pd.DataFrame, dict[str, Any]]:
    ner = cfg.input.task == "ner"
    labels = [" ".join(t) for t in frame["tags"]] if ner else frame["label"].tolist()
    res = dedup.find_duplicates(frame["text"].tolist(), labels, frame["row_id"].tolist(), cfg.dedup, near_labels=not ner)
    drop_pos = sorted(res.drop)
    for pos in drop_pos:
        reason, kept = res.drop[pos]
        q.drop(frame.iloc[[pos]], reason, "dedup", f"duplicate of row {kept}" if kept >= 0 else "label tie")
    mask = np.ones(len(frame), dtype=bool)
    mask[drop_pos] = False
    reasons = Counter(r for r, _ in res.drop.values())
    info = {
        "exact_groups": res.exact_groups,
        "exact_dropped": reasons.get("duplicate_exact", 0),
        "near_dropped": reasons.get("duplicate_near", 0),
        "label_conflicts": len(res.conflicts),
        "label_conflict_rows_dropped": reasons.get("duplicate_label_conflict", 0)
        + reasons.get("near_duplicate_label_conflict", 0),
        "label_conflict_examples": res.conflicts[:20],
        "threshold": cfg.dedup.threshold,
    }
    if cfg.input.task == "chat":
        frame, prompt_info = chat_steps.dedup_prompts(frame[mask], cfg, q)
        return frame, {**info, **prompt_info}
    return frame[mask], info


# NER change records that leave the row as it was and are reported per tag, not as a changed row: a detection
# inside a labelled span, or of a type not rewritten in untagged tokens.
_NER_REPORT_ONLY = {"kept_labelled", "ignored_in_ner"}


def _pii(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine,
         engine: PIIEngine) -> tuple[pd.DataFrame, dict[str, Any]]:
    pcfg = cfg.pii
    if not pcfg.enabled or frame.empty:
        return frame.assign(pii_types=[[] for _ in range(len(frame))]), {"enabled": pcfg.enabled}
    if cfg.input.task == "chat":
        return chat_steps.pii_turns(frame, cfg, q, engine)
    key = PIIKey.from_env(pcfg.key_env)
    ctx = OperatorContext(pcfg, key)
    texts = frame["text"].tolist()
    findings = engine.detect(texts)
    by_type: Counter[str] = Counter()
    by_action: Counter[str] = Counter()
    by_tag: dict[str, Counter[str]] = {}  # NER: per entity tag (O = untagged), tokens per action
    ner = cfg.input.task == "ner"
    new_texts, new_tokens, types_col, keep = [], [], [], []
    for i, (text, fs) in enumerate(zip(texts, findings, strict=True)):
        if ner:
            toks, changes = apply_to_tagged_tokens(frame["tokens"].iloc[i], frame["tags"].iloc[i], fs, ctx)
            new_tokens.append(toks)
            new_text = " ".join(toks)
            for c in changes:
                by_tag.setdefault(str(c["tag"]), Counter())[str(c["action"])] += int(c["tokens"])  # type: ignore[call-overload]
            detail = ", ".join(f"{c['entity']}/{c['tag']}:{c['action']}x{c['tokens']}" for c in changes)
        else:
            new_text, changes = apply_operators(text, fs, ctx)
            detail = ", ".join(f"{c['entity']}@{c['start']}-{c['end']}:{c['action']}" for c in changes)
        by_action.update(str(c["action"]) for c in changes)
        changes = [c for c in changes if c["action"] not in _NER_REPORT_ONLY]
        by_type.update(str(c["entity"]) for c in changes)
        types_col.append(sorted({f.entity_type for f in fs}))
        new_texts.append(new_text)
        if any(c["action"] == "drop" for c in changes):
            q.drop(frame.iloc[[i]], "pii", "pii", detail)
            keep.append(False)
            continue
        keep.append(True)
        if changes:
            q.changed(frame.iloc[[i]], "pii_redacted" if new_text != text else "pii_flagged", "pii", detail)
    out = frame.assign(text=new_texts, pii_types=types_col)
    if ner:
        out = out.assign(tokens=new_tokens)
    info = {
        "enabled": True,
        "mode": "regex+ner" if engine.uses_ner else "regex",
        "ner_model": engine.ner_model_name,
        "rows_with_pii": int(sum(1 for t in types_col if t)),
        "pseudonym_key": ("ephemeral (set " + pcfg.key_env + " for stable pseudonyms)") if key.ephemeral else "env",
        "by_action": dict(by_action),
    }
    if ner:
        info["by_tag"] = {tag: dict(c.most_common()) for tag, c in sorted(by_tag.items())}
    return out[np.array(keep, dtype=bool)], {"by_type": dict(by_type.most_common()), **info}


def _screen(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> tuple[pd.DataFrame, dict[str, Any]]:
    scfg = cfg.screen
    if not scfg.enabled:
        return frame.assign(toxicity=np.nan), {"enabled": False}
    if cfg.input.task == "chat":
        return chat_steps.screen_turns(frame, cfg, q)
    scores = screen.toxicity_scores(frame["text"].tolist())
    frame = frame.assign(toxicity=np.round(scores, 4))
    flagged = scores >= scfg.threshold
    info = {"enabled": True, "threshold": scfg.threshold, "action": scfg.action, "above_threshold": int(flagged.sum())}
    if scfg.action == "quarantine":
        hits = frame[flagged]
        q.drop(hits, "harmful_text", "screen", [f"toxicity {s:.2f}" for s in hits["toxicity"]])
        return frame[~flagged], info
    return frame, info


def _split(frame: pd.DataFrame, cfg: DataConfig, q: Quarantine) -> tuple[pd.DataFrame, dict[str, Any]]:
    scfg = cfg.split
    if scfg.column:
        names, valid = splits.from_column(frame[scfg.column])
        bad = frame[~valid]
        q.drop(bad, "invalid_split_value", "split",
               [f"{scfg.column}={v!r}; use train, validation or test" for v in bad[scfg.column]])
        frame = frame[valid].assign(split=names[valid])
    else:
        frame = frame.assign(split=splits.assign_splits(frame, scfg, scfg.stratify and cfg.input.task == "classification"))
    train = frame[frame["split"] == "train"]
    held = frame[frame["split"] != "train"]
    on = "prompt" if cfg.input.task == "chat" else "text"  # a chat model learns answers to prompts: compare those
    leak = dedup.leakage(train[on].tolist(), held[on].tolist(), cfg.dedup) if not held.empty else np.zeros(0, bool)
    leaked = held[leak]
    info = {"checked": len(held), "found": int(leak.sum()), "action": scfg.leakage,
            "by_split": {k: int(v) for k, v in leaked["split"].value_counts().items()}}
    if scfg.leakage == "quarantine" and len(leaked):
        q.drop(leaked, "leakage_near_duplicate_of_train", "split", [f"{s} row" for s in leaked["split"]])
        frame = frame[~frame["row_id"].isin(leaked["row_id"])]
    return frame, info


def _weighted_splits(frame: pd.DataFrame, cfg: DataConfig) -> dict[str, pd.DataFrame]:
    """One frame per split with ``sample_weight``; resampling touches the train split only."""
    parts = {}
    for name in splits.SPLITS:
        part = frame[frame["split"] == name]
        if name == "train":
            part = bal.resample(part, cfg.balance.resample, cfg.split.seed)
        part = part.assign(sample_weight=np.round(bal.sample_weights(part, list(cfg.input.group_columns),
                                                                     cfg.balance), 6))
        parts[name] = _output_frame(part, cfg)
    return parts


def _output_frame(part: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    cols = ["row_id", "text", "label"]
    if cfg.input.task == "ner":
        cols = ["row_id", "text", "tokens", "tags"]
    if cfg.input.task == "chat":  # the turns as JSON text: one string column any reader takes as it is
        part = part.assign(messages=[json.dumps(m, ensure_ascii=False) for m in part["messages"]])
        cols = ["row_id", "messages", "text", "prompt"]
    cols += list(cfg.input.group_columns)
    if cfg.input.id_column:
        cols.append("source_id")
    cols += ["sample_weight", "toxicity", "pii_types", "split"]
    return part[cols].reset_index(drop=True)


class _Steps:
    """Runs the stage's steps in order: reports each (callback, progress bar) and times it."""

    def __init__(self, on_step: Progress | None, pbar: Any) -> None:
        self.on_step, self.pbar = on_step, pbar
        self.task = pbar.add_task("data", total=9) if pbar else None
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.on_step:
            self.on_step(name)
        if self.pbar:
            self.pbar.update(self.task, description=f"data: {name}")
        t0 = time.perf_counter()
        out = fn()
        self.timings[name] = round(time.perf_counter() - t0, 4)
        if self.pbar:
            self.pbar.advance(self.task)
        return out


@dataclass
class _Outcome:
    """What the steps produced, for the summary and the files."""

    read: Any  # data_io.LoadResult
    frame: pd.DataFrame
    parts: dict[str, pd.DataFrame]
    infos: dict[str, Any]  # per step, in the summary's order: pii, duplicates, screen, balance, leakage
    canary_info: dict[str, Any]


def _steps(dcfg: DataConfig, q: Quarantine, engine: PIIEngine, step: _Steps, run_dir: Path) -> _Outcome:
    """Load, normalise, check quality, deduplicate, redact PII, screen, balance, split, weight, plant canaries."""
    extra = [("split.column", dcfg.split.column)] if dcfg.split.column else []
    read = step("load", lambda: data_io.load(dcfg.input, q, extra, dcfg.label_names))
    frame, rows_in = read.frame, read.rows_in
    frame = step("normalise", lambda: _normalise(frame, dcfg, q)) if not frame.empty else frame
    frame = step("quality", lambda: _quality(frame, dcfg, q)) if not frame.empty else frame
    frame, dup_info = step("dedup", lambda: _dedup(frame, dcfg, q)) if not frame.empty else (frame, {})
    frame, pii_info = step("pii", lambda: _pii(frame, dcfg, q, engine))
    frame, screen_info = step("screen", lambda: _screen(frame, dcfg, q)) if not frame.empty else (frame, {})
    if frame.empty:
        _write_failed(run_dir, q, {"rows_in": rows_in, "quarantine_by_reason": q.counts("dropped")}, dcfg)
        raise DataStageError(_nothing_left(rows_in, q, read, dcfg))
    groups = list(dcfg.input.group_columns)
    balance_info = step("balance", lambda: bal.report(frame, groups, dcfg.balance, dcfg.input.task))
    frame, leak_info = step("split", lambda: _split(frame, dcfg, q))
    parts = step("weights", lambda: _weighted_splits(frame, dcfg))
    canary_info: dict[str, Any] = {}
    if dcfg.canaries.count:
        first_id = int(max([int(frame["row_id"].max()), *q.dropped_ids])) + 1
        labels = sorted({str(v) for v in parts["train"]["label"]}) if "label" in parts["train"] else []
        parts["train"], canary_info = canaries.plant(parts["train"], dcfg.canaries, labels, dcfg.input.task, first_id)
    return _Outcome(read, frame, parts, {"pii": pii_info, "duplicates": dup_info, "screen": screen_info,
                                         "balance": balance_info, "leakage": leak_info}, canary_info)


def _summary(dcfg: DataConfig, q: Quarantine, out: _Outcome, seconds: float,
             timings: dict[str, float]) -> dict[str, Any]:
    """The stage's summary (data card and manifest read it); raises if the row accounting does not add up."""
    read, dropped = out.read, q.dropped_ids
    rows_in, rows_kept = read.rows_in, int(out.frame["row_id"].nunique())
    summary: dict[str, Any] = {
        "task": dcfg.input.task,
        "input": str(dcfg.input.path),
        "format": read.format,
        "encoding": read.encoding,
        "encoding_detected": read.encoding_detected,
        "labels_found": read.labels_found,
        "label_spellings_normalised": read.label_spellings,
        "rows_in": rows_in,
        "rows_loaded": len(read.frame),
        "rows_kept": rows_kept,
        "rows_quarantined": len(dropped),
        "rows_changed": len({r.row_id for r in q.records if r.action == "changed"}),
        "quarantine_by_reason": q.counts("dropped"),
        "changes_by_reason": q.counts("changed"),
        "invariant_ok": rows_in == rows_kept + len(dropped),
        "pii_by_type": out.infos["pii"].get("by_type", {}),
        **out.infos,
        "splits": {k: len(v) for k, v in out.parts.items()},
        "canaries": ({k: v for k, v in out.canary_info.items() if k != "canaries"} | {"file": "canaries.json"}
                     if out.canary_info else None),
        "resample": dcfg.balance.resample,
        "seconds": round(seconds, 3),
        "timings": timings,
    }
    summary["rows_per_second"] = round(rows_in / summary["seconds"], 1) if summary["seconds"] else None
    if not summary["invariant_ok"]:
        raise DataStageError(
            f"row accounting failed: rows_in {rows_in} != kept {rows_kept} + quarantined {len(dropped)}; "
            "this is a bug in Steward, please report it with the input"
        )
    return summary


def _guard_loss(dcfg: DataConfig, q: Quarantine, out: _Outcome, summary: dict[str, Any], run_dir: Path) -> None:
    """The loss guard: refuse (writing nothing but the failed attempt's quarantine) when too much was lost."""
    rows_in, dropped = out.read.rows_in, q.dropped_ids
    findings = loss.check(rows_in, q.counts("dropped"), out.read.labels_found, _labels_kept(out.parts, dcfg),
                          dcfg.loss, str(run_dir))
    summary["loss_guard"] = {"max_share": dcfg.loss.max_share, "allowed": dcfg.loss.allow,
                             "findings": [f.to_dict() for f in findings]}
    if findings and not dcfg.loss.allow:
        _write_failed(run_dir, q, summary, dcfg)
        raise DataLossError(
            f"the data stage would lose data ({rows_in} rows read, {len(dropped)} quarantined); nothing was "
            f"written to {run_dir / STAGE}:\n" + "\n".join(f"  - {f.message()}" for f in findings)
            + f"\nIf this loss is expected, pass --allow-loss (data.loss.allow: true) to keep going with a "
              f"warning. The attempt's quarantine is in {run_dir / FAILED_DIR}.")


def run(cfg: DataRun, *, on_step: Progress | None = None, progress: bool = False,
        overwrite: bool = False) -> DataResult:
    """Run the data stage for ``cfg`` and write ``RUN_DIR/data/``; append one ledger event.

    A run folder belongs to one data set: when ``RUN_DIR/data`` came from another input file the stage
    refuses (its model, scorecard and ledger describe that data) unless ``overwrite`` is given.
    """
    dcfg = cfg.data
    run_dir = Path(cfg.run_dir)
    if not overwrite:
        _check_same_input(run_dir, dcfg)
    started_at = now_iso()
    t_start = time.perf_counter()
    q = Quarantine()
    # Loaded before the stage's progress starts: the built-in names model is built here on first use.
    engine = PIIEngine(dcfg.pii, progress=progress)
    if dcfg.pii.enabled:
        engine.prepare()
    with progress_bar(progress, counts=False) as pbar:
        step = _Steps(on_step, pbar)
        out = _steps(dcfg, q, engine, step, run_dir)
    summary = _summary(dcfg, q, out, time.perf_counter() - t_start, step.timings)
    _guard_loss(dcfg, q, out, summary, run_dir)
    return _write(cfg, run_dir, out.parts, q, summary, started_at, out.canary_info)


def _check_same_input(run_dir: Path, dcfg: DataConfig) -> None:
    manifest = run_dir / STAGE / "manifest.json"
    path = Path(str(dcfg.input.path)) if dcfg.input.path is not None else None
    if not manifest.is_file() or path is None or not path.is_file():
        return
    import json

    before = json.loads(manifest.read_text()).get("input_sha256")
    if before and before != sha256_file(path):
        summary = run_dir / STAGE / "summary.json"
        last = json.loads(summary.read_text()).get("input") if summary.is_file() else None
        what = (f"{path.name} changed since the data stage last read it" if last and Path(last).resolve() ==
                path.resolve() else f"{run_dir} holds the data stage of another input file ({last or 'unknown'})")
        raise ConfigError(
            f"--run-dir: {what} (sha256 {before[:12]}…); the folder's model, scorecard and ledger describe that "
            f"data. Fix: give this data its own run folder (--run-dir runs/<name>), or pass --overwrite to "
            f"replace the data stage (later stages then still describe the old data until rerun)")




def _labels_kept(parts: dict[str, pd.DataFrame], dcfg: DataConfig) -> set[str]:
    if dcfg.input.task == "chat":
        return set()
    if dcfg.input.task == "ner":
        return {t.split("-", 1)[1] for p in parts.values() for tags in p["tags"] for t in tags if t != "O"}
    return {str(v) for p in parts.values() for v in p["label"]}


def _at_rest_key(dcfg: DataConfig, run_dir: Path) -> bytes | None:
    """The key the run's data files are encrypted under (``data.encryption``), or None: written plain."""
    return master_key(run_dir=run_dir, create=True) if dcfg.encryption.enabled else None


def _write_failed(run_dir: Path, q: Quarantine, summary: dict[str, Any], dcfg: DataConfig) -> None:
    """Keep a failed attempt's row-level reasons (no text, only hashes) beside, never inside, ``data/``."""
    with atomic_dir(run_dir / FAILED_DIR) as gen:
        write_parquet(q.to_frame(), gen / "quarantine.parquet", _at_rest_key(dcfg, run_dir))
        write_json(gen / "summary.json", summary)


def _nothing_left(rows_in: int, q: Quarantine, read: data_io.Loaded, dcfg: DataConfig) -> str:
    counts = q.counts()
    msg = f"no rows left after cleaning ({rows_in} in, all quarantined: {counts})"
    if len(counts) == 1:  # one reason for every row: the file is not what Steward expected
        reason = next(iter(counts))
        first = next((r.detail for r in q.records if r.reason == reason and r.detail), "")
        msg += (f". Every row failed for the same reason ({reason}; first: {first}). Steward read "
                f"{Path(str(dcfg.input.path)).name} as {read.format}"
                f"{' in ' + read.encoding if read.encoding else ''} and expected "
                f"{data_io.expected_shape(dcfg.input, read.format)}. "
                f"{data_io.describe_file(Path(str(dcfg.input.path)))}")
    return msg + "; check the input and the quality/dedup/pii settings"


def _write(cfg: DataRun, run_dir: Path, parts: dict[str, pd.DataFrame], q: Quarantine, summary: dict[str, Any],
           started_at: str, canary_info: dict[str, Any] | None = None) -> DataResult:
    dcfg = cfg.data
    digest = config_digest(dcfg)
    input_path = Path(dcfg.input.path).resolve()  # type: ignore[arg-type]
    input_sha = sha256_file(input_path)
    key = _at_rest_key(dcfg, run_dir)
    with atomic_dir(run_dir / STAGE) as gen:
        for name, part in parts.items():
            write_parquet(part, gen / f"{name}.parquet", key)
        write_parquet(q.to_frame(), gen / "quarantine.parquet", key)
        write_json(gen / "summary.json", summary)
        if canary_info:
            write_json(gen / "canaries.json", canary_info)
        write_text(gen / "config.json", dcfg.model_dump_json(indent=2))
        refs = {name: artifact(gen / f"{name}.parquet", run_dir, name, name=f"{STAGE}/{name}.parquet")
                for name in parts}
        manifest = DatasetManifest(
            # Column names in the output files (the source file's names are in config.json).
            task=dcfg.input.task, text_column={"ner": "tokens", "chat": "messages"}.get(dcfg.input.task, "text"),
            label_column={"ner": "tags", "chat": ""}.get(dcfg.input.task, "label"),
            labels=tuple(sorted({str(x) for p in parts.values() for x in p.get("label", pd.Series(dtype=str))} - {""}
                                if dcfg.input.task != "ner" else
                                {t for p in parts.values() for tags in p["tags"] for t in tags})),
            group_columns=tuple(dcfg.input.group_columns), splits=refs,
            rows={k: len(v) for k, v in parts.items()}, config_digest=digest, input_sha256=input_sha,
            provenance=stamp(),
        )
        DataManifest.model_validate(manifest.to_dict()).write(gen / "manifest.json")
        write_text(gen / "data_card.md", card.render(summary, manifest, dcfg))
    out_dir = run_dir / STAGE
    failed = run_dir / FAILED_DIR
    if failed.is_symlink():  # an earlier failed attempt is superseded by this run
        shutil.rmtree(failed.resolve(), ignore_errors=True)
        failed.unlink()
    outputs = [artifact(p, run_dir, p.stem) for p in sorted(out_dir.iterdir())]
    Ledger(run_dir).append(
        stage=STAGE, started_at=started_at, config_digest=digest,
        inputs=[artifact(input_path, run_dir, "input", sha256=input_sha)], outputs=outputs,
        summary={k: summary[k] for k in ("rows_in", "rows_kept", "rows_quarantined", "invariant_ok")},
    )
    return DataResult(summary, manifest, out_dir)
