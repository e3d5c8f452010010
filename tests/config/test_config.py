from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from steward.config import RunConfig, load_config, parse_config, template_text
from steward.errors import ConfigError


def test_template_is_valid_and_equals_the_defaults() -> None:
    """The commented example that `steward init` writes cannot drift from the models."""
    raw = yaml.safe_load(template_text())
    cfg = parse_config(raw)
    assert cfg.data == RunConfig().data


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"dedup": {"treshold": 0.9}}}, r"data\.dedup\.treshold: got 0\.9.*remove it or correct its spelling; "
                                                 r"valid fields here: exact, near, ngram, num_perm, seed, shingle, threshold"),
        ({"data": {"dedup": {"threshold": 1.5}}}, r"data\.dedup\.threshold: got 1\.5: .*less than or equal to 1.*lower it"),
        ({"data": {"pii": {"default_action": "shred"}}}, r"data\.pii\.default_action: got 'shred'.*'redact'.*allowed values"),
        ({"data": {"pii": {"actions": {"SHOE_SIZE": "redact"}}}}, r"data\.pii\.actions\.SHOE_SIZE"),
        ({"data": {"split": {"validation": 0.6, "test": 0.5}}}, r"validation \+ test must be < 1"),
        ({"data": {"quality": {"min_chars": 10, "max_chars": 5}}}, r"min_chars \(10\) must not exceed max_chars \(5\)"),
        ({"bogus": 1}, r"bogus: got 1.*valid fields here: compress, data, evaluate, gateway, redteam, run_dir, serve"),
        (["not", "a", "mapping"], r"top level must be a mapping"),
    ],
)
def test_bad_config_names_field_value_and_fix(raw: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_config(raw)  # type: ignore[arg-type]


def test_configs_are_frozen() -> None:
    cfg = RunConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.data.dedup.threshold = 0.1  # type: ignore[misc]


def test_load_resolves_paths_relative_to_the_file_and_overrides_win(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    p = tmp_path / "conf" / "steward.yaml"
    p.write_text("run_dir: runs/x\ndata:\n  input:\n    path: in.csv\n    text_column: body\n")
    cfg = load_config(p, {"data": {"input": {"label_column": "intent"}}})
    assert cfg.run_dir == tmp_path / "conf" / "runs" / "x"
    assert cfg.data.input.path == tmp_path / "conf" / "in.csv"
    assert (cfg.data.input.text_column, cfg.data.input.label_column) == ("body", "intent")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist; create one with `steward init DIR`"):
        load_config(tmp_path / "nope.yaml")


def test_both_services_share_their_common_settings_and_keep_their_own_defaults() -> None:
    from steward.config.models import GatewayConfig, ServeConfig, ServiceSettings

    shared = set(ServiceSettings.model_fields)
    assert {"host", "port", "database_url", "max_body_bytes", "request_timeout_s", "body_timeout_s", "audit_broken",
            "docs", "rate_limit_per_minute", "rate_limit_burst", "auth_failures_per_minute",
            "auth_failures_burst"} == shared
    serve, gateway = ServeConfig(), GatewayConfig()
    assert (serve.port, serve.max_body_bytes, serve.request_timeout_s, serve.rate_limit_per_minute,
            serve.rate_limit_burst) == (8000, 65_536, 10.0, 600, 60)
    assert (gateway.port, gateway.max_body_bytes, gateway.request_timeout_s, gateway.rate_limit_per_minute,
            gateway.rate_limit_burst) == (8100, 262_144, 300.0, 120, 20)
    with pytest.raises(ValidationError, match="port"):
        GatewayConfig(port=0)  # the shared fields keep their bounds in both
