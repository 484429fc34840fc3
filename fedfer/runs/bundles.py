"""Node bundles for lab machines (`fedfer lab nodes DIR`): one self-contained folder per
SuperNode with the subject's features and the frozen g() (see docker/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from fedfer.data.subject import MANIFEST, read_subjects_file
from fedfer.io import atomic_write_json
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.options import RunOptions
from fedfer.runs.study import prepare_run

# A SuperNode's data bundle: what a lab machine or container mounts as its data.
BUNDLE_SUBJECT = "subject"  # subject.json + features/
BUNDLE_IFER = "g.pt"  # the frozen g() that pseudo-labels the subject's videos


def export_nodes(run_dir: Path, out_dir: Path) -> list[Path]:
    """One self-contained folder per SuperNode: `subject/` (manifest + its clips' features) and `g.pt`.

    This is all a lab machine needs (besides its key and ca.crt); the manifest points at the
    features relatively, so the folder can be mounted or copied anywhere.
    """
    config = FederationConfig.from_run_config(_read_toml(RunDir(run_dir).run_config))
    if not config.ifer_checkpoint:
        raise ValueError(
            f"{RunDir(run_dir).run_config} uses the pixel teacher {config.teacher!r}, whose nodes need their "
            "videos; node bundles carry features and g() only: export a run with a g() teacher (--teacher "
            "crema-frames or affectnet)"
        )
    bundles = []
    for partition, subject_dir in enumerate(read_subjects_file(config.subjects_file)):
        bundle = out_dir / f"node-{partition}"
        manifest = json.loads((subject_dir / MANIFEST).read_text())
        source = subject_dir / manifest["feature_dir"]  # an absolute feature_dir stays as it is
        features = bundle / BUNDLE_SUBJECT / "features"
        features.mkdir(parents=True, exist_ok=True)
        for clip in manifest["clips"]:
            shutil.copy2(source / f"{clip['clip_id']}.npz", features)
        atomic_write_json(bundle / BUNDLE_SUBJECT / MANIFEST, {**manifest, "feature_dir": "features"})
        shutil.copy2(config.ifer_checkpoint, bundle / BUNDLE_IFER)
        bundles.append(bundle)
    return bundles


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: prepare the run first (`fedfer lab nodes DIR` with the run's flags writes it)"
        )
    return tomllib.loads(path.read_text())


def prepare_nodes(options: RunOptions, out_dir: Path) -> list[Path]:
    """Prepare the run and write one data bundle per SuperNode for lab machines (see docker/README.md)."""
    prepared = prepare_run(options)
    bundles = export_nodes(prepared.run.root, out_dir)
    print(
        f"{len(bundles)} node bundles in {out_dir} (node-<i> serves partition-id=i); run config: "
        f"{prepared.run.run_config}"
    )
