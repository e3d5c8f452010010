"""The federation as separate processes: a Flower app folder (a FAB once ``flwr run`` packs it) for a
SuperLink and SuperNodes, on one machine or many.

``write_app(cfg, folder)`` writes ``pyproject.toml`` (the app's components), ``federation.json`` (the validated
federation config) and a two-line module that builds the ServerApp and the ClientApp from it. ``flwr run
FOLDER CONNECTION`` ships the folder to the SuperLink and to every SuperNode; Steward itself (and torch,
transformers) must be installed where each runs. Each SuperNode names its site: ``--node-config
'site="north" run-dir="/srv/steward/north"'`` (``run-dir``: the site's own folder on its machine; default
``RUN_DIR/sites/<name>``). The ServerApp writes the federation's record and model under ``run_dir``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from steward.atomic import write_text
from steward.federated.config import FederationConfig, FederationRun

APP_MODULE = "steward_federation_app"
CONFIG_FILE = "federation.json"

_PYPROJECT = """\
# Written by `steward federated app`: a Flower app for `flwr run` (docs/federated.md, "Separate processes").
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "steward-federation"
version = "1.0.0"
description = "Steward federation {name}: the ServerApp and ClientApp built from federation.json"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "steward"

[tool.flwr.app.components]
serverapp = "{module}:server"
clientapp = "{module}:client"
"""

_MODULE = '''\
"""Built by `steward federated app`: the federation's apps from the config beside this file."""
from pathlib import Path

from steward.federated.deploy import client_app_from, server_app_from

server = server_app_from(Path(__file__).with_name("{config}"))
client = client_app_from(Path(__file__).with_name("{config}"))
'''


def write_app(cfg: FederationRun, folder: Path) -> Path:
    """The app folder for ``flwr run``; its config names absolute paths (``run_dir``, each site's input)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(cfg.run_dir).name
    write_text(folder / "pyproject.toml", _PYPROJECT.format(name=name, module=APP_MODULE))
    write_text(folder / f"{APP_MODULE}.py", _MODULE.format(config=CONFIG_FILE))
    payload = FederationConfig.model_validate(cfg, from_attributes=True).model_dump_json(indent=2)
    write_text(folder / CONFIG_FILE, payload)
    return folder


def _load(path: Path) -> FederationConfig:
    return FederationConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))


def server_app_from(config: Path) -> Any:
    """The ServerApp of a deployment: the same rounds as the simulation's, then the model written."""
    from flwr.server import ServerApp

    from steward.federated.apps import run_rounds
    from steward.federated.stage import begin, finish

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Any) -> None:
        cfg = _load(config)
        fed = begin(cfg, f"flwr-run-{getattr(context, 'run_id', uuid.uuid4().hex)}")
        run_rounds(grid, context, fed.strategy, cfg)
        finish(fed)

    return app


def client_app_from(config: Path) -> Any:
    """The ClientApp of a deployment: the site its SuperNode names, in its own folder."""
    from steward.federated.apps import client_app

    return client_app(_load(config), None)
