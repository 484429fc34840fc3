"""Orchestration: render the chosen corpora of a preset into one folder, once.

Each corpus folder gets a `DONE.json` manifest, written last and atomically: a folder with a
matching manifest (same preset, seed and generator version) is not rendered again; one without a
manifest is an interrupted render and is resumed (videos already on disk are kept, since every file
is written under a temporary name and renamed when complete; leftovers of a killed writer are
deleted); one whose manifest names another preset, seed or generator version is an error, not
silently overwritten.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fedfer import __version__
from fedfer.io import atomic_write_json
from fedfer.synth.affectnet import write_affectnet
from fedfer.synth.crema_d import write_crema_d
from fedfer.synth.msp_improv import write_msp_improv
from fedfer.synth.presets import WORLD_VERSION, WorldPreset, get_preset
from fedfer.synth.render import PARTIAL, worker_pool

MANIFEST = "DONE.json"
# Corpus → its writer, called as writer(root, world preset, seed, pool, progress).
WRITERS: dict[str, Callable[..., dict]] = {
    "crema_d": write_crema_d,
    "affectnet": write_affectnet,
    "msp_improv": write_msp_improv,
}
CORPORA: tuple[str, ...] = tuple(WRITERS)


def read_manifest(corpus_dir: Path) -> dict | None:
    """The corpus' manifest, or None when the corpus is not finished."""
    path = corpus_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt manifest ({err}); delete it to re-render {corpus_dir}") from err


def _remove_partials(corpus_dir: Path) -> None:
    for path in corpus_dir.rglob(f"*{PARTIAL}*"):
        path.unlink()
    for path in corpus_dir.rglob(".*.tmp"):
        path.unlink()


def render_world(
    preset: str | WorldPreset,
    seed: int,
    out_dir: str | Path,
    corpora: Sequence[str] = CORPORA,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Render `corpora` of `preset` with `seed` into out_dir/<corpus>; returns each corpus' manifest.

    Deterministic: the same preset and seed give the same files whatever `workers` is (default:
    min(2, CPUs)). Finished corpora are skipped; see the module docstring for resuming.
    """
    world = get_preset(preset) if isinstance(preset, str) else preset
    unknown = [c for c in corpora if c not in CORPORA]
    if unknown:
        raise ValueError(f"unknown corpus {', '.join(unknown)}; choose from {', '.join(CORPORA)}")
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    out = Path(out_dir)
    manifests: dict[str, dict] = {}
    todo = []
    for corpus in corpora:
        done = read_manifest(out / corpus)
        if done is None:
            todo.append(corpus)
        elif (done.get("preset"), done.get("seed"), done.get("world_version", 1)) != (world.name, seed, WORLD_VERSION):
            raise ValueError(
                f"{out / corpus / MANIFEST}: this folder holds preset {done.get('preset')!r} seed {done.get('seed')} "
                f"of world version {done.get('world_version', 1)}, not preset {world.name!r} seed {seed} of version "
                f"{WORLD_VERSION}; choose another --out or delete {out / corpus}"
            )
        else:
            manifests[corpus] = {**done, "skipped": True}
    if todo:
        with worker_pool(workers) as pool:
            for corpus in todo:
                root = out / corpus
                root.mkdir(parents=True, exist_ok=True)
                _remove_partials(root)
                start = time.perf_counter()
                counts = WRITERS[corpus](root, world, seed, pool, progress)
                manifest = {
                    "corpus": corpus,
                    "preset": world.name,
                    "seed": seed,
                    "world_version": WORLD_VERSION,
                    "fedfer_version": __version__,
                    "workers": workers,
                    "seconds": round(time.perf_counter() - start, 2),
                    **counts,
                }
                atomic_write_json(root / MANIFEST, manifest)
                manifests[corpus] = {**manifest, "skipped": False}
    return {c: manifests[c] for c in corpora}
