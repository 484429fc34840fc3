"""Test support: a prepared run without any world, for the test suite and `simulations/bench_deploy.py`.

Part of the library (not the tests' conftest) so that benchmarks import it like any module, and so
that importing it changes no environment variable.
"""

from __future__ import annotations

from pathlib import Path


def build_fake_run(root: Path, num_subjects: int = 3, clips_per_subject: int = 12, seed: int = 0) -> dict:
    """The smallest prepared run a federation can start from: random features per subject (shifted
    per subject, centred per class), a briefly trained g() and v(), and the subjects file.

    Returns the run config of a 2-round run (`FederationConfig.to_run_config`); the caller sets its
    run folder. Deterministic for a given `seed`; takes about a second.
    """
    import numpy as np

    from fedfer.config import TrainConfig
    from fedfer.data.datasets import EMOTIONS_6
    from fedfer.data.store import FeatureStore
    from fedfer.data.subject import write_subject
    from fedfer.io import atomic_write_json
    from fedfer.model.checkpoint import HeadCard, save_head
    from fedfer.model.training import LabelledSet, train_head
    from fedfer.runconfig import FederationConfig, PersonalizeConfig
    from fedfer.rundir import RunDir

    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(6, 1280))
    store = FeatureStore(root / "features")
    store.root.mkdir(parents=True, exist_ok=True)

    def clip(label: int, shift) -> np.ndarray:  # (T, 1280) float16, T in [8, 16)
        frames = int(rng.integers(8, 16))
        return np.abs(prototypes[label] * 0.5 + shift + rng.normal(size=(frames, 1280))).astype(np.float16)

    subjects = []
    for a in range(num_subjects):
        shift = rng.normal(size=1280) * 0.3
        clips = []
        for i in range(clips_per_subject):
            clip_id = f"10{a:02d}_C{i}_{EMOTIONS_6[i % 6]}_XX"
            store.save(clip_id, clip(i % 6, shift), {"backbone_id": "fake"})
            clips.append((clip_id, i % 6))
        subjects.append(
            str(
                write_subject(
                    root / "subjects" / f"10{a:02d}", f"10{a:02d}", EMOTIONS_6, store.root, clips
                ).parent.resolve()
            )
        )
    atomic_write_json(RunDir(root).subjects_file, subjects)
    train_clips = [clip(i % 6, 0) for i in range(120)]
    labels = np.array([i % 6 for i in range(120)])
    g, _ = train_head(
        LabelledSet(np.concatenate([x[:1] for x in train_clips]).astype(np.float16), labels),
        None,
        TrainConfig(stage="ifer", epochs=3, seed=seed),
        progress=False,
    )
    v, _ = train_head(
        LabelledSet(train_clips, labels), None, TrainConfig(stage="vfer", epochs=3, seed=seed), progress=False
    )
    save_head(root / "g.pt", g, HeadCard("ifer", EMOTIONS_6, "fake"))
    save_head(root / "v.pt", v, HeadCard("vfer", EMOTIONS_6, "fake"))
    return FederationConfig(
        num_server_rounds=2,
        num_clients=num_subjects,
        personalize=PersonalizeConfig(max_per_class=3, epochs=1, seed=seed),
        central_checkpoint=str((root / "v.pt").resolve()),
        ifer_checkpoint=str((root / "g.pt").resolve()),
        subjects_file=str(RunDir(root).subjects_file.resolve()),
        client_eval=True,  # its subjects have labels: the report's personalized rows need their counts
    ).to_run_config()
