"""The layers: no module under adapters/ reaches into the store, and the rooms of bot/ import
only the rooms beneath them (commands > posts > arxiv > storage)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ROOT / "adapters"
# The composition root builds the engine the core is given (and runs migrations); it is where
# the store may be named, not in a front end.
COMPOSITION_ROOT = {"composition.py", "cli.py", "cli_failures.py", "serve.py"}
STORE = ("bot.storage", "bot.db", "bot.store", "bot.catalog", "bot.models")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_front_end_imports_the_store() -> None:
    offenders = {
        str(path.relative_to(ADAPTERS)): sorted(
            name for name in imported_modules(path) if name.startswith(STORE)
        )
        for path in ADAPTERS.rglob("*.py")
        if str(path.relative_to(ADAPTERS)) not in COMPOSITION_ROOT
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_sees_a_store_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from bot.storage.db import read_session\nimport bot.models\n")
    assert {"bot.storage.db", "bot.models"} <= imported_modules(module)


# Each room of bot/ and the rooms it must not import: those above it.
ABOVE = {
    "storage": ("bot.arxiv", "bot.posts", "bot.commands", "bot.health"),
    "arxiv": ("bot.posts", "bot.commands", "bot.health"),
    "posts": ("bot.commands", "bot.health"),
    "commands": ("bot.health",),
}


def test_the_rooms_of_bot_import_only_downwards() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if name.startswith(ABOVE[room])
        )
        for room in ABOVE
        for path in (ROOT / "bot" / room).rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
