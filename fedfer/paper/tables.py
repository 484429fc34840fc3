"""The paper's grid: Tables 2-6 and Figure 3 on one world, every table over several seeds.

A table names the corpus the central v() is trained on, the corpus whose subjects personalize and
are scored, the classes, the labels v() learns (plurality, or vote distributions with KL as in the
seed-002 variant) and the protocol (transductive or held-out halves). Per seed, the stages before federation
(world, features, split, g(), v()) comes from the workspace cache, so g() and each v() are trained
once per seed and reused by every table and sweep; the subjects' adaptation runs in-process
(`fedfer.paper.adaptation`), with Flower's FedAvg aggregation where rounds are involved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fedfer.config import SYNTHETIC_PRESETS
from fedfer.model.checkpoint import load_head
from fedfer.model.heads import IFERHead, VFERHead
from fedfer.model.pseudo import clip_probabilities
from fedfer.model.teacher_shift import teacher_clip_probabilities
from fedfer.model.training import LabelledSet
from fedfer.paper.adaptation import UNLABELLED, SubjectView, adapt_subjects, federated_variants, scores, subject_view
from fedfer.paper.corpora import MSP_IMPROV_CORPUS, Corpus, load_msp_improv_corpus, msp_improv_root
from fedfer.runconfig import PersonalizeConfig
from fedfer.runs.options import RunOptions
from fedfer.stages.central import Prepared, model_path, prepare_stages, train_central
from fedfer.stages.sets import distribution_sequences, vote_clips
from fedfer.stages.workspace import World, prepare_world

log = logging.getLogger(__name__)
CREMA_D = "crema_d"


# The seed-002 variant's local adaptation (its Sec. 4): one epoch at lr 1e-5, the rest as the method.
SEED002_LOCAL = {"epochs": 1, "lr": 1e-5}


@dataclass(frozen=True)
class GridConfig:
    """The paper's grid of tables (`simulations/grid.py`): what is repeated and how gains are counted."""

    seeds: tuple[int, ...] = (0, 1, 2)  # each seed: its own actor split, central training and personalization
    rounds: int = 2  # FedAvg rounds (and local-only epochs = rounds × local epochs)
    unchanged_within: float = 1e-9  # |per-subject weighted-F1 gain| at most this counts as unchanged
    labeller_precisions: tuple[float, ...] = (0.5, 0.7, 0.9)  # simulated pseudo-labellers (synthetic world)
    labeller_tables: tuple[str, ...] = ("table2", "table2-heldout")  # where they run (each costs a fine-tune)
    msp_improv_max_per_class: int = 50  # P for subjects of MSP-IMPROV (the paper's); CREMA-D subjects use the run's P


@dataclass(frozen=True)
class TableSpec:
    """One table of the grid."""

    key: str
    title: str
    train: str  # corpus the central v() is trained on
    test: str  # corpus whose subjects personalize and are scored
    num_classes: int
    protocol: str = "transductive"
    labels: str = "plurality"  # or "distribution": face-vote distributions, KL training (seed 002)

    @property
    def name(self) -> str:
        return f"{self.key} ({self.protocol}{', ' + self.labels + ' labels' if self.labels != 'plurality' else ''})"


TABLES: dict[str, TableSpec] = {
    spec.key: spec
    for spec in (
        TableSpec("table2", "CREMA-D 6 classes, within corpus", CREMA_D, CREMA_D, 6),
        TableSpec("table2-heldout", "CREMA-D 6 classes, within corpus", CREMA_D, CREMA_D, 6, "held-out"),
        TableSpec(
            "seed002", "CREMA-D 6 classes, face-vote distributions", CREMA_D, CREMA_D, 6, "held-out", "distribution"
        ),
        TableSpec("table3", "MSP-IMPROV 4 classes, within corpus", MSP_IMPROV_CORPUS, MSP_IMPROV_CORPUS, 4),
        TableSpec(
            "table3-heldout", "MSP-IMPROV 4 classes, within corpus", MSP_IMPROV_CORPUS, MSP_IMPROV_CORPUS, 4, "held-out"
        ),
        TableSpec("table4", "trained on MSP-IMPROV, personalized on CREMA-D", MSP_IMPROV_CORPUS, CREMA_D, 4),
        TableSpec("table5", "trained on CREMA-D, personalized on MSP-IMPROV", CREMA_D, MSP_IMPROV_CORPUS, 4),
    )
}


