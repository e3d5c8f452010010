"""The house rules of docs/architecture.md that no linter checks: functions stay short, and no package
imports another package's private names. (Complexity is ruff's C90/PLR09 in `make lint`; the layers are
import-linter's contracts in pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "steward"
MAX_LINES = 80
# Functions allowed to be longer, and why. Keep this empty unless a split would make the code harder to read.
LONG_ALLOWED: dict[str, str] = {}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(("steward", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        out.append((name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))))
    return out


def _package(module: str) -> str:
    """The package a module belongs to for this rule: ``steward.serve.app`` -> ``steward.serve``; the base
    modules (``steward.hashing``) are each their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{name}.{node.name}"
                if lines > MAX_LINES and where not in LONG_ALLOWED:
                    long.append(f"{where} ({lines} lines)")
    assert not long, f"functions over {MAX_LINES} lines (split them into named steps): {long}"


def test_no_private_name_is_imported_across_packages() -> None:
    crossings = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module or not node.module.startswith("steward"):
                continue
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            private += [p for p in node.module.split(".") if p.startswith("_") and not p.startswith("__")]
            if private and _package(node.module) != _package(name):
                crossings.append(f"{name} imports {private} from {node.module}")
    assert not crossings, f"private names used across packages (make them public where both may import): {crossings}"


def test_the_rules_see_the_code() -> None:
    """The walk finds the packages the rules are about (a moved source tree would pass vacuously)."""
    names = {name for name, _ in _modules()}
    assert {"steward.service.core", "steward.serve.routes", "steward.gateway.routes", "steward.train.loop"} <= names
