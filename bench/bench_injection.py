"""The services' default prompt-injection guard, measured on prompts its detector never saw, per language.

Run: `.venv/bin/python bench/bench_injection.py` (or `make bench-injection`); about 20 minutes on 2 cores.

The default guard is the built-in detector (``steward.service.guards.detector``: the shipped deepset set plus
generated hard negatives, trained by Steward's data → train → evaluate stages with the shipped recipe) behind
the strong patterns. To measure it on prompts it never saw, the labelled set is cut into ``--folds`` stratified
folds; for each fold a detector is built **with the default recipe** from the other folds (and the hard
negatives), and scored on the fold it never saw. Every labelled prompt is so scored once, by a detector that
did not train on it. Beside it: the patterns alone (``injection_model: patterns``).

Also scored: benign hard negatives from a **held-out template family** that no training row used ("Kindly
overlook what I wrote before…"; ``--heldout`` English ones and half as many German ones), by each fold's
detector (mean), and a sweep of the classifier's threshold. Languages by lingua (en, de, other).

Prints a table; writes bench/results/injection_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

import numpy as np

from steward.canonical import canonical_text
from steward.service.guards import GuardContext, run_chain
from steward.service.guards.detector import RECIPE, build, labelled_set
from steward.service.guards.injection_data import generated_injections, hard_negatives, short_messages
from steward.service.guards.input import InjectionGuard

HERE = Path(__file__).parent


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def languages(texts: list[str]) -> list[str]:
    from lingua import Language, LanguageDetectorBuilder

    det = LanguageDetectorBuilder.from_languages(Language.ENGLISH, Language.GERMAN, Language.FRENCH,
                                                 Language.SPANISH, Language.ITALIAN, Language.DUTCH,
                                                 Language.PORTUGUESE).build()
    out = []
    for t in texts:
        lang = det.detect_language_of(t)
        code = lang.iso_code_639_1.name.lower() if lang is not None else "other"
        out.append(code if code in ("en", "de") else "other")
    return out


def folds(labels: list[int], k: int, seed: int) -> list[int]:
    """A fold number per row, stratified by label."""
    rng = random.Random(seed)
    fold = [0] * len(labels)
    for y in (0, 1):
        idx = [i for i, v in enumerate(labels) if v == y]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            fold[i] = j % k
    return fold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_injection"))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--heldout", type=int, default=200,
                    help="English held-out-family hard negatives for the FPR check (and half as many German)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "injection_bench.json")
    args = ap.parse_args()
    with labelled_set().open(encoding="utf-8", newline="") as fh:
        rows = [(r["text"], int(r["label"])) for r in csv.DictReader(fh)]
    texts, y = [t for t, _ in rows], np.array([v for _, v in rows])
    lang = np.array(languages(texts))
    fold = np.array(folds(list(y), args.folds, args.seed))
    held = {"en": hard_negatives(args.heldout, "heldout"),
            "de": hard_negatives(args.heldout // 2, "heldout", language="de"),
            "short messages (en, de)": short_messages("heldout", "en") + short_messages("heldout", "de")}
    held_all = [t for v in held.values() for t in v]
    held_attacks = {lang_code: generated_injections(60, "heldout", language=lang_code) for lang_code in ("en", "de")}
    attack_recall: dict[str, list[float]] = {k: [] for k in held_attacks}
    ctx = GuardContext()
    patterns = InjectionGuard(0.5, "patterns")
    pat_pred = np.array([run_chain([patterns], t, ctx).blocked is not None for t in texts])
    pat_held = {k: float(np.mean([run_chain([patterns], t, ctx).blocked is not None for t in v]))
                for k, v in held.items()}
    guard_pred = np.zeros(len(rows), dtype=bool)
    clf_pred = np.zeros(len(rows), dtype=bool)
    proba = np.zeros(len(rows))
    held_rates: dict[str, list[float]] = {k: [] for k in held}
    held_p: list[np.ndarray] = []
    build_s, ms = [], []
    for k in range(args.folds):
        train_csv = args.work / f"fold{k}" / "labelled.csv"
        train_csv.parent.mkdir(parents=True, exist_ok=True)
        with train_csv.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "label"])
            w.writerows([(t, v) for (t, v), f in zip(rows, fold, strict=True) if f != k])
        t0 = time.perf_counter()
        info = build(args.work / "cache", recipe=RECIPE, labelled=train_csv, progress=True)
        build_s.append(time.perf_counter() - t0)
        guard = InjectionGuard(0.5, info.run_dir)
        assert guard.detector is not None
        idx = np.flatnonzero(fold == k)
        s0 = time.perf_counter()
        for i in idx:
            guard_pred[i] = run_chain([guard], texts[i], ctx).blocked is not None
        ms.append((time.perf_counter() - s0) / len(idx) * 1000)
        proba[idx] = [guard.detector.proba(canonical_text(texts[i])) for i in idx]
        clf_pred[idx] = proba[idx] >= info.operating_threshold
        for lang_code, texts_h in held.items():
            held_rates[lang_code].append(float(np.mean([run_chain([guard], t, ctx).blocked is not None
                                                        for t in texts_h])))
        held_p.append(np.array([guard.detector.proba(t) for t in held_all]))
        for lang_code, attacks in held_attacks.items():
            attack_recall[lang_code].append(float(np.mean([run_chain([guard], t, ctx).blocked is not None
                                                           for t in attacks])))
        print(f"fold {k}: built in {build_s[-1]:.0f} s; held-out-template FPR "
              + ", ".join(f"{c} {v[-1]:.3f}" for c, v in held_rates.items()))

    def rates(pred: np.ndarray, mask: np.ndarray) -> dict[str, float | int | list[float]]:
        pos, neg = mask & (y == 1), mask & (y == 0)
        tp, fp = int(pred[pos].sum()), int(pred[neg].sum())
        return {"injections": int(pos.sum()), "benign": int(neg.sum()), "recall": tp / max(1, pos.sum()),
                "recall_ci": list(wilson(tp, int(pos.sum()))), "fpr": fp / max(1, neg.sum()),
                "fpr_ci": list(wilson(fp, int(neg.sum())))}

    table = []
    op = float(RECIPE.get("operating_threshold", 0.5))
    for name, pred in (("patterns only (`injection_model: patterns`)", pat_pred),
                       (f"classifier alone (built-in detector, p ≥ {op})", clf_pred),
                       ("**default guard** (built-in detector + strong patterns)", guard_pred)):
        for group in ("all", "en", "de", "other"):
            mask = np.ones(len(rows), dtype=bool) if group == "all" else lang == group
            table.append({"detector": name, "language": group, **rates(pred, mask)})
    sweep = []
    all_held_p = np.concatenate(held_p)
    for thr in (0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1):
        point: dict[str, float] = {"threshold": thr, "heldout_fpr": float(np.mean(all_held_p >= thr))}
        for group in ("en", "de"):
            m = lang == group
            point[f"{group}_recall"] = float(np.mean(proba[m & (y == 1)] >= thr))
            point[f"{group}_fpr"] = float(np.mean(proba[m & (y == 0)] >= thr))
        sweep.append(point)
    out = {"rows": table, "folds": args.folds, "labelled": len(rows), "hard_negatives_per_build": RECIPE["negatives"],
           "operating_threshold": op, "sweep": sweep,
           "heldout_fpr_default_guard": {k: float(np.mean(v)) for k, v in held_rates.items()},
           "heldout_fpr_per_fold": held_rates, "heldout_fpr_patterns": pat_held,
           "heldout_attack_recall": {k: float(np.mean(v)) for k, v in attack_recall.items()},
           "heldout_n": {k: len(v) for k, v in held.items()},
           "build_seconds_mean": float(np.mean(build_s)), "guard_ms_per_text": float(np.mean(ms)),
           "language_counts": {g: int((lang == g).sum()) for g in ("en", "de", "other")},
           # what the default guard gets wrong, for reading (the prompts are the shipped public set's)
           "false_blocks": [{"language": str(lang[i]), "p": round(float(proba[i]), 3), "text": texts[i]}
                            for i in np.flatnonzero(guard_pred & (y == 0))],
           "missed": [{"language": str(lang[i]), "p": round(float(proba[i]), 3), "text": texts[i]}
                      for i in np.flatnonzero(~guard_pred & (y == 1))]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))

    def ci(lo: float, hi: float) -> str:
        return f"{lo:.2f}–{hi:.2f}"

    md = ["| detector | language | recall (95% CI) | injections | false-block rate (95% CI) | benign |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['detector']} | {r['language']} | {r['recall']:.3f} ({ci(*r['recall_ci'])}) | {r['injections']} | "
           f"{r['fpr']:.3f} ({ci(*r['fpr_ci'])}) | {r['benign']} |" for r in table]
    md += ["", "| held-out template family (benign, no training row used) | prompts | default guard (mean of folds) "
           "| patterns only |", "|---|---|---|---|"]
    md += [f"| {k} | {len(held[k])} | {out['heldout_fpr_default_guard'][k]:.3f} | {pat_held[k]:.3f} |" for k in held]
    md += ["", "Generated injections from the held-out template family (60 per language): the default guard stops "
           + ", ".join(f"{k} {v:.3f}" for k, v in out["heldout_attack_recall"].items()) + " (mean of folds)."]
    md += ["", "| classifier threshold | en recall | en false-block rate | de recall | de false-block rate | "
           "held-out templates FPR |", "|---|---|---|---|---|---|"]
    md += [f"| {p['threshold']}{' (operating point)' if p['threshold'] == op else ''} | {p['en_recall']:.3f} | "
           f"{p['en_fpr']:.3f} | {p['de_recall']:.3f} | {p['de_fpr']:.3f} | {p['heldout_fpr']:.3f} |" for p in sweep]
    md += ["",
           f"Build (data → train → evaluate) {out['build_seconds_mean']:.0f} s per detector on average; the guard "
           f"costs {out['guard_ms_per_text']:.1f} ms per text (unicode step + patterns + classifier)."]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
