"""The data card: a datasheet of what went in, what came out, what was removed or changed, and why."""

from __future__ import annotations

from typing import Any

from steward.data.config import DataConfig
from steward.types import DatasetManifest


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _warnings(s: dict[str, Any]) -> list[str]:
    """The loss guard's findings first, where nobody can miss them (only present with --allow-loss)."""
    findings = (s.get("loss_guard") or {}).get("findings") or []
    if not findings:
        return []
    return ["## ⚠ Data lost (allowed with data.loss.allow)", "",
            *[f"- **{f['message']}**" for f in findings], ""]


def _source(s: dict[str, Any]) -> list[str]:
    enc = s.get("encoding")
    lines = [f"- Read as {s.get('format', '?')}" + (f", encoding {enc}" + (" (detected)" if s.get("encoding_detected")
                                                                          else "") if enc else "")]
    if s.get("labels_found"):
        lines.append("- Labels found in the file (rows): " + ", ".join(f"`{k}` {v}" for k, v in s["labels_found"].items()))
    if s.get("label_spellings_normalised"):
        lines.append("- Label spellings normalised: " + ", ".join(f"`{k}` → `{v}`" for k, v in
                                                                s["label_spellings_normalised"].items()))
    return lines


def _task_line(task: str, cfg: DataConfig) -> str:
    i = cfg.input
    if task == "chat":
        return (f"- Task: chat (conversations: `{i.messages_column}` turns, `{i.prompt_column}`/`{i.completion_column}`"
                f" or `{i.instruction_column}`/`{i.response_column}`, whichever the file holds); every turn checked, "
                f"answers screened at toxicity ≥ {cfg.screen.assistant_threshold} ({cfg.screen.assistant_action})")
    return f"- Task: {task}; text column `{i.text_column}`" + (f", label column `{i.label_column}`" if task != "ner" else "")


def _head(s: dict[str, Any], manifest: DatasetManifest, cfg: DataConfig) -> list[str]:
    """Source, counts, and what was removed or changed."""
    return [
        "# Data card",
        "",
        *_warnings(s),
        "## Source",
        f"- Input: `{s['input']}` (sha256 `{manifest.input_sha256[:16]}…`)",
        _task_line(s["task"], cfg),
        *_source(s),
        f"- Sensitive-attribute columns: {', '.join(cfg.input.group_columns) or 'none declared'}",
        f"- Config digest `{manifest.config_digest[:16]}…`; Steward {manifest.provenance.get('steward_version')}"
        f" (commit {str(manifest.provenance.get('git_commit') or 'n/a')[:12]})",
        "",
        "## Counts",
        _table(["rows in", "kept", "quarantined (dropped)", "changed in place", "invariant in = kept + quarantined"],
               [[s["rows_in"], s["rows_kept"], s["rows_quarantined"], s["rows_changed"],
                 "holds" if s["invariant_ok"] else "BROKEN"]]),
        "",
        _table(["split", "rows"], [[k, v] for k, v in s["splits"].items()]),
        "",
        "## What was removed and why",
        _table(["reason", "rows"], [[k, v] for k, v in s["quarantine_by_reason"].items()]) if s["quarantine_by_reason"]
        else "Nothing was removed.",
        "",
        "Every removed row is listed in `quarantine.parquet` (row id, reason, step, sha256 of the original "
        "text; never the text itself).",
        "",
        "## What was changed and why",
        _table(["change", "rows"], [[k, v] for k, v in s["changes_by_reason"].items()]) if s["changes_by_reason"]
        else "No row was changed.",
        "",
    ]


def _duplicates(s: dict[str, Any]) -> list[str]:
    """Exact and near duplicates, label conflicts, leakage."""
    out: list[str] = []
    dup = s.get("duplicates") or {}
    if dup:
        out += [
            "## Duplicates",
            f"- Exact duplicate groups: {dup['exact_groups']} ({dup['exact_dropped']} copies removed)",
            f"- Near duplicates (MinHash LSH, Jaccard ≥ {dup['threshold']}): {dup['near_dropped']} removed",
            f"- Duplicates with conflicting labels: {dup['label_conflicts']} "
            f"({dup['label_conflict_rows_dropped']} rows removed; majority label kept where there was one)",
            f"- Leakage check: {s['leakage']['checked']} validation/test rows compared with train; "
            f"{s['leakage']['found']} near duplicates found ({s['leakage']['action']})",
            "",
        ]
    if "prompt_exact_dropped" in dup:  # chat: the same question asked twice keeps its first answer only
        out.insert(-2, f"- Conversations with the same prompt as an earlier one: {dup['prompt_exact_dropped']} exact, "
                       f"{dup['prompt_near_dropped']} near removed (leakage compares prompts too)")
    return out


