"""Remake the docs' screenshots of the HTML page from the real thing, in headless Chromium at
1600x1200: ``.venv/bin/python scripts/screenshots.py`` (runs ``tracectx demo``, about 10 s).

- ``docs/demo-errors.png``: the demo's page with its first error path (the FATAL) clicked;
- ``docs/large-trace.png``: a 100k-span trace (tests/viz/big_trace.py) with a deep error
  path's origin clicked.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.viz.big_trace import big_trace  # noqa: E402
from tests.viz.html_browser import Browser  # noqa: E402
from tracectx.viz import analyse  # noqa: E402
from tracectx.viz.renderers import render_html  # noqa: E402


def _shoot(browser: Browser, page: Path, out: Path, card: int) -> None:
    browser.open(page)
    browser.eval(f"document.querySelectorAll('#pathlist .path')[{card}].click()")
    for _ in range(100):  # a big trace's details are inflated on the first click
        if browser.eval("!!document.querySelector('#details .errbox')"):
            break
        time.sleep(0.05)
    browser.eval("document.getElementById('main').scrollTop = 0")
    time.sleep(0.3)
    assert browser.errors() == [], browser.errors()
    browser.screenshot(out)
    print(f"wrote {out}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "tracectx", "demo", "--out", str(work / "demo")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        big = work / "big.html"
        big.write_text(render_html(analyse(big_trace())), encoding="utf-8")
        browser = Browser(work / "chromium", 1600, 1200)
        try:
            _shoot(browser, work / "demo" / "errors.html", ROOT / "docs" / "demo-errors.png", 0)
            _shoot(browser, big, ROOT / "docs" / "large-trace.png", 5)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
