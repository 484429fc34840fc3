"""Regenerate the documentation's reference pages and results tables.

python -m fedfer.publish            # write docs/reference/*.md and every table between markers
python -m fedfer.publish --check    # write nothing; exit 1 naming each file that is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedfer.publish.reference import REPO, cli_page, paste_generated, run_config_page
from fedfer.publish.result_tables import documents, paste_tables
from fedfer.publish.run_folder import run_folder_page


def reference_pages() -> dict[Path, str]:
    """Repository-relative path → the reference page's text."""
    return {
        Path("docs/reference/cli.md"): cli_page(),
        Path("docs/reference/run-config.md"): run_config_page(),
        Path("docs/reference/run-folder.md"): run_folder_page(),
    }


def outputs(root: Path) -> dict[Path, str]:
    """Every generated file under `root` and the text it should hold now."""
    wanted = {root / path: text for path, text in reference_pages().items()}
    for path in documents(root):
        text = wanted.get(path, path.read_text())
        wanted[path] = paste_tables(paste_generated(text), root / "docs" / "results")
    return wanted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fedfer.publish", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=REPO, help=f"the repository (default: {REPO})")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any generated file differs")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
