import pytest

from steward.errors import RegistryError
from steward.registry import Registry


def test_register_create_and_unknown_name_lists_valid_ones() -> None:
    reg: Registry[str] = Registry("widget")
    reg.register("a")(lambda x=1: f"a{x}")
    reg.register("b")(lambda x=2: f"b{x}")
    assert reg.create("a", 5) == "a5"
    assert reg.names() == ["a", "b"]
    with pytest.raises(RegistryError, match=r"unknown widget 'c'; valid names: a, b"):
        reg.create("c")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a")(lambda: "again")


@pytest.mark.parametrize("literal, registry, not_plugins", [
    ("steward.evaluate.config:ProbeName", "steward.evaluate.probes:PROBES", set()),
    ("steward.compress.config:CompressMethod", "steward.compress.methods:COMPRESSORS", set()),
    ("steward.data.config:PIIEntity", "steward.data.pii.recognizers:RECOGNIZERS", set()),
    ("steward.data.config:PIIAction", "steward.data.pii.operators:OPERATORS", {"drop"}),  # drop: the row, not text
])
def test_every_name_a_config_accepts_has_exactly_one_implementation(literal: str, registry: str,
                                                                    not_plugins: set[str]) -> None:
    """Where a fixed set of names is a config Literal (its one list; the tuples beside it are its get_args),
    the registry holds an implementation for each name and for no other."""
    import importlib
    from typing import get_args

    def load(ref: str) -> object:
        module, name = ref.split(":")
        return getattr(importlib.import_module(module), name)

    names = set(get_args(load(literal))) - not_plugins
    assert names == set(load(registry).names())  # type: ignore[attr-defined]
