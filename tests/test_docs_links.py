"""Every link in the README and the guides resolves: local files exist and anchors name a
heading of their page, by GitHub's slug rules (docs that cannot rot silently when sections move)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "SECURITY.md",
        ROOT / "examples" / "README.md",
        *ROOT.glob("docs/*.md"),
    ]
)
MD = MarkdownIt("commonmark").enable("table")


def links(path: Path) -> list[str]:
    """Link and image targets, as written (code spans and fenced blocks are not links)."""
    found = []
    for token in MD.parse(path.read_text()):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
            elif child.type == "image":
                found.append(str(child.attrs["src"]))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading's anchor on the page; a repeated one gets -1, -2, … as on GitHub."""
    tokens = MD.parse(path.read_text())
    names: set[str] = set()
    seen: dict[str, int] = {}
    for before, token in zip([None, *tokens], tokens, strict=False):
        if before is None or before.type != "heading_open" or token.type != "inline":
            continue
        text = "".join(c.content for c in token.children or [] if c.type in ("text", "code_inline"))
        base = slug(text)
        n = seen.get(base, 0)
        names.add(f"{base}-{n}" if n else base)
        seen[base] = n + 1
    return frozenset(names)


def test_slugs_follow_github():
    assert slug("Fleet scale: `tracectx stream`".replace("`", "")) == "fleet-scale-tracectx-stream"
    assert slug("Bound metadata: what stays, what travels, what is trusted") == (
        "bound-metadata-what-stays-what-travels-what-is-trusted"
    )
    assert slug("HTTP edge (ASGI)") == "http-edge-asgi"
    assert slug("Where the trace broke: --check-propagation") == (
        "where-the-trace-broke---check-propagation"
    )


def test_the_pages_have_links():
    assert len(links(ROOT / "README.md")) >= 15  # the guides list at least
    assert any(p.name == "api.md" for p in PAGES)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The page's local links whose file, or heading on a Markdown page, does not exist."""
    broken = []
    for target in links(page):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # the web: not checked here
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not path.is_relative_to(root):
            broken.append(f"{target}: outside the repository")
        elif not path.exists():
            broken.append(f"{target}: no such file")
        elif (
            parts.fragment and path.suffix == ".md" and unquote(parts.fragment) not in anchors(path)
        ):
            broken.append(f"{target}: no such heading in {path.relative_to(root)}")
    return broken


def test_a_moved_section_or_file_is_caught(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Kafka: `send`\n\n## Kafka: `send`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/guide.md#kafka-send) [ok](docs/guide.md#kafka-send-1) [ok](#top)\n"
        "[gone](docs/old.md) [moved](docs/guide.md#celery) [here](#celery) [web](https://x.y/z)\n"
        "`[code](not-a-link.md)`\n\n```\n[fenced](not-a-link.md)\n```\n\n# Top\n"
    )
    assert broken_links(page, tmp_path) == [
        "docs/old.md: no such file",
        "docs/guide.md#celery: no such heading in docs/guide.md",
        "#celery: no such heading in README.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(page: Path):
    assert not broken_links(page), broken_links(page)
