"""One seed of one grid table without Flower's processes: every subject's adaptation variants and
the federated rounds, scored on each subject's test clips.

The variants share the subject's data, the central v() and g()'s clip probabilities, so their
differences are the method's alone:

- central: the central v(), untouched; frame-mean g(): the pseudo-labeller itself as a classifier;
- personalized: v() fine-tuned on g()'s pseudo labels (round 1 of the federation: from the central v());
- after FedAvg: the central v() after `rounds` rounds of FedAvg over the personalized v()s;
- local only: the same rounds without any averaging: each subject fine-tunes its own model again
  every round (`rounds` × epochs in all);
- FedPer: `rounds` of FedAvg in which v()'s output layer stays on the device (Arivazhagan et al.,
  2019), the subject's model being the averaged body with its own head.
Round 1 is the same for FedAvg, FedPer and local only (every subject personalizes the central v()),
so it is computed once;
- oracle: v() fine-tuned on the adaptation clips' true labels with the method's budget;
- labeller q: the clips g() selected, labelled right with probability q (else a wrong class at
  random): what a pseudo-labeller of precision q would bring.

FedAvg weights each reply by its number of pseudo-labelled videos with Flower's own
`aggregate_arrayrecords` (what the ServerApp's FedAvg calls); a subject with no selected video
sends nothing, as in the Flower clients.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from flwr.app import ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords
from torch import Tensor

from fedfer.data.splits import UNLABELLED, protocol_positions
from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.federation.protocol import ARRAYS, METRICS, NUM_EXAMPLES, load_v_state, v_state
from fedfer.model.heads import VFERHead
from fedfer.model.inference import predict_proba
from fedfer.model.personalize import fine_tune, personalize
from fedfer.model.pseudo import PseudoLabels
from fedfer.runconfig import PersonalizeConfig

FEDPER_LOCAL_PREFIX = "out."  # v()'s output layer: FedPer's personal head


@dataclass
class SubjectView:
    """What a subject's device adapts on and what it is scored on; truth is UNLABELLED where none."""

    actor: str
    adapt: list[np.ndarray]  # (T_i, 1280) feature sequences
    adapt_truth: np.ndarray  # (N_adapt,) int64
    test: list[np.ndarray]
    test_truth: np.ndarray  # (N_test,) int64, all labelled


def subject_view(actor: str, clips: list[np.ndarray], truth: np.ndarray, protocol: str, seed: int) -> SubjectView:
    """The clips a subject adapts on and is scored on under `protocol` (`fedfer.data.splits.protocol_positions`)."""
    truth = np.asarray(truth, dtype=np.int64)
    adapt, test = protocol_positions(truth, protocol, seed, actor)
    return SubjectView(actor, [clips[i] for i in adapt], truth[adapt], [clips[i] for i in test], truth[test])


def simulated_labels(truth: np.ndarray, num_classes: int, precision: float, rng: np.random.Generator) -> np.ndarray:
    """Labels of a labeller that is right with probability `precision`, else picks a wrong class at random."""
    wrong = (truth + rng.integers(1, num_classes, size=len(truth))) % num_classes
    return np.where(rng.random(len(truth)) < precision, truth, wrong)


@dataclass
class Variants:
    """Per model: predictions on every subject's test clips, in subject order."""

    predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    pseudo: list[tuple[int, int]] = field(default_factory=list)  # per subject: (correct, labelled selected)
    selected: list[int] = field(default_factory=list)  # per subject: videos g() selected
    first: Rounds | None = None  # round 1 of the federation, shared by FedPer and local-only

    def add(self, model: str, prediction: np.ndarray) -> None:
        self.predictions.setdefault(model, []).append(prediction)


def predicted(v: VFERHead, clips: Sequence[np.ndarray]) -> np.ndarray:
    return predict_proba(v, clips).argmax(1)


