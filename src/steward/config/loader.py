"""Load a :class:`RunConfig` from YAML plus overrides, turning every problem into one clear ConfigError."""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from steward.config.models import RunConfig
from steward.config_base import config_digest
from steward.errors import ConfigError
from steward.federated.config import FederationConfig

__all__ = ["config_digest", "format_validation_error", "load_config", "load_federation", "parse_config",
           "parse_federation", "template_text"]

_FIX_BY_TYPE = {
    "extra_forbidden": "remove it or correct its spelling",
    "literal_error": "use one of the allowed values",
    "missing": "add it",
    "greater_than": "raise it",
    "greater_than_equal": "raise it",
    "less_than": "lower it",
    "less_than_equal": "lower it",
    "bool_parsing": "use true or false",
    "int_parsing": "use a whole number",
    "float_parsing": "use a number",
    "list_type": "use a YAML list, e.g. [a, b]",
    "dict_type": "use a YAML mapping",
    "string_type": "use a string",
}


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The valid field names at the parent of ``loc`` (for 'did you mean' help on unknown keys)."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def format_validation_error(exc: ValidationError, model: type[BaseModel] = RunConfig, source: str = "") -> str:
    lines = [f"invalid configuration{f' in {source}' if source else ''}:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(root)"
        value = err.get("input")
        fix = _FIX_BY_TYPE.get(err["type"], "see `steward init` for a commented example")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            if allowed:
                fix += f"; valid fields here: {', '.join(allowed)}"
        shown = value if not isinstance(value, dict) else "{...}"
        lines.append(f"  - {field}: got {shown!r}: {err['msg']}. Fix: {fix}.")
    return "\n".join(lines)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(raw: dict[str, Any] | None, overrides: dict[str, Any] | None = None, source: str = "") -> RunConfig:
    """Validate a raw mapping (from YAML) merged with ``overrides`` (from CLI flags)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration{f' in {source}' if source else ''}: the top level must be a "
                          f"mapping of sections (run_dir, data, …); got {type(raw).__name__}")
    merged = _deep_merge(raw, overrides or {})
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, RunConfig, source)) from exc


def load_config(path: str | os.PathLike[str] | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load ``path`` (YAML) if given, apply overrides, validate. Relative paths resolve against the file."""
    raw: dict[str, Any] = {}
    source = ""
    if path is not None:
        p = Path(path)
        source = str(p)
        raw = _resolve_relative(_read_yaml(p, "config file", "create one with `steward init DIR`"), p.parent)
    return parse_config(raw, overrides, source)


def _read_yaml(p: Path, what: str, create: str) -> Any:
    """The YAML in ``p``; a missing file or bad YAML is one ConfigError naming the file and the fix."""
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist; {create}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {p} is not valid YAML: {exc}") from exc


def parse_federation(raw: dict[str, Any] | None, overrides: dict[str, Any] | None = None, source: str = ""
                     ) -> FederationConfig:
    """Validate a federation's raw mapping: ``run_dir``, ``federated`` (its ``sites``, each with its own
    ``data``), ``train`` for every site, and an optional top-level ``data`` that every site's own ``data``
    starts from (a site's keys win)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid federation config{f' in {source}' if source else ''}: the top level must be a "
                          f"mapping (run_dir, federated, train, data); got {type(raw).__name__}")
    merged = _deep_merge(raw, overrides or {})
    shared = merged.pop("data", None) or {}
    fed = merged.get("federated")
    if isinstance(fed, dict) and isinstance(fed.get("sites"), list):
        fed["sites"] = [{**site, "data": _deep_merge(shared, site.get("data") or {})} if isinstance(site, dict)
                        else site for site in fed["sites"]]
    try:
        return FederationConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, FederationConfig, source)) from exc


def load_federation(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> FederationConfig:
    """Load a federation's YAML file; paths in it (run_dir, each site's input) are relative to the file."""
    p = Path(path)
    raw = _resolve_relative(_read_yaml(p, "federation config", "see docs/federated.md for an example"), p.parent)
    fed = raw.get("federated") if isinstance(raw, dict) else None
    if isinstance(fed, dict) and isinstance(fed.get("sites"), list):
        fed["sites"] = [_resolve_relative(site, p.parent) if isinstance(site, dict) else site
                        for site in fed["sites"]]
    return parse_federation(raw, overrides, str(p))


def _resolve_relative(raw: Any, base: Path) -> Any:
    """Paths written in a config file are relative to that file, as users expect of a config."""
    if not isinstance(raw, dict):
        return raw
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("run_dir"), str) and not Path(raw["run_dir"]).is_absolute():
        raw["run_dir"] = str(base / raw["run_dir"])
    inp = raw.get("data", {}).get("input") if isinstance(raw.get("data"), dict) else None
    if isinstance(inp, dict) and isinstance(inp.get("path"), str) and not Path(inp["path"]).is_absolute():
        inp["path"] = str(base / inp["path"])
    return raw


def template_text() -> str:
    """The commented example ``steward.yaml`` that ``steward init`` writes."""
    return resources.files("steward.config").joinpath("steward.example.yaml").read_text(encoding="utf-8")