def _pii(s: dict[str, Any], cfg: DataConfig) -> list[str]:
    """What PII was found and what was done with it."""
    out: list[str] = []
    pii = s.get("pii") or {}
    out += ["## Personal data (PII)"]
    if pii.get("enabled"):
        out += [
            f"- Detection: {pii['mode']} (patterns with checksum validation; spaCy NER for names when enabled"
            + (f": `{pii['ner_model']}`" if pii.get("ner_model") else "") + ")",
            f"- Rows containing PII: {pii['rows_with_pii']}",
            "",
            _table(["entity type", "found", "action"],
                   [[k, v, cfg.pii.tagged.get(k, "keep") + " (tagged)" if s["task"] == "ner" and k in cfg.pii.tagged
                     else cfg.pii.action_for(k)] for k, v in s["pii_by_type"].items()]) if s["pii_by_type"]
            else "No PII found.",
            "",
            f"- Pseudonym key: {pii['pseudonym_key']}",
        ]
        if pii.get("by_tag") is not None:
            out += ["", "Token-classification data: labelled tokens follow `pii.tagged` by tag (a tag not listed is "
                    "kept as written); detections rewrite untagged (O) tokens only, for "
                    f"{', '.join(cfg.pii.untagged_entities) or 'no type'}. Tokens per tag and action "
                    "(`kept_labelled`: a detection inside a labelled span, left as written; `ignored_in_ner`: a "
                    "type not rewritten in untagged tokens):", "",
                    _table(["tag", "tokens per action"],
                           [[tag, ", ".join(f"{a} {n}" for a, n in acts.items())] for tag, acts in pii["by_tag"].items()])
                    if pii["by_tag"] else "No tagged span or detection needed an action."]
    else:
        out += ["- PII detection was disabled (`data.pii.enabled: false`): the data may contain personal data."]
    return out


def _screen(s: dict[str, Any]) -> list[str]:
    """Harmful-text screening."""
    out: list[str] = []
    scr = s.get("screen") or {}
    out += ["", "## Harmful text"]
    if scr.get("enabled"):
        out += [f"- Screened with alt-profanity-check; {scr['above_threshold']} rows at or above "
                f"{scr['threshold']} ({'quarantined' if scr['action'] == 'quarantine' else 'kept and flagged in the toxicity column'})"]
        if "answers_above_threshold" in scr:
            out += [f"- Answers (assistant turns, what the model learns to say): {scr['answers_above_threshold']} "
                    f"conversations with an answer at or above {scr['assistant_threshold']} "
                    f"({'quarantined' if scr['assistant_action'] == 'quarantine' else 'kept and flagged'}); the line "
                    f"above counts the other turns"]
    else:
        out += ["- Screening was disabled."]
    return out


def _canaries(s: dict[str, Any]) -> list[str]:
    """Planted canaries, if any."""
    out: list[str] = []
    can = s.get("canaries")
    if can:
        out += ["", "## Planted canaries",
                f"- {can['count']} synthetic secrets (template `{can['template']}`, {can['digits']} random digits), "
                f"each {can['repeats']}× in the training split ({can['rows_added']} rows added; listed in "
                "`canaries.json`). They measure memorisation in the evaluate stage; they are not user data."]
    return out


def _balance(s: dict[str, Any], cfg: DataConfig) -> list[str]:
    """Labels, groups, identity-term shortcuts."""
    out: list[str] = []
    b = s["balance"]
    out += ["", "## Balance"]
    dist = b.get("labels") or b.get("entity_types") or {}
    if dist:
        out += [_table(["label" if "labels" in b else "entity type", "rows", "share"],
                       [[k, v, dist["shares"][k]] for k, v in dist["counts"].items()]),
                f"\nImbalance ratio (largest / smallest): {dist['imbalance_ratio']}", ""]
    for g, gd in b.get("groups", {}).items():
        out += [f"### Group `{g}`", _table(["value", "rows", "share"],
                                            [[k, v, gd["shares"][k]] for k, v in gd["counts"].items()])]
        if gd.get("label_by_group"):
            values = list(gd["counts"])
            out += ["", f"Label × `{g}` (rows):", "",
                    _table(["label", *values], [[lbl, *(row.get(v, 0) for v in values)]
                                                for lbl, row in gd["label_by_group"].items()])]
        if gd["too_small_to_judge"]:
            out += [f"\nToo small to judge (< {cfg.balance.min_group_size} rows): {', '.join(gd['too_small_to_judge'])}"]
        out += [""]
    assoc = b.get("term_label_associations") or []
    if assoc:
        out += ["### Identity terms strongly associated with one label",
                "A model trained on this data may learn these as shortcuts.", "",
                _table(["term", "group", "label", "P(label given term)", "P(label)", "PMI", "chi²", "p"],
                       [[a["term"], a["group"], a["label"], a["p_label_given_term"], a["p_label"], a["pmi"], a["chi2"],
                         a["p_value"]] for a in assoc[:15]]), ""]
    return out


def _closing(cfg: DataConfig) -> list[str]:
    """Sample weights and known limitations."""
    return [
        "## Sample weights",
        f"`sample_weight` = inverse frequency of each row's ({cfg.balance.weighting.replace('_', ' × ')}) cell, "
        f"mean 1, clipped at {cfg.balance.max_weight}. Resampling of train: {cfg.balance.resample}.",
        "",
        "## Known limitations",
        "- PII detection is automatic: names the NER model misses, and addresses in formats the patterns do not"
        " cover, can remain. Review a sample before sharing the data.",
        "- The identity-term lexicon is a fixed list of common English words; associations through other words"
        " or other languages are not detected.",
        "- Toxicity scores come from a small linear model; sarcasm, slurs spelled creatively and non-English"
        " abuse are often missed.",
        "",
    ]


def render(summary: dict[str, Any], manifest: DatasetManifest, cfg: DataConfig) -> str:
    s = summary
    return "\n".join([*_head(s, manifest, cfg), *_duplicates(s), *_pii(s, cfg), *_screen(s), *_canaries(s),
                      *_balance(s, cfg), *_closing(cfg)])
