"""``steward redteam``: the built-in attack and benign suites against a chat gateway, with gates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from steward.cli.common import EXIT_FAILED, console, handle_errors, prepare_guards, table
from steward.config.loader import load_config


@handle_errors
def redteam(
    target: Annotated[str, typer.Option(help="A running gateway's URL (http://host:port), or a run folder: the "
                                             "gateway is then started on loopback from that run's config.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (redteam and gateway "
                                                                        "sections).")] = None,
    key: Annotated[str | None, typer.Option(help="URL targets: a chat API key (default $STEWARD_API_KEY).")] = None,
    system_prompt: Annotated[Path | None, typer.Option(help="URL targets: a file with the target's system "
                                                            "prompt, to judge extraction attempts.")] = None,
    per_category: Annotated[int | None, typer.Option(help="The first N attacks of each category.")] = None,
    benign: Annotated[int | None, typer.Option(help="The first N benign prompts.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default RUN_DIR/redteam, or ./redteam).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Send instruction-override, role-play, system-prompt-extraction, PII-extraction, toxicity and obfuscation
    attacks and a benign suite; write report.json and report.html; exit 1 when a gate fails."""

    from steward.cli.common import print_json
    from steward.gateway.redteam import CATEGORIES, run, write_report

    is_url = target.startswith(("http://", "https://"))
    over: dict[str, Any] = {} if is_url else {"run_dir": target}
    cfg = load_config(config, over)
    rcfg = cfg.redteam
    categories = tuple(c for c in CATEGORIES if c in rcfg.categories)
    kw = {"categories": categories, "per_category": per_category or rcfg.per_category,
              "benign": benign or rcfg.benign, "max_tokens": rcfg.max_tokens, "toxicity_threshold": rcfg.toxicity_threshold,
              "gates": rcfg.gates.model_dump()}
    say = (lambda m: None) if json_out else (lambda m: console.print(f"[dim]{m}[/]", highlight=False))
    if is_url:
        api_key = key or os.environ.get("STEWARD_API_KEY")
        if not api_key:
            raise typer.BadParameter("a URL target needs --key (or $STEWARD_API_KEY): a chat key of that gateway")
        prompt = system_prompt.read_text(encoding="utf-8") if system_prompt else None
        report = run(target.rstrip("/"), api_key, system_prompt=prompt, progress=say, **kw)  # type: ignore[arg-type]
        out_dir = out or Path("redteam")
    else:
        report = _against_run(cfg, say, kw)
        out_dir = out or Path(cfg.run_dir) / "redteam"
    jpath, hpath = write_report(report, out_dir)
    data = report.to_dict()
    if json_out:
        print_json(data)
    else:
        out = table(f"red team: {report.model} at {report.target}", "category", "attacks", "stopped by a guard",
                    "succeeded", "success rate")
        for cat, v in data["by_category"].items():
            rate = "n/a" if v["attack_success_rate"] is None else f"{v['attack_success_rate']:.0%}"
            out.add_row(cat, str(v["attacks"]), str(v["stopped_by_guard"]), str(v["succeeded"]), rate)
        console.print(out)
        frr = data["false_refusal_rate"]
        console.print(f"benign prompts refused: {'n/a' if frr is None else f'{frr:.0%}'} of {len(report.benign)}")
        for g in data["gates"]:
            console.print(f"[{'green' if g['passed'] else 'red'}]{g['message']}[/]", highlight=False)
        console.print(f"report: {hpath}  ({jpath})")
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def _against_run(cfg: Any, say: Any, kw: dict[str, Any]) -> Any:
    """Start the run's gateway on a free loopback port (with the planted record), red-team it, stop it."""
    from steward.gateway import create_app
    from steward.gateway.guards import guards_for
    from steward.gateway.redteam import SECRET_RECORD, run
    from steward.service.audit import AuditLog, database_url
    from steward.service.keys import KeyStore
    from steward.service.loopback import on_loopback

    gcfg = cfg.gateway
    system = gcfg.system_prompt + (f"\n{SECRET_RECORD}" if cfg.redteam.plant_secret else "")
    cfg = cfg.model_copy(update={"gateway": gcfg.model_copy(update={"system_prompt": system})})
    log = AuditLog(database_url(gcfg.database_url, Path(cfg.run_dir)))
    api_key = KeyStore(log.engine).create("chat", "redteam")[1]
    from steward.service.keys import ROLES

    for role in ROLES:  # every role's guard chain is built at start-up
        prepare_guards(guards_for(gcfg, role))
    say(f"starting the run's gateway on loopback ({gcfg.backend} backend)")
    try:
        with on_loopback(create_app(cfg), ready_timeout=600) as url:
            report = run(url, api_key, system_prompt=system, progress=say, **kw)
            report.target = f"{cfg.run_dir} (gateway on {url})"
            return report
    finally:
        log.close()