def with_state(template: VFERHead, state: dict[str, Tensor]) -> VFERHead:
    return load_v_state(copy.deepcopy(template), state)


def fedavg(replies: list[tuple[dict[str, Tensor], int]], previous: dict[str, Tensor]) -> dict[str, Tensor]:
    """Flower's weighted FedAvg of (state, selected videos) replies; `previous` when nobody trained."""
    records = [
        RecordDict({ARRAYS: ArrayRecord(state), METRICS: MetricRecord({NUM_EXAMPLES: n})})
        for state, n in replies
        if n > 0
    ]
    if not records:
        return previous
    return aggregate_arrayrecords(records, NUM_EXAMPLES).to_torch_state_dict()


MODES = ("fedavg", "fedper", "local")  # what happens between rounds: average all, all but the head, nothing


@dataclass
class Rounds:
    """Where a federation stands: the global state and each subject's personal model and selection."""

    state: dict[str, Tensor]
    models: list[VFERHead]
    pseudo: list[PseudoLabels]  # per subject: what its method selected this round

    @property
    def selected(self) -> list[int]:
        return [len(p.indices) for p in self.pseudo]


def personalize_round(
    central: VFERHead,
    subjects: list[SubjectView],
    probabilities: list[np.ndarray],
    config: PersonalizeConfig,
    starts: list[dict[str, Tensor]],
    previous: dict[str, Tensor],
    average: bool,
) -> Rounds:
    """Every subject personalizes from its start state; FedAvg of the replies when `average`."""
    replies, models, pseudo = [], [], []
    for subject, probs, start in zip(subjects, probabilities, starts):
        v = with_state(central, start)
        result = personalize(v, probs, subject.adapt, config, subject.adapt_truth)
        replies.append((v_state(v), result.num_selected))
        models.append(v)
        pseudo.append(result.pseudo)
    state = fedavg(replies, previous) if average else previous
    return Rounds(state, models, pseudo)


