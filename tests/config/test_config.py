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
    from steward.gateway.config import GatewayConfig
    from steward.serve.config import ServeConfig
    from steward.service.config import ServiceSettings

    shared = set(ServiceSettings.model_fields)
    assert {"host", "port", "database_url", "max_body_bytes", "request_timeout_s", "body_timeout_s", "audit_broken",
            "docs", "rate_limit_per_minute", "rate_limit_burst", "auth_failures_per_minute",
            "auth_failures_burst", "transparency", "audit_encryption"} == shared
    assert ServeConfig().transparency.enabled and GatewayConfig().transparency.enabled  # signed by default
    assert ServeConfig().audit_encryption.enabled and GatewayConfig().audit_encryption.enabled  # sealed by default
    serve, gateway = ServeConfig(), GatewayConfig()
    assert (serve.port, serve.max_body_bytes, serve.request_timeout_s, serve.rate_limit_per_minute,
            serve.rate_limit_burst) == (8000, 65_536, 10.0, 600, 60)
    assert (gateway.port, gateway.max_body_bytes, gateway.request_timeout_s, gateway.rate_limit_per_minute,
            gateway.rate_limit_burst) == (8100, 262_144, 300.0, 120, 20)
    with pytest.raises(ValidationError, match="port"):
        GatewayConfig(port=0)  # the shared fields keep their bounds in both


def test_both_services_share_the_input_guard_settings() -> None:
    from steward.gateway.config import ChatGuardSettings
    from steward.serve.config import GuardSettings
    from steward.service.config import InputGuardSettings

    shared = set(InputGuardSettings.model_fields)
    assert {"input", "pii_action", "pii_ner", "injection_threshold", "injection_model", "toxicity_threshold",
            "blocked_topics"} == shared
    assert shared < set(GuardSettings.model_fields) and shared < set(ChatGuardSettings.model_fields)
    assert GuardSettings().input == ChatGuardSettings().input  # one default order for both services


@pytest.mark.parametrize("section, field, registry", [
    ("serve", "input", "steward.service.guards:INPUT_GUARDS"),
    ("serve", "output", "steward.serve.output_guards:OUTPUT_GUARDS"),
    ("gateway", "input", "steward.service.guards:INPUT_GUARDS"),
    ("gateway", "output", "steward.gateway.guards:CHAT_OUTPUT_GUARDS"),
])
def test_guard_names_are_the_registrys(section: str, field: str, registry: str) -> None:
    import importlib

    module, name = registry.split(":")
    names = getattr(importlib.import_module(module), name).names()
    cfg = parse_config({section: {"guards": {field: names}}})
    assert getattr(getattr(cfg, section).guards, field) == names  # every registered guard is accepted
    with pytest.raises(ConfigError) as err:
        parse_config({section: {"guards": {field: [names[0], "spellcheck"]}}})
    message = str(err.value)
    assert f"{section}.guards.{field}" in message and "'spellcheck'" in message
    assert all(n in message for n in names)  # the unknown name's error lists the valid ones


def test_a_role_policy_is_applied_by_the_gateway_and_checked_by_the_config() -> None:
    from steward.gateway.guards import guards_for

    cfg = parse_config({"gateway": {"guards": {"blocked_topics": ["refunds"]},
                                    "policies": {"admin": {"blocked_topics": [], "output_pii_action": "warn"}}}}).gateway
    admin, chat = guards_for(cfg, "admin"), guards_for(cfg, "chat")
    assert admin.blocked_topics == [] and admin.output_pii_action == "warn"
    assert chat is cfg.guards and chat.blocked_topics == ["refunds"]
    with pytest.raises(ConfigError, match=r"policies\.admin\.output_pii_action.*Fix"):
        parse_config({"gateway": {"policies": {"admin": {"output_pii_action": "shout"}}}})


def test_reading_a_config_loads_no_stage_library() -> None:
    """Stage packages load their modules on first use: validating a config imports pydantic models only."""
    import subprocess
    import sys

    code = ("import sys; from steward.config import parse_config; parse_config({}); "
            "print(sorted(m for m in ('torch', 'transformers', 'fastapi', 'presidio_analyzer', 'pandas', "
            "'steward.data.stage', 'steward.train.stage', 'steward.serve.app', 'steward.gateway.app') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_each_stage_reads_only_its_section_of_the_run_config() -> None:
    """A stage's entry point names the sections it reads (a Protocol beside its config); RunConfig has them."""
    import inspect
    import typing

    import steward.compress.stage
    import steward.data.stage
    import steward.evaluate.stage
    import steward.train.stage

    expected = {steward.data.stage: {"run_dir", "data"}, steward.train.stage: {"run_dir", "train"},
                steward.evaluate.stage: {"run_dir", "evaluate"},
                steward.compress.stage: {"run_dir", "compress", "evaluate"}}
    for module, sections in expected.items():
        protocol = typing.get_type_hints(module.run)["cfg"]
        members = {n for n, _ in inspect.getmembers(protocol) if not n.startswith("_")}
        assert members == sections, (module.__name__, members)
        assert sections <= set(RunConfig.model_fields) | {"run_dir"}
