"""``steward gateway``: run the guarded, OpenAI-compatible chat gateway (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steward.cli.common import dflt, handle_errors, prepare_guards
from steward.config.loader import load_config


@handle_errors
def gateway(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="The run folder (audit log, keys)." + dflt("run_dir"))] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind." + dflt("gateway.host"))] = None,
    port: Annotated[int | None, typer.Option(help="Port." + dflt("gateway.port"))] = None,
    backend: Annotated[str | None, typer.Option(help="auto (the run's fine-tuned chat model if it has one, else embedded), run, embedded, local or upstream." + dflt("gateway.backend"))] = None,
    model_path: Annotated[Path | None, typer.Option(help="backend local: a Hugging Face causal-LM folder.")] = None,
    upstream_url: Annotated[str | None, typer.Option(help="backend upstream: an OpenAI-compatible base URL.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Audit database (default SQLite in the run).")] = None,
) -> None:
    """Serve POST /v1/chat/completions (OpenAI-compatible, streaming included) and GET /v1/models behind the
    guards, with every turn in the run's audit log. Needs API keys: `steward keys create --role chat
    --run-dir DIR`; clients pass them as the openai client's api_key."""
    import uvicorn

    from steward.gateway import create_app
    from steward.gateway.guards import guards_for

    over: dict[str, Any] = {}
    if run_dir is not None:
        over["run_dir"] = str(run_dir)
    gw = {k: v for k, v in (("host", host), ("port", port), ("backend", backend), ("upstream_url", upstream_url),
                            ("database_url", database_url),
                            ("model_path", str(model_path) if model_path else None)) if v is not None}
    if gw:
        over["gateway"] = gw
    cfg = load_config(config, over)
    from steward.service.keys import ROLES

    for role in ROLES:  # every role's guard chain is built at start-up
        prepare_guards(guards_for(cfg.gateway, role))
    app = create_app(cfg)
    uvicorn.run(app, host=cfg.gateway.host, port=cfg.gateway.port, access_log=False, log_level="info",
                proxy_headers=False,  # X-Forwarded-For would let any local client pick its address (auth limits)
                timeout_keep_alive=5, limit_concurrency=256)