def continue_rounds(
    central: VFERHead,
    subjects: list[SubjectView],
    probabilities: list[np.ndarray],
    config: PersonalizeConfig,
    done: Rounds,
    more: int,
    mode: str,
) -> Rounds:
    """`more` rounds after `done`. fedavg: each subject starts from the global v(); fedper: from the
    global v() with its own output layer, which is averaged but never used by anyone else; local:
    from its own model, nothing averaged. A FedPer subject's final model is the global body with its head."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    def head(model: VFERHead) -> dict[str, Tensor]:
        return {k: t for k, t in v_state(model).items() if k.startswith(FEDPER_LOCAL_PREFIX)}

    for _ in range(more):
        if mode == "fedavg":
            starts = [done.state] * len(subjects)
        elif mode == "fedper":
            starts = [{**done.state, **head(m)} for m in done.models]
        else:
            starts = [v_state(m) for m in done.models]
        done = personalize_round(central, subjects, probabilities, config, starts, done.state, mode != "local")
    if mode == "fedper":
        done = replace(done, models=[with_state(central, {**done.state, **head(m)}) for m in done.models])
    return done


def run_rounds(
    central: VFERHead,
    subjects: list[SubjectView],
    probabilities: list[np.ndarray],
    config: PersonalizeConfig,
    rounds: int,
) -> tuple[Rounds, Rounds]:
    """The method's federation: round 1 (every subject personalizes the central v(), then FedAvg) and
    the state after `rounds` rounds. Round 1 is shared by every mode, so it is returned for reuse."""
    state = v_state(central)
    first = personalize_round(central, subjects, probabilities, config, [state] * len(subjects), state, True)
    return first, continue_rounds(central, subjects, probabilities, config, first, rounds - 1, "fedavg")


def federated_variants(
    central: VFERHead,
    g_probabilities: list[np.ndarray],
    subjects: list[SubjectView],
    config: PersonalizeConfig,
    rounds: int,
) -> Variants:
    """The method alone: central, personalized (round 1) and after-FedAvg predictions, and the
    pseudo labels' precision. `g_probabilities[i]`: (N_adapt, K) g()'s clip probabilities of subject i."""
    out = Variants()
    out.first, last = run_rounds(central, subjects, g_probabilities, config, rounds)
    after = with_state(central, last.state)
    for i, subject in enumerate(subjects):
        chosen = out.first.pseudo[i]  # round 1's selection, by the configured method
        truth = subject.adapt_truth[chosen.indices]
        labelled = truth != UNLABELLED
        out.pseudo.append((int((truth[labelled] == chosen.labels[labelled]).sum()), int(labelled.sum())))
        out.selected.append(len(chosen.indices))
        out.add("central", predicted(central, subject.test))
        out.add("personalized", predicted(out.first.models[i], subject.test))
        out.add("after_fedavg", predicted(after, subject.test))
    return out


def adapt_subjects(
    central: VFERHead,
    g_probabilities: list[np.ndarray],
    frame_mean_test: list[np.ndarray],
    subjects: list[SubjectView],
    config: PersonalizeConfig,
    rounds: int,
    oracle: bool,
    labeller_precisions: Sequence[float] = (),
) -> Variants:
    """Every variant of the module docstring; `frame_mean_test[i]` (N_test, K) is g()'s clip
    probabilities of subject i's test clips."""
    k = central.out.out_features
    out = federated_variants(central, g_probabilities, subjects, config, rounds)
    fedper = continue_rounds(central, subjects, g_probabilities, config, out.first, rounds - 1, "fedper")
    local = continue_rounds(central, subjects, g_probabilities, config, out.first, rounds - 1, "local")
    for i, subject in enumerate(subjects):
        out.add("frame_mean_g", frame_mean_test[i].argmax(1))
        out.add("fedper", predicted(fedper.models[i], subject.test))
        out.add("local_only", predicted(local.models[i], subject.test))
        known = np.flatnonzero(subject.adapt_truth != UNLABELLED)
        if oracle:  # a subject without a labelled adaptation clip keeps the central v()
            v = copy.deepcopy(central)
            if len(known):
                fine_tune(v, [subject.adapt[j] for j in known], subject.adapt_truth[known], config)
            out.add("oracle", predicted(v, subject.test))
        chosen = out.first.pseudo[i]
        truth = subject.adapt_truth[chosen.indices]
        picked = chosen.indices[truth != UNLABELLED]
        rng = np.random.default_rng([config.seed, i])
        for q in labeller_precisions:
            v = copy.deepcopy(central)
            if len(picked):
                labels = simulated_labels(truth[truth != UNLABELLED], k, q, rng)
                fine_tune(v, [subject.adapt[j] for j in picked], labels, config)
            out.add(f"labeller_{round(100 * q)}", predicted(v, subject.test))
    return out


def scores(variants: Variants, subjects: list[SubjectView], classes: tuple[str, ...]) -> dict:
    """Pooled reports per model (all subjects' test clips) and per-subject weighted F1 / macro F1."""
    truth = [s.test_truth for s in subjects]
    pooled, per_subject = {}, {}
    for model, predictions in variants.predictions.items():
        pooled[model] = evaluate_predictions(np.concatenate(truth), np.concatenate(predictions), classes).to_dict()
        per_subject[model] = [evaluate_predictions(t, p, classes).weighted_f1 for t, p in zip(truth, predictions)]
    correct, total = (np.array(x) for x in zip(*variants.pseudo)) if variants.pseudo else (np.zeros(1), np.zeros(1))
    return {
        "pooled": pooled,
        "per_subject": per_subject,
        "subjects": [s.actor for s in subjects],
        "pseudo_precision": [c / n if n else float("nan") for c, n in zip(correct.tolist(), total.tolist())],
        "pseudo_precision_pooled": float(correct.sum() / max(1, total.sum())),
        "selected": variants.selected,
    }
