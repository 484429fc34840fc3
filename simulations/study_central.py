"""The central models on a synthetic world: g() test macro-F1, v() on test actors, v() vs frame-mean IFER.

Trains (or reuses) the central heads for a world and seed, then evaluates; with --repeat 2 it deletes
the trained heads (not the features) and trains them again, to show that the numbers repeat for the
same seed.

    python simulations/study_central.py --world small --seed 0 --repeat 2 --out results/study_central.json
"""

from __future__ import annotations

import json
import time

from study_args import study_parser

from fedfer.io import atomic_write_json
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages
from fedfer.stages.central_eval import evaluate_prepared


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_central.json", flags="world")
    parser.add_argument("--repeat", type=int, default=1, help="train the heads this many times from scratch")
    args = parser.parse_args(argv)
    options = options_from_args(args)
    rows = []
    for attempt in range(args.repeat):
        started = time.monotonic()
        prepared = run_stages(options)
        reports = evaluate_prepared(prepared, args.out.parent / f"study_central-{attempt}")
        rows.append(
            {
                "attempt": attempt,
                "seconds": time.monotonic() - started,
                **{
                    k: {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1, "uar": r.uar, "war": r.war}
                    for k, r in reports.items()
                },
            }
        )
        if (
            attempt + 1 < args.repeat
        ):  # drop this seed's trained heads (not features, not other seeds') so the next attempt retrains
            prepared.vfer.unlink()
            if prepared.teacher.name in ("affectnet", "crema-frames"):  # trained here, not given
                prepared.ifer.unlink()
    atomic_write_json(args.out, rows)
    print(
        "\n| attempt | g() stills macro F1 | v() macro F1 | v() micro F1 "
        "| frame-mean g() macro F1 | frame-mean g() micro F1 |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        g = r.get("ifer_images", {}).get("macro_f1", float("nan"))
        print(
            f"| {r['attempt']} | {100 * g:.1f} | {100 * r['vfer']['macro_f1']:.1f} | {100 * r['vfer']['micro_f1']:.1f} "
            f"| {100 * r['ifer_frame_mean']['macro_f1']:.1f} | {100 * r['ifer_frame_mean']['micro_f1']:.1f} |"
        )
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
