"""``steward demo``: generate the embedded dataset and run every stage that exists on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steward.cli.common import console, handle_errors, print_json

DEMO_CONFIG = """\
# The demo's configuration (written by `steward demo`): every stage that exists runs with it.
run_dir: .
data:
  input:
    path: raw/support_messages.csv
    text_column: text
    label_column: label
    group_columns: [gender, age_band]
    labels: [billing, refund, delivery, account_access, technical_issue, cancel_subscription, product_info, complaint]
  quality:
    languages: [en]
  pii:
    actions: {PERSON: pseudonymise, CREDIT_CARD: mask, IBAN_CODE: mask}
  screen:
    action: quarantine
    threshold: 0.8
train:
  method: lora
  epochs: 2
  max_length: 48
  batch_size: 32
evaluate:
  max_rows: 400
  bootstrap: 500
  robustness: {max_rows: 80, max_queries: 40}
  explain: {rows: 20, ig_steps: 16}
  privacy: {rows: 400}
  gates:
    min_f1: 0.80
    max_eo_difference: 0.15
    max_cf_flip_rate: 0.10
    max_attack_success: 0.60
    max_ece: 0.10
    max_mia_auc: 0.60
    max_latency_ms_p95: 100
"""


@handle_errors
def demo(
    run_dir: Annotated[Path, typer.Option("--run-dir", "-r", help="Where the demo run is written.")] = Path("runs/demo"),
    rows: Annotated[int, typer.Option(help="Messages to generate (before planted problems).")] = 4000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    skip_train: Annotated[bool, typer.Option("--skip-train", help="Stop after the data stage.")] = False,
    skip_evaluate: Annotated[bool, typer.Option("--skip-evaluate", help="Stop after the train stage.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Generate a seeded customer-support dataset with planted problems and run every stage on it."""
    from steward.atomic import write_text
    from steward.cli.data_cmd import summary_table
    from steward.config.loader import load_config
    from steward.data import run as run_data
    from steward.demo import generate_support_dataset
    from steward.ledger import verify

    run_dir.mkdir(parents=True, exist_ok=True)
    plan = generate_support_dataset(run_dir / "raw" / "support_messages.csv", n=rows, seed=seed)
    cfg_path = write_text(run_dir / "steward.yaml", DEMO_CONFIG)
    cfg = load_config(cfg_path)
    if not json_out:
        console.rule("[bold]Steward demo: data stage")
        console.print(f"generated {plan.rows} rows with planted problems: {plan.exact_duplicates} exact and "
                      f"{plan.near_duplicates} near duplicates, PII of {len(plan.pii)} types, {plan.html_rows} HTML "
                      f"rows, {plan.abusive} abusive, {plan.foreign} non-English, {plan.empty} empty, "
                      f"{plan.unknown_label} unknown labels, {plan.malformed_lines} malformed lines; "
                      f"the term '{plan.spurious_term}' is tied to '{plan.spurious_label}'")
    result = run_data(cfg, progress=not json_out)
    if not json_out:
        console.print(summary_table(result.summary))
        console.print(f"data card: {result.out_dir / 'data_card.md'}")
    trained = None
    if not skip_train:
        from steward.cli.train_cmd import summary_table as train_table
        from steward.train import run as run_train

        if not json_out:
            console.rule("[bold]Steward demo: train stage (LoRA on the offline MiniLM)")
        trained = run_train(cfg, progress=not json_out).manifest
        if not json_out:
            console.print(train_table(trained))
    scorecard = None
    if not skip_train and not skip_evaluate:
        from steward.cli.evaluate_cmd import summary_table as eval_table
        from steward.evaluate import run as run_eval

        if not json_out:
            console.rule("[bold]Steward demo: evaluate stage (scorecard and release gates)")
        evaluated = run_eval(cfg, progress=not json_out)
        scorecard = evaluated.scorecard
        if not json_out:
            console.print(eval_table(scorecard))
            for g in evaluated.gates:
                console.print(f"[{'green' if g.passed else 'red'}]{g.message}[/]", highlight=False)
            # The demo shows the verdict; `steward evaluate` is what exits 1 on a failed gate in a pipeline.
            console.print(f"report: {evaluated.out_dir / 'report.html'}   model card: "
                          f"{evaluated.out_dir / 'MODEL_CARD.md'}")
    report = verify(run_dir)
    if json_out:
        print_json({"plan": plan.__dict__, "data": result.summary, "train": trained, "evaluate": scorecard,
                    "ledger": report.to_dict()})
    else:
        console.print(f"ledger: {'[green]intact[/]' if report.ok else '[red]' + str(report.error) + '[/]'} "
                      f"({report.events} events)")
    if not report.ok:
        raise typer.Exit(1)
