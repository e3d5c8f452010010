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
