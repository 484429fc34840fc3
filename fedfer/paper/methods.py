"""Pseudo-labelling methods beyond the paper, compared with its rule on the same subjects.

Each method is a set of `PersonalizeConfig` settings (the run-config keys of `fedfer run`), so what
is measured here is what a ClientApp does with those keys. One *unit* is one seed of Table 2 on one
world: the central v(), every test subject's clips and g()'s clip probabilities are shared by every
method, and each method runs the federation (personalize, FedAvg, `rounds` rounds) from the same
central v(). A unit's record keeps, per subject, the test truth, each model's test predictions,
what each method selected (with the truth of those clips) and the seconds its round 1 took, so the
comparison (`fedfer.evaluation.effect`) can be recomputed from the records alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fedfer.evaluation.effect import SubjectResult, Unit
from fedfer.federation.protocol import v_state
from fedfer.model.teacher_shift import format_prior
from fedfer.paper.adaptation import federated_variants, predicted
from fedfer.paper.tables import TableSeed
from fedfer.runconfig import PersonalizeConfig


@dataclass(frozen=True)
class Method:
    """A pseudo-labelling method: its settings over the paper's, and one line on what it changes and costs."""

    name: str
    settings: Mapping[str, object]
    what: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("paper", {}, "g()'s frame mean, top P per class above p-threshold, hard labels (the reference)"),
        Method(
            "em",
            {"teacher_shift": "em"},
            "g()'s probabilities re-weighted to the subject's class prior, estimated by EM over its own clips",
        ),
        Method(
            "prior",
            {"teacher_shift": "prior"},
            "g()'s probabilities aligned to the central training clips' class shares (sent in the run config)",
        ),
        Method(
            "baseline",
            {"teacher_shift": "baseline"},
            "g()'s BatchNorm statistics re-estimated on the subject's frames: its average face is g()'s zero",
        ),
        Method(
            "flexmatch",
            {"threshold_rule": "flexmatch"},
            "per-class thresholds, lower for classes g() rarely calls confidently on this subject",
        ),
        Method(
            "freematch",
            {"threshold_rule": "freematch"},
            "per-class thresholds from g()'s mean confidence and mean class shares on this subject",
        ),
        Method("agree", {"combine": "agree"}, "only clips where g() and the received v() agree"),
        Method("product", {"combine": "product"}, "g()'s and the received v()'s distributions multiplied"),
        Method("adabn", {"adabn": True}, "v()'s BatchNorm statistics re-estimated on the subject's clips first"),
        Method(
            "entropy",
            {"entropy_epochs": 2, "epochs": 0},
            "no pseudo labels: 2 epochs of entropy minimisation with diversity on v()'s BatchNorm affine parameters",
        ),
        Method("soft", {"local_labels": "soft"}, "fine-tuned towards g()'s clip distribution with the KL divergence"),
        Method(
            "fewshot-1",
            {"labels_from": "subject", "labelled_per_class": 1},
            "no teacher: v() fine-tuned on 1 clip per class that the subject labelled itself (6 labels)",
        ),
        Method(
            "fewshot-5",
            {"labels_from": "subject", "labelled_per_class": 5},
            "no teacher: v() fine-tuned on 5 clips per class that the subject labelled itself (30 labels)",
        ),
        Method(
            "paper+5",
            {"labels_from": "both", "labelled_per_class": 5},
            "the paper's pseudo labels plus 5 clips per class that the subject labelled itself",
        ),
        Method(
            "proto-1",
            {"labels_from": "subject", "labelled_per_class": 1, "local_head": "prototype"},
            "no teacher, no training: v()'s output layer becomes the nearest of 6 prototypes, one labelled clip each",
        ),
        Method(
            "proto-5",
            {"labels_from": "subject", "labelled_per_class": 5, "local_head": "prototype"},
            "no teacher: v() trained in prototype episodes on 5 labelled clips per class, then their prototypes",
        ),
    )
}
REFERENCE = "paper"


def method_config(base: PersonalizeConfig, method: Method, class_prior: Sequence[float]) -> PersonalizeConfig:
    """`base` with the method's settings; the prior shift aligns to `class_prior` (the central training shares)."""
    return replace(base, **method.settings, class_prior=format_prior(class_prior))


def model_key(method: str, stage: str) -> str:
    """The name of a method's model in a unit record: e.g. 'em/personalized', 'em/after_fedavg'."""
    return f"{method}/{stage}"


def run_unit(
    ts: TableSeed, base: PersonalizeConfig, methods: Sequence[str], rounds: int, class_prior: Sequence[float]
) -> dict:
    """Every method's federation on one seed of Table 2; JSON-ready (see the module docstring)."""
    subjects = [
        {
            "actor": s.actor,
            "truth": s.test_truth.tolist(),
            "adapt_truth": s.adapt_truth.tolist(),
            "predictions": {
                "central": predicted(ts.central, s.test).tolist(),
                "frame_mean_g": ts.g_test[i].argmax(1).tolist(),
            },
            "selected": {},
        }
        for i, s in enumerate(ts.subjects)
    ]
    seconds: dict[str, float] = {}
    for name in methods:
        config = method_config(base, METHODS[name], class_prior)
        start = time.perf_counter()
        variants = federated_variants(ts.central, ts.teacher(config.teacher_shift), ts.subjects, config, rounds)
        seconds[name] = (time.perf_counter() - start) / max(1, len(ts.subjects) * rounds)
        for i, record in enumerate(subjects):
            for stage in ("personalized", "after_fedavg"):
                record["predictions"][model_key(name, stage)] = variants.predictions[stage][i].tolist()
            chosen = variants.first.pseudo[i]
            record["selected"][name] = {
                "labels": chosen.labels.tolist(),
                "truth": ts.subjects[i].adapt_truth[chosen.indices].tolist(),
            }
    v_bytes = sum(t.numel() * t.element_size() for t in v_state(ts.central).values())
    return {
        "seed": ts.seed,
        "classes": list(ts.classes),
        "rounds": rounds,
        "settings": {"P": base.max_per_class, "p_threshold": base.p_threshold, "epochs": base.epochs, "lr": base.lr},
        "class_prior": list(class_prior),
        "client_seconds_per_round": seconds,  # mean over subjects and rounds, the whole client step
        "v_bytes": v_bytes,  # v()'s arrays, each way, every method alike
        "subjects": subjects,
    }


def unit_of(record: Mapping, world_seed: int) -> Unit:
    """A unit record as `fedfer.evaluation.effect` reads it."""
    subjects = []
    for s in record["subjects"]:
        subjects.append(
            SubjectResult(
                s["actor"],
                np.asarray(s["truth"], dtype=np.int64),
                {m: np.asarray(p, dtype=np.int64) for m, p in s["predictions"].items()},
                {m: np.asarray(x["labels"], dtype=np.int64) for m, x in s["selected"].items()},
                {m: np.asarray(x["truth"], dtype=np.int64) for m, x in s["selected"].items()},
                np.asarray(s["adapt_truth"], dtype=np.int64),
            )
        )
    return Unit(world_seed, record["seed"], tuple(record["classes"]), subjects)