@dataclass
class TableSeed:
    """Everything one seed of one table adapts with: computed once, reused by the table and its sweeps."""

    spec: TableSpec
    seed: int
    classes: tuple[str, ...]
    central: VFERHead
    subjects: list[SubjectView]
    g_adapt: list[np.ndarray]  # per subject (N_adapt, K): g()'s clip probabilities
    g_test: list[np.ndarray]  # per subject (N_test, K)
    g: IFERHead

    def teacher(self, shift: str) -> list[np.ndarray]:
        """Per subject (N_adapt, K): what the selection starts from under `teacher-shift` `shift`, g()'s
        clip probabilities, or under `baseline` those of g() normalised to the subject's own frames."""
        if shift != "baseline":
            return self.g_adapt
        return [teacher_clip_probabilities(self.g, s.adapt, shift) for s in self.subjects]


class GridData:
    """The corpora and central models of one world, loaded on demand and cached per (classes, seed)."""

    def __init__(self, options: RunOptions, msp_improv: Path | None = None) -> None:
        self.options = options
        self.world: World = prepare_world(options.world, options.workspace, options.world_seed, options.affectnet)
        self.msp_improv = msp_improv
        self._prepared: dict[tuple[int, int], Prepared] = {}

    def prepared(self, num_classes: int, seed: int) -> Prepared:
        """CREMA-D's features and split, g() and the plurality v() of the task (cached in the workspace)."""
        if (num_classes, seed) not in self._prepared:
            o = self.options
            task = replace(o.task, num_classes=num_classes, seed=seed)
            self._prepared[num_classes, seed] = prepare_stages(
                self.world, o.workspace, task, o.features, o.ifer, o.vfer, o.teacher, progress=False
            )
        return self._prepared[num_classes, seed]

    def corpus(self, name: str, num_classes: int, seed: int, labels: str = "plurality") -> Corpus:
        if name == MSP_IMPROV_CORPUS:
            o = self.options
            root = msp_improv_root(self.world, self.msp_improv, o.workspace, o.world, o.world_seed)
            return load_msp_improv_corpus(root, self.world, o.workspace, o.features, seed)
        prepared = self.prepared(num_classes, seed)
        clips = prepared.clips
        if labels == "distribution":  # face-only plurality labels, votes kept for the targets
            clips = vote_clips(self.world, prepared.task, "face", [c.clip_id for c in prepared.clips])
        return Corpus(CREMA_D, prepared.store, clips, prepared.split)

    def central_v(self, spec: TableSpec, seed: int) -> VFERHead:
        """The table's central v(): the stages' own for CREMA-D plurality labels, else trained here once."""
        prepared = self.prepared(spec.num_classes, seed)
        if spec.train == CREMA_D and spec.labels == "plurality":
            return load_head(prepared.vfer, stage="vfer", classes=prepared.task.classes)[0]
        corpus = self.corpus(spec.train, spec.num_classes, seed, spec.labels)
        o = self.options
        vfer = replace(o.vfer, num_classes=spec.num_classes, seed=seed)

        def sets() -> dict[str, LabelledSet]:
            if spec.labels == "distribution":
                return {
                    name: distribution_sequences(corpus.store, corpus.clips, corpus.split[name])
                    for name in ("train", "dev")
                }
            return {name: corpus.sequences(corpus.split[name]) for name in ("train", "dev")}

        kind = f"vfer-{spec.train}-{spec.labels}"
        path = model_path(o.workspace, self.world, o.features, kind, vfer, prepared.task)
        train_central("vfer", sets, vfer, path, prepared.backbone_id, prepared.task.classes, progress=False)
        return load_head(path, stage="vfer", classes=prepared.task.classes)[0]

    def table_seed(self, spec: TableSpec, seed: int) -> TableSeed:
        """Central v(), the subjects' views and g()'s probabilities for one seed of `spec`."""
        prepared = self.prepared(spec.num_classes, seed)
        g = load_head(prepared.ifer, stage="ifer", classes=prepared.task.classes)[0]
        test = self.corpus(spec.test, spec.num_classes, seed, spec.labels)
        cross_msp = spec.test == MSP_IMPROV_CORPUS and spec.train != MSP_IMPROV_CORPUS
        actors = sorted({c.actor for c in test.clips}) if cross_msp else test.split["test"]
        subjects = []
        for actor in actors:
            own = test.subject_clips(actor)
            truth = np.array([UNLABELLED if c.label is None else c.label for c in own])
            view = subject_view(actor, [test.store.load(c.clip_id) for c in own], truth, spec.protocol, seed)
            if len(view.test) and len(view.adapt):  # a one-clip subject has no half to adapt on
                subjects.append(view)
        return TableSeed(
            spec,
            seed,
            prepared.task.classes,
            self.central_v(spec, seed),
            subjects,
            [clip_probabilities(g, s.adapt) for s in subjects],
            [clip_probabilities(g, s.test) for s in subjects],
            g,
        )


