"""The generative scorecard on real data: the base SmolLM2-135M-Instruct against its LoRA fine-tune on SST-2 as
instructions (the chat fine-tuning benchmark's model, bench_chat.py), at the default sample sizes.

1. The refusal detector, each of XSTest's four labelled models held out in turn (trained on the other three),
   beside XSTest's string-match baseline on the same answers: precision and recall of "refused".
2. `steward evaluate` (every generative probe, default settings, the shared CrowS-Pairs, BBQ and Davidson
   sets) on the LoRA run: each headline figure for the fine-tuned model and the base, the difference with its
   paired bootstrap interval, and the time each probe took (target: the whole scorecard ≤ 15 minutes on 2
   cores). The safety regression of the fine-tune is the `safety.harmful_compliance` difference.
3. The same with `--quick` (the CI profile), for its time.

Run: `.venv/bin/python bench/bench_generative.py` (`make bench-generative`); reuses the data and LoRA runs
bench_chat.py leaves in --work (trains the LoRA model if it is not there, ~15 minutes).
Writes bench/results/generative.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_chat import SHARED, data_run, train


def detector_table() -> list[dict[str, Any]]:
    from steward.evaluate.generative.refusal import XSTEST_MODELS, fit

    rows = []
    for held in XSTEST_MODELS:
        det = fit([m for m in XSTEST_MODELS if m != held], held)
        rows.append({"held out": held, "refusals": det.card["held_out"]["refusals"],
                     "detector P": det.card["held_out"]["precision"], "detector R": det.card["held_out"]["recall"],
                     "detector F1": det.card["held_out"]["f1"],
                     "string match P": det.card["string_match_held_out"]["precision"],
                     "string match R": det.card["string_match_held_out"]["recall"],
                     "string match F1": det.card["string_match_held_out"]["f1"]})
        print(rows[-1], flush=True)
    return rows


def scorecard(run_dir: Path, quick: bool) -> dict[str, Any]:
    import steward.gateway.evaluation  # noqa: F401  (the injection probe, as the CLI loads it)
    from steward.config import parse_config
    from steward.evaluate import run as run_eval
    from steward.evaluate.config import CHAT_QUICK, QUICK_BOOTSTRAP

    ev: dict[str, Any] = {"chat": {"datasets_dir": str(SHARED)}}
    if quick:
        ev = {"bootstrap": QUICK_BOOTSTRAP, "chat": {**CHAT_QUICK, "datasets_dir": str(SHARED)}}
    t0 = time.perf_counter()
    sc = run_eval(parse_config({"run_dir": str(run_dir), "evaluate": ev}), progress=True).scorecard
    sc["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return sc


def _cell(v: dict[str, Any] | None) -> str:
    if not v or v.get("value") is None:
        return "—"
    ci = v.get("ci")
    return f"{v['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/steward_bench_chat"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generative.json")
    ap.add_argument("--reuse-detector-table", action="store_true",
                    help="keep the detector table of an earlier run's --out (it depends on nothing but XSTest)")
    args = ap.parse_args()
    earlier = json.loads(args.out.read_text()) if args.reuse_detector_table and args.out.exists() else {}
    result: dict[str, Any] = {"detector": earlier.get("detector") or detector_table()}
    run_dir = Path(train(data_run(args.work, args.train_rows, seed=13), "lora_sft", method="lora")["run_dir"])
    for quick in (False, True):
        sc = scorecard(run_dir, quick)
        key = "quick" if quick else "full"
        (args.out.parent / f"generative_{key}_scorecard.json").write_text(json.dumps(sc, indent=1))
        result[key] = {"seconds": sc["timing"]["seconds"], "wall_seconds": sc["wall_seconds"],
                       "share": sc["timing"]["share"],
                       "seconds_by_probe": {k: v.get("seconds") for k, v in sc["probes"].items()},
                       "gates": sc["gates"],
                       "figures": {p: {f: {"tuned": v, "base": (s.get("base") or {}).get(f),
                                           "delta": (s.get("delta") or {}).get(f)}
                                       for f, v in s.get("figures", {}).items()}
                                   for p, s in sc["probes"].items()},
                       "skipped": {p: s["skipped"] for p, s in sc["probes"].items() if s.get("skipped")},
                       "detector_card": (sc["probes"].get("safety") or {}).get("details", {}).get("detector")}
        print(key, result[key]["seconds"], result[key]["share"], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    md = ["| held out | refusals | detector P | detector R | detector F1 | string match P | string match R | "
          "string match F1 |", "|---|---|---|---|---|---|---|---|"]
    md += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in result["detector"]]
    md += ["", "| probe | figure | LoRA SFT | base | difference (paired 95 % CI) |", "|---|---|---|---|---|"]
    for p, figs in result["full"]["figures"].items():
        for f, v in figs.items():
            if "." in f and not f.startswith(("toxic_rate", "attack_success_guarded.", "crows_stereotype.")):
                continue
            md.append(f"| {p} | {f} | {_cell(v['tuned'])} | {_cell(v['base'])} | {_cell(v['delta'])} |")
    md += ["", "| profile | seconds | " + " | ".join(result["full"]["seconds_by_probe"]) + " |",
           "|---|---|" + "---|" * len(result["full"]["seconds_by_probe"])]
    for key in ("full", "quick"):
        r = result[key]
        md.append(f"| {key} | {r['seconds']} | " + " | ".join(
            f"{r['seconds_by_probe'][k]} ({r['share'].get(k, 0) * 100:.0f} %)" for k in r["seconds_by_probe"]) + " |")
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
