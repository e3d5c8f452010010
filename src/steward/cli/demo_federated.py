"""The demo's federated part: the same kind of support messages dealt out to three sites, trained as one
model on Flower (two rounds, secure aggregation) without any site's rows leaving its folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steward.cli.common import console
from steward.cli.demo_chat import title

SITES = ("north", "south", "east")
LABELS = ["billing", "refund", "delivery", "account_access", "technical_issue", "cancel_subscription", "product_info",
          "complaint"]

FEDERATION_CONFIG = """\
# The demo's federation (written by `steward demo`): three sites, each with its own messages and data stage.
run_dir: .
data:   # every site's data config starts from this
  input: {{text_column: text, label_column: label, group_columns: [gender, age_band], labels: {labels}}}
  quality: {{languages: [en]}}
  loss: {{max_share_by_reason: {limits}}}
  screen: {{action: quarantine, threshold: 0.8}}
federated:
  sites:
{sites}
  rounds: 2
  local_epochs: 2   # two passes over its ~330 rows per round at each site
  min_sites: 2
  secure_aggregation: {{enabled: true}}   # the server sees only the sum of the three updates
train:
  labels: {labels}
  method: lora
  max_length: 48
  batch_size: 32
"""


def federated_demo(run_dir: Path, rows: int, seed: int, quiet: bool) -> dict[str, Any]:
    """Generate messages, deal them out to three sites' own files, run the federation; its manifest."""
    from steward.atomic import write_text
    from steward.cli.federated_cmd import rounds_table
    from steward.config.loader import load_federation
    from steward.demo import PLANTED_LOSS_LIMITS, generate_support_dataset
    from steward.federated import run

    run_dir.mkdir(parents=True, exist_ok=True)
    raw = run_dir / "raw"
    generate_support_dataset(raw / "all.csv", n=rows, seed=seed + 1)
    lines = (raw / "all.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    for k, name in enumerate(SITES):  # every third line: a site's own file (planted problems included)
        write_text(raw / f"{name}.csv", lines[0] + "".join(lines[1 + k::len(SITES)]))
    (raw / "all.csv").unlink()
    sites = "\n".join(f"    - {{name: {n}, data: {{input: {{path: raw/{n}.csv}}}}}}" for n in SITES)
    cfg_path = write_text(run_dir / "federation.yaml", FEDERATION_CONFIG.format(
        labels=json.dumps(LABELS), limits=json.dumps(PLANTED_LOSS_LIMITS), sites=sites))
    cfg = load_federation(cfg_path)
    title("federated fine-tuning (Flower: three sites, secure aggregation)", quiet)
    if not quiet:
        console.print(f"{len(lines) - 1} messages dealt out to {', '.join(SITES)}; each site runs the data stage "
                      f"and LoRA training on its own rows, only the adapter travels")
    result = run(cfg)
    fed = result.manifest["federation"]
    if not quiet:
        console.print(rounds_table(fed))
        console.print(f"global model: {result.out_dir / 'model'}   each site's ledger: {run_dir / 'sites'}/<site>")
    return fed
