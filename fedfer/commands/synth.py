"""`fedfer synth`: render the built-in synthetic corpora (CREMA-D, AffectNet, MSP-IMPROV shaped)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fedfer.synth import CORPORA, PRESETS  # light: no torch

    parser.add_argument("--preset", choices=tuple(PRESETS), default="small", help="world size (default: small)")
    parser.add_argument(
        "--seed", type=int, default=0, help="world seed; the same seed gives the same files (default: 0)"
    )
    parser.add_argument(
        "--out", required=True, help="output folder; corpora go to OUT/crema_d, OUT/affectnet, OUT/msp_improv"
    )
    parser.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated subset of {','.join(CORPORA)}")
    parser.add_argument("--workers", type=int, default=None, help="render processes (default: min(2, CPUs))")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from fedfer.synth import render_world

    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    manifests = render_world(args.preset, args.seed, args.out, corpora, workers=args.workers, progress=not args.quiet)
    print(f"synthetic world: preset {args.preset}, seed {args.seed}, in {args.out}")
    for corpus, m in manifests.items():
        counts = ", ".join(
            f"{k} {v:,}" for k, v in m.items() if k in ("actors", "clips", "frames", "train_images", "valid_images")
        )
        state = "already complete, skipped" if m["skipped"] else f"rendered in {m['seconds']:.1f} s"
        print(f"  {corpus:<11} {counts}; {state}")
    return 0
