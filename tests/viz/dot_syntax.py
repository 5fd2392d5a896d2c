"""A strict reader of the DOT subset `render_dot` writes (graphviz is not installed here).

Quoted strings follow the DOT grammar: ``\\"`` is the only escape that does not end the string;
a string may not run past its line. Statements: ``digraph ID {``, ``subgraph ID {``, ``}``,
``ID [a=b, ...];``, ``ID -> ID [...];`` and ``key=value;`` assignments. Raises `DotSyntaxError`
at the first thing that does not fit, and returns each node's label, unescaped.
"""

from __future__ import annotations

import re

__all__ = ["DotSyntaxError", "parse_dot"]

_TOKEN = re.compile(
    r'\s*(?:(?P<id>[A-Za-z_][A-Za-z0-9_.]*|-?[0-9.]+)|(?P<q>")|(?P<p>->|[{}\[\];,=]))'
)


class DotSyntaxError(ValueError):
    pass


def _tokens(line: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        if not line[pos:].strip():
            break
        m = _TOKEN.match(line, pos)
        if m is None:
            raise DotSyntaxError(f"bad token at {line[pos : pos + 20]!r}")
        if m.group("q"):
            i, chars = m.end(), []
            while True:
                if i >= len(line):
                    raise DotSyntaxError(f"unterminated string in {line[:80]!r}")
                if line[i] == "\\" and i + 1 < len(line) and line[i + 1] == '"':
                    chars.append('"')
                    i += 2
                elif line[i] == '"':
                    break
                else:
                    chars.append(line[i])
                    i += 1
            out.append(("q", "".join(chars)))
            pos = i + 1
        else:
            kind = "id" if m.group("id") else "p"
            out.append((kind, m.group(kind)))
            pos = m.end()
    return out


def _attrs(tokens: list[tuple[str, str]], line: str) -> dict[str, str]:
    if tokens[0] != ("p", "[") or tokens[-1] != ("p", "]"):
        raise DotSyntaxError(f"bad attribute list in {line[:80]!r}")
    out, body = {}, tokens[1:-1]
    while body:
        if len(body) < 3 or body[0][0] != "id" or body[1] != ("p", "=") or body[2][0] == "p":
            raise DotSyntaxError(f"bad attribute in {line[:80]!r}")
        out[body[0][1]] = body[2][1]
        body = body[3:]
        if body and body[0] != ("p", ","):
            raise DotSyntaxError(f"missing comma in {line[:80]!r}")
        body = body[1:]
    return out


def parse_dot(text: str) -> dict[str, str]:
    """Node id → label of every node statement; `DotSyntaxError` on anything malformed."""
    labels: dict[str, str] = {}
    depth = 0
    for line in text.splitlines():
        tokens = _tokens(line)
        while tokens:
            if tokens[0][1] in ("digraph", "subgraph") and tokens[0][0] == "id":
                if len(tokens) < 3 or tokens[1][0] == "p" or tokens[2] != ("p", "{"):
                    raise DotSyntaxError(f"bad graph header {line[:80]!r}")
                depth, tokens = depth + 1, tokens[3:]
            elif tokens[0] == ("p", "}"):
                depth, tokens = depth - 1, tokens[1:]
                if depth < 0:
                    raise DotSyntaxError("unbalanced }")
            else:
                end = next((i for i, t in enumerate(tokens) if t == ("p", ";")), None)
                if end is None:
                    raise DotSyntaxError(f"statement without ; in {line[:80]!r}")
                stmt, tokens = tokens[:end], tokens[end + 1 :]
                if len(stmt) == 3 and stmt[1] == ("p", "="):
                    continue  # key=value
                if stmt[0][0] == "p":
                    raise DotSyntaxError(f"statement starts with {stmt[0][1]!r}")
                if len(stmt) >= 3 and stmt[1] == ("p", "->"):
                    if stmt[2][0] == "p" or (len(stmt) > 3 and not _attrs(stmt[3:], line)):
                        raise DotSyntaxError(f"bad edge in {line[:80]!r}")
                    continue
                attrs = _attrs(stmt[1:], line) if len(stmt) > 1 else {}
                if stmt[0][1] not in ("node", "edge", "graph"):
                    labels[stmt[0][1]] = attrs.get("label", "")
    if depth != 0:
        raise DotSyntaxError("unbalanced {")
    return labels
