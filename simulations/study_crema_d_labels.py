"""How CREMA-D's labels look under each labeling: class counts, ties, agreement with the acted emotion.

Usage: python simulations/study_crema_d_labels.py ROOT [--out stats.json]

ROOT is any directory in CREMA-D's layout (the real label files, or fedfer's synthetic
CREMA-D-shaped corpus), so the two can be compared table against table. Videos are not needed.
For each task (6 and 4 classes) and label source (intended, face plurality, audio-visual
plurality) it prints the labelled clips per class, the ties and how many the "intended" tie policy
would resolve, the share of clips whose label is the acted emotion, and the neutral share.
("distribution" labels are the face plurality, so they share the face row.)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from study_args import study_parser

from fedfer.data.datasets import task_classes
from fedfer.data.datasets.crema_d import (
    BrokenClipWarning,
    LabelStatistics,
    label_statistics,
    load_crema_d,
)
from fedfer.io import atomic_write_json

SOURCES: tuple[str, ...] = ("intended", "face", "av")


def study(root: Path) -> list[dict]:
    """One row per (task, label source) with the statistics under both tie policies."""
    rows = []
    for num_classes in (6, 4):
        for source in SOURCES:
            strict = _statistics(root, source, num_classes, "exclude")
            lenient = strict if source == "intended" else _statistics(root, source, num_classes, "intended")
            rows.append(
                {
                    "num_classes": num_classes,
                    "labels": source,
                    **strict.to_dict(),
                    "resolved_by_intended": strict.unlabelled - lenient.unlabelled,
                    "agreement_of_all": strict.agree_with_intended / strict.clips,
                    "agreement_of_labelled": strict.agree_with_intended / strict.labelled,
                    "neutral_share": strict.counts["NEU"] / strict.labelled,
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    emotions = task_classes(6)
    header = [
        "K",
        "labels",
        "clips",
        *emotions,
        "ties",
        "ties with intended",
        "= intended (all)",
        "= intended (labelled)",
        "NEU share",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        counts = [f"{r['counts'][e]:,}" if e in r["counts"] else "-" for e in emotions]
        cells = [
            str(r["num_classes"]),
            r["labels"],
            f"{r['clips']:,}",
            *counts,
            f"{r['ties']:,}",
            f"{r['resolved_by_intended']:,}",
            f"{100 * r['agreement_of_all']:.1f}%",
            f"{100 * r['agreement_of_labelled']:.1f}%",
            f"{100 * r['neutral_share']:.1f}%",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _statistics(root: Path, source: str, num_classes: int, ties: str) -> LabelStatistics:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BrokenClipWarning)  # about media; this study reads labels only
        clips = load_crema_d(root, label_mode=source, num_classes=num_classes, ties=ties, require_video=False)
    return label_statistics(clips, num_classes)


def main(argv: list[str] | None = None) -> int:
    parser = study_parser(__doc__)
    parser.add_argument("root", type=Path, help="a CREMA-D-layout directory (label files suffice)")
    parser.add_argument("--out", type=Path, help="also write the statistics as JSON here")
    args = parser.parse_args(argv)
    try:
        rows = study(args.root)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    first = rows[0]
    print(f"# CREMA-D label statistics: {args.root}\n")
    print(
        f"{first['clips']:,} clips, {first['actors']} actors. Ties: clips whose top vote count is shared "
        "(label None under the default ties='exclude'); 'ties with intended': those the 'intended' "
        "policy would label. '= intended': labelled clips whose label is the acted emotion, as a share "
        "of all clips of the task and of the labelled ones.\n"
    )
    print(markdown(rows))
    if args.out:
        atomic_write_json(args.out, {"root": str(args.root), "rows": rows})
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
