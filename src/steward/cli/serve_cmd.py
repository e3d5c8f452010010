"""``steward serve``: run the guarded inference service for a run's model (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steward.cli.common import dflt, existing_run_dir, handle_errors, prepare_guards
from steward.config.loader import load_config


@handle_errors
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="steward.yaml (flags override it).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", "-r", help="The run whose model is served." + dflt("run_dir"))] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind." + dflt("serve.host"))] = None,
    port: Annotated[int | None, typer.Option(help="Port." + dflt("serve.port"))] = None,
    database_url: Annotated[str | None, typer.Option(help="Audit database (default SQLite in the run).")] = None,
) -> None:
    """Serve RUN_DIR/train/model over HTTP: /v1/predict, /v1/explain, /v1/feedback, /v1/models, /v1/monitor,
    /metrics, /healthz, /readyz. Needs API keys: `steward keys create --role predict --run-dir DIR`."""
    import uvicorn

    from steward.serve import create_app

    over: dict[str, Any] = {}
    if run_dir is not None:
        over["run_dir"] = str(run_dir)
    serve_over = {k: v for k, v in (("host", host), ("port", port), ("database_url", database_url)) if v is not None}
    if serve_over:
        over["serve"] = serve_over
    cfg = load_config(config, over)
    existing_run_dir(cfg)
    prepare_guards(cfg.serve.guards)
    app = create_app(cfg)
    # No access log: request lines carry no text, but the service's own metrics and audit log are the record.
    uvicorn.run(app, host=cfg.serve.host, port=cfg.serve.port, access_log=False, log_level="info",
                proxy_headers=False,  # X-Forwarded-For would let any local client pick its address (auth limits)
                timeout_keep_alive=5, limit_concurrency=1024)
