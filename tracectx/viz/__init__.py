"""The visualiser: read spans from anywhere, rebuild how errors travelled, render the graph.

``load_spans(path)`` → ``analyse(spans)`` → a renderer (terminal, HTML, Mermaid, DOT, JSON).
"""

from tracectx.viz.analysis import ErrorPath, FlowGraph, TraceAnalysis, analyse, flow_graph
from tracectx.viz.model import Span, SpanSet
from tracectx.viz.sources import load_spans, loads_spans

__all__ = [
    "ErrorPath",
    "FlowGraph",
    "Span",
    "SpanSet",
    "TraceAnalysis",
    "analyse",
    "flow_graph",
    "load_spans",
    "loads_spans",
]
