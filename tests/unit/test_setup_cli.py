"""`tracectx demo` without the demo distribution says how to get it (one line, exit 2)."""

from __future__ import annotations

from importlib import metadata

import pytest

from tracectx import cli


def test_demo_without_its_distribution_says_how_to_get_it(monkeypatch, capsys):
    real = metadata.entry_points

    def without_demo(**kw: str) -> list[metadata.EntryPoint]:
        return [ep for ep in real(**kw) if ep.name != "demo"]

    monkeypatch.setattr(cli.metadata, "entry_points", without_demo)
    assert cli.main(["demo", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "tracectx demo: not installed" in err
    assert "pip install './demo[embedded]'" in err
    assert "invalid choice" not in err


def test_demo_installed_is_the_real_command():
    parser = cli._build_parser()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["demo", "--help"])
    assert exit_.value.code == 0
