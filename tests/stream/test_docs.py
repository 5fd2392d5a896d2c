"""docs/stream-operations.md tells the truth: the path record's fields, the probes' names."""

from __future__ import annotations

import re
from pathlib import Path

from tracectx.viz.analysis import analyse
from tracectx.viz.sources.memory import from_readable_spans
from tracectx_stream import path_records
from tracectx_stream.command import register

DOC = Path(__file__).resolve().parents[2] / "docs" / "stream-operations.md"


def test_the_path_record_table_lists_exactly_the_fields_a_record_has(spans):
    from tests.stream.test_stream_kafka import make_traces

    [members], _ = make_traces(spans, 1)
    [analysis] = analyse(from_readable_spans(members))
    [record] = path_records(analysis)
    section = DOC.read_text().split("## The path record", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
    assert documented == list(record), "the table's fields, in the record's order"
    hop = re.search(r"A hop is `\{(.*?)\}`", section, flags=re.S)
    assert hop is not None
    assert re.findall(r'"([a-z_]+)"', hop.group(1)) == list(record["origin"])
    assert record["schema"] in section


def test_the_documented_flags_exist():
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    text = DOC.read_text()
    for flag in re.findall(r"`(--[a-z-]+)", text):
        if flag.startswith("--kafka-exporter") or flag.startswith("--otlp-"):
            continue  # rotel's flags (run by tests/stream/test_stream_kafka.py)
        parser.parse_known_args(["stream", "--bootstrap-servers", "x"])
        assert (
            flag in parser._subparsers._group_actions[0].choices["stream"]._option_string_actions
        ), flag  # type: ignore[union-attr]
