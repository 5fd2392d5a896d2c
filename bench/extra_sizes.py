"""How much each extra of tracectx installs, for docs/install.md.

``python -m bench.extra_sizes`` resolves each extra's dependency closure over the distributions
installed in this environment (it must have ``tracectx[all,dev]``, as scripts/setup.sh makes
it) and adds up their installed files (the sizes in each distribution's ``RECORD``). Nothing is
downloaded. Prints, per extra: the packages beyond the core install and their size.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _size(dist: metadata.Distribution) -> int:
    total = 0
    for file in dist.files or []:
        if file.size:
            total += file.size
    return total


def closure(requirements: list[str], extras_of_root: dict[str, list[str]]) -> set[str]:
    """Canonical names of everything `requirements` pulls (tracectx[...] expanded)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name == "tracectx":
            for extra in req.extras:
                todo.extend(Requirement(r) for r in extras_of_root[extra])
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            print(f"  (not installed here: {name})", file=sys.stderr)
            continue
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(
                sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})
            ):
                todo.append(sub)
    return seen


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    core = closure(project["dependencies"], extras)
    sizes = {name: _size(metadata.distribution(name)) for name in core}
    core_mb = sum(sizes.values()) / 1e6
    print(f"core: {len(core)} packages, {core_mb:.1f} MB installed")
    for extra in extras:
        if extra == "dev":
            continue
        pulled = closure([*project["dependencies"], *extras[extra]], extras) - core
        size = 0
        for name in pulled:
            try:
                size += _size(metadata.distribution(name))
            except metadata.PackageNotFoundError:
                pass
        top = sorted(pulled)
        print(f"[{extra}]: +{len(pulled)} packages, +{size / 1e6:.1f} MB: {', '.join(top)}")


if __name__ == "__main__":
    main()
