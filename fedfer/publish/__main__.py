"""Regenerate the documentation's reference pages and results tables.

python -m fedfer.publish            # write docs/reference/*.md and every table between markers
python -m fedfer.publish --check    # write nothing; exit 1 naming each file that is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedfer.publish.reference import REPO, paste_generated, reference_pages
from fedfer.publish.result_tables import documents, paste_tables


def outputs(root: Path) -> dict[Path, str]:
    """Every generated file under `root` and the text it should hold now."""
    wanted = {root / path: text for path, text in reference_pages().items()}
    for path in documents(root):
        text = wanted.get(path, path.read_text())
        wanted[path] = paste_tables(paste_generated(text), root / "docs" / "results")
    return wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fedfer.publish", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=REPO, help=f"the repository (default: {REPO})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any generated file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs(args.root).items():
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path.relative_to(args.root))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}")
    if not stale:
        print("every generated page is up to date")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
