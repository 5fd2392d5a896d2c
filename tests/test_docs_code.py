"""Every code block in the README and the guides still matches the code: Python blocks compile
and import what exists, every `tracectx …` command line parses with the installed CLI, and every
`tracectx[…]` install line names real extras (the blocks too sketchy to run as a whole)."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tracectx.cli import _build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md")])
#: Imported by a block that says to install it; in no extra of tracectx.
NOT_OURS = {"opentelemetry.exporter.prometheus", "prometheus_client"}


def blocks(lang: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(rf"```{lang}\n(.*?)```", page.read_text(), flags=re.S):
            found.append((str(page.relative_to(ROOT)), block))
    return found


def commands() -> list[tuple[str, list[str]]]:
    """Each `tracectx` command line of the bash blocks, continuation lines joined."""
    found = []
    for page, block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv[:1] == ["tracectx"]:
                found.append((page, argv))
    return found


@pytest.mark.parametrize(("page", "block"), blocks("python"))
def test_python_block_compiles_and_its_imports_exist(page: str, block: str):
    tree = compile(block, page, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in NOT_OURS:
                    importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module not in NOT_OURS:
            assert node.module is not None and node.level == 0
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                ), f"{page}: from {node.module} import {alias.name}"


def test_the_pages_show_commands():
    shown = {argv[1] for _, argv in commands()}
    assert {"graph", "stream", "demo"} <= shown


@pytest.mark.parametrize(
    ("page", "argv"), commands(), ids=lambda v: " ".join(v)[:60] if isinstance(v, list) else v
)
def test_command_parses_with_the_installed_cli(page: str, argv: list[str]):
    parser = _build_parser()
    parser.exit_on_error = False
    try:
        args, extra = parser.parse_known_args(argv[1:])
    except (argparse.ArgumentError, SystemExit) as exc:
        pytest.fail(f"{page}: {' '.join(argv)}: {exc}")
    assert not extra, f"{page}: {' '.join(argv)}: unrecognized {extra}"
    assert not getattr(args, "any_arguments", False), f"{page}: {argv[1]} is not installed"


def test_install_lines_name_real_extras():
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named = [
        (page, names)
        for page, block in blocks("bash")
        for names in re.findall(r"tracectx\[([a-z,-]+)\]", block)
    ]
    assert named
    for page, names in named:
        assert set(names.split(",")) <= extras, (page, names)