def local_config(options: RunOptions, spec: TableSpec, grid: GridConfig, seed: int) -> PersonalizeConfig:
    """The subjects' personalization settings: the run's, with MSP-IMPROV's P and the seed-002 local budget."""
    config = replace(options.federation.personalize, seed=seed)
    if spec.test == MSP_IMPROV_CORPUS:
        config = replace(config, max_per_class=grid.msp_improv_max_per_class)
    if spec.labels == "distribution":
        config = replace(config, **SEED002_LOCAL)
    return config


def run_table_seed(ts: TableSeed, options: RunOptions, grid: GridConfig) -> dict:
    """All variants of one seed of one table, scored; JSON-ready."""
    config = local_config(options, ts.spec, grid, ts.seed)
    synthetic = options.world in SYNTHETIC_PRESETS
    variants = adapt_subjects(
        ts.central,
        ts.teacher(config.teacher_shift),
        ts.g_test,
        ts.subjects,
        config,
        grid.rounds,
        oracle=synthetic,
        labeller_precisions=grid.labeller_precisions if synthetic and ts.spec.key in grid.labeller_tables else (),
    )
    return {
        "seed": ts.seed,
        "settings": {
            "P": config.max_per_class,
            "p_threshold": config.p_threshold,
            "epochs": config.epochs,
            "lr": config.lr,
            "rounds": grid.rounds,
        },
        **scores(variants, ts.subjects, ts.classes),
    }


def sweep(
    ts: TableSeed, options: RunOptions, grid: GridConfig, parameter: str, values: list, done: dict | None = None
) -> list[dict]:
    """Personalized and after-FedAvg macro F1 and pseudo-label precision as one setting varies.

    `done` maps (settings, rounds) to a point already computed, so the default settings shared by
    every sweep are run once."""
    done = {} if done is None else done
    out = []
    for value in values:
        config = local_config(options, ts.spec, grid, ts.seed)
        rounds = grid.rounds
        if parameter == "rounds":
            rounds = int(value)
        else:
            config = replace(config, **{parameter: value})
        if (config, rounds) not in done:
            variants = federated_variants(ts.central, ts.teacher(config.teacher_shift), ts.subjects, config, rounds)
            result = scores(variants, ts.subjects, ts.classes)
            done[config, rounds] = {
                "personalized_macro_f1": result["pooled"]["personalized"]["macro_f1"],
                "after_fedavg_macro_f1": result["pooled"]["after_fedavg"]["macro_f1"],
                "central_macro_f1": result["pooled"]["central"]["macro_f1"],
                "pseudo_precision": result["pseudo_precision_pooled"],
                "selected": int(sum(result["selected"])),
            }
        out.append({"value": value, **done[config, rounds]})
    return out
