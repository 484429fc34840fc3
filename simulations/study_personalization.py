"""Does the world leave room for personalization, and how much of it do pseudo labels recover?

For every test actor, its labelled clips are split in two halves (seeded, stratified by label):
adaptation and evaluation. On the evaluation half it scores
  - frame-mean g(): the mean of g()'s frame probabilities (the pseudo-label rule) — frames alone;
  - central v(): trained on the training actors — the sequence model;
  - pseudo v(): central v() personalized on the adaptation half with g()'s pseudo labels (the method);
  - oracle v(): central v() fine-tuned on the adaptation half with the true labels, once with the
    method's budget (2 epochs: about two gradient steps on a dozen clips) and once long enough to
    fit them (10 epochs: the ceiling).
The gap oracle − central says how much an actor differs from the training actors in a way its own
clips can fix; pseudo − central says how much of that the method recovers, and the pseudo-label
precision on the adaptation half says why. It also prints whether frames alone are enough
(`frames_vs_sequence`). Nothing here is used by training in `fedfer run`.

    python simulations/study_personalization.py --world small --seed 0 --out results/study_personalization
"""

from __future__ import annotations

import copy
import time

import numpy as np
from study_args import study_parser
from torch import nn

from fedfer.config import TrainConfig
from fedfer.data.splits import stratified_halves
from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.model.checkpoint import load_head
from fedfer.model.inference import predict_proba
from fedfer.model.personalize import personalize
from fedfer.model.pseudo import clip_probabilities
from fedfer.model.training import LabelledSet, fit, train_head
from fedfer.runconfig import PersonalizeConfig
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages
from fedfer.stages.central import Prepared

BASE_MODELS = ("frame_mean_g", "central_v", "pseudo_v")


def opening_face(clip: np.ndarray) -> np.ndarray:
    """(1280,) the mean of a clip's first fifth (at least one frame): the face before the emotion."""
    return clip[: max(1, len(clip) // 5)].mean(0)


def mean_and_change(clip: np.ndarray) -> np.ndarray:
    """(2 * 1280,) a clip summarised with its order: the mean frame, and the mean of its last two
    thirds minus the opening face (what changed since the face the clip opens with)."""
    return np.concatenate([clip.mean(0), clip[len(clip) // 3 :].mean(0) - opening_face(clip)])


def relative_to_start(clip: np.ndarray) -> np.ndarray:
    """(T, 1280) every frame minus the opening face: the order made explicit."""
    return (clip - opening_face(clip)).astype(np.float32)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    """Predictions of a regularised linear classifier (standardise, PCA to 128 dimensions, logistic
    regression); a training set smaller than that (the tiny world's) keeps as many as it has."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(),
        PCA(min(128, *train_x.shape), random_state=seed),
        LogisticRegression(C=0.05, max_iter=2000, class_weight="balanced"),
    )
    return model.fit(train_x, train_y).predict(test_x)


def frames_vs_sequence(prepared: Prepared, central: nn.Module, epochs: int, seed: int) -> dict:
    """Are frames alone enough? Models that see the same test clips and labels, with and without
    the order of the frames:

    - frames alone: a per-frame classifier (g()'s architecture) trained on the training actors'
      video frames, each labelled with its clip's label, averaged over each test clip; and a linear
      classifier on each clip's mean frame;
    - with the order: the same linear classifier given also the change from the clip's opening
      frames (`mean_and_change`), the sequence model v() as centrally trained, and, as a diagnostic
      of what v() could learn, v() trained the same way on frames made relative to the clip's start.
    The two linear models differ only in the temporal summary, so their gap is what the order adds.
    """
    classes = prepared.task.classes
    train, dev, test = (prepared.sequences(prepared.split[name]) for name in ("train", "dev", "test"))

    def frames(clips: LabelledSet) -> LabelledSet:
        """Every frame, labelled with its clip's label."""
        return LabelledSet(
            np.concatenate(clips.inputs),
            np.concatenate([[label] * len(f) for label, f in zip(clips.labels, clips.inputs)]),
        )

    def relative(clips: LabelledSet) -> LabelledSet:
        return LabelledSet([relative_to_start(f) for f in clips.inputs], clips.labels)

    frame_model, _ = train_head(
        frames(train),
        frames(dev),
        TrainConfig(stage="ifer", num_classes=len(classes), epochs=epochs, batch_size=256, seed=seed),
        progress=False,
    )
    relative_v, _ = train_head(
        relative(train), relative(dev), TrainConfig(stage="vfer", num_classes=len(classes), seed=seed), progress=False
    )
    train_x, train_y, x, y = train.inputs, train.labels, test.inputs, test.labels
    predictions = {
        "frames: per-frame classifier, clip mean": clip_probabilities(frame_model, x).argmax(1),
        "frames: linear on the clip's mean frame": linear_probe(
            np.stack([f.mean(0) for f in train_x]), train_y, np.stack([f.mean(0) for f in x]), seed
        ),
        "order: linear on mean + change from start": linear_probe(
            np.stack([mean_and_change(f) for f in train_x]), train_y, np.stack([mean_and_change(f) for f in x]), seed
        ),
        "order: sequence model v()": predict_proba(central, x).argmax(1),
        "order: v() on frames relative to the clip's start": predict_proba(relative_v, relative(test).inputs).argmax(1),
    }
    reports = {name: evaluate_predictions(y, pred, classes) for name, pred in predictions.items()}
    return {name: {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1} for name, r in reports.items()}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_personalization", flags="run")
    parser.add_argument(
        "--oracle-epochs",
        type=int,
        nargs="+",
        default=[2, 10],
        help="fine-tuning epochs of each oracle (default: 2, the method's budget, and 10)",
    )
    parser.add_argument(
        "--frame-epochs", type=int, default=10, help="epochs of the per-frame video classifier (default: 10)"
    )
    args = parser.parse_args(argv)
    options = options_from_args(args)
    started = time.monotonic()
    prepared = run_stages(options)
    classes = prepared.task.classes
    central, _ = load_head(prepared.vfer, stage="vfer", classes=classes)
    g, _ = load_head(prepared.ifer, stage="ifer", classes=classes)
    personal_config = options.federation.personalize  # P, the threshold and the local budget of the run's flags
    oracles = {
        f"oracle_v_{e}ep": TrainConfig(
            stage="vfer",
            num_classes=len(classes),
            epochs=e,
            lr=personal_config.lr,
            batch_size=personal_config.batch_size,
            class_weighted=False,
            seed=args.seed,
        )
        for e in args.oracle_epochs
    }
    pooled, per_actor, pseudo_cm = score_actors(
        prepared, central, g, personal_config, oracles, np.random.default_rng(args.seed)
    )
    reports = {m: evaluate_predictions(np.array(t), np.array(p), classes) for m, (t, p) in pooled.items()}
    selected = pseudo_cm.sum(0)
    summary = {
        "world": prepared.world.world_id,
        "seconds": time.monotonic() - started,
        "settings": {
            "P": personal_config.max_per_class,
            "p_threshold": personal_config.p_threshold,
            "oracle_epochs": args.oracle_epochs,
        },
        "pooled": {m: {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1} for m, r in reports.items()},
        "frames_vs_sequence": frames_vs_sequence(prepared, central, args.frame_epochs, args.seed),
        "per_actor": per_actor,
        "pseudo_labels": {
            "selected_per_class": dict(zip(classes, selected.tolist())),
            "precision_per_class": {
                c: (float(pseudo_cm[i, i] / selected[i]) if selected[i] else None) for i, c in enumerate(classes)
            },
            "accuracy": float(np.trace(pseudo_cm) / max(1, selected.sum())),
        },
    }
    lines = report_lines(summary, reports, list(oracles), int(selected.sum()))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "summary.json", summary)
    atomic_write_text(args.out / "report.md", "\n".join(lines) + "\n")
    print("\n".join(lines[: next(i for i, line in enumerate(lines) if line.startswith("| actor"))]))
    print(f"\nwritten: {args.out}")


def score_actors(
    prepared: Prepared,
    central: nn.Module,
    g: nn.Module,
    config: PersonalizeConfig,
    oracles: dict[str, TrainConfig],
    rng: np.random.Generator,
) -> tuple[dict, list[dict], np.ndarray]:
    """Every test actor's evaluation half scored by each model, pooled (truth, predictions) per model, one row
    per actor, and the (K, K) true × pseudo label counts of the selected adaptation clips."""
    classes = prepared.task.classes
    pooled = {m: ([], []) for m in (*BASE_MODELS, *oracles)}
    per_actor, pseudo_cm = [], np.zeros((len(classes), len(classes)), dtype=np.int64)
    for actor in sorted(prepared.split["test"]):
        own = prepared.sequences([actor])
        features, labels = own.inputs, own.labels
        adapt, held = stratified_halves(labels, rng)
        adapt_x, held_x = [features[i] for i in adapt], [features[i] for i in held]
        pseudo_v = copy.deepcopy(central)
        result = personalize(pseudo_v, clip_probabilities(g, adapt_x), adapt_x, config)
        chosen = result.pseudo
        np.add.at(pseudo_cm, (labels[adapt][chosen.indices], chosen.labels), 1)
        predictions = {
            "frame_mean_g": clip_probabilities(g, held_x).argmax(1),
            "central_v": predict_proba(central, held_x).argmax(1),
            "pseudo_v": predict_proba(pseudo_v, held_x).argmax(1),
        }
        for name, oracle_config in oracles.items():
            oracle_v = copy.deepcopy(central)
            fit(oracle_v, LabelledSet(adapt_x, labels[adapt]), None, oracle_config, progress=False)
            predictions[name] = predict_proba(oracle_v, held_x).argmax(1)
        row = {"actor": actor, "adapt": len(adapt), "evaluate": len(held), "selected": result.num_selected}
        for m, pred in predictions.items():
            pooled[m][0].extend(labels[held].tolist())
            pooled[m][1].extend(pred.tolist())
            row[m] = float((pred == labels[held]).mean())
        per_actor.append(row)
    return pooled, per_actor, pseudo_cm


def report_lines(summary: dict, reports: dict, oracles: list[str], selected: int) -> list[str]:
    """report.md: pooled scores, frames against sequences, gaps per actor, one row per actor."""
    per_actor, settings = summary["per_actor"], summary["settings"]
    ceiling = f"oracle_v_{max(settings['oracle_epochs'])}ep"
    lines = [
        "# Personalization study",
        "",
        f"world {summary['world']}, {len(per_actor)} test actors, P={settings['P']}, "
        f"threshold={settings['p_threshold']}",
        "",
        "| model (evaluation halves, pooled) | macro F1 | micro F1 |",
        "|---|---|---|",
    ]
    lines += [f"| {m} | {100 * r.macro_f1:.1f} | {100 * r.micro_f1:.1f} |" for m, r in reports.items()]
    lines += ["", "| frames alone vs sequence (all test clips) | macro F1 | micro F1 |", "|---|---|---|"]
    lines += [
        f"| {m} | {100 * r['macro_f1']:.1f} | {100 * r['micro_f1']:.1f} |"
        for m, r in summary["frames_vs_sequence"].items()
    ]
    lines += [""]
    for name in oracles:
        gaps = np.array([r[name] - r["central_v"] for r in per_actor])
        lines.append(
            f"{name} − central accuracy per actor: mean {100 * gaps.mean():+.1f}, "
            f"{int((gaps > 0).sum())} of {len(gaps)} actors gain, {int((gaps < 0).sum())} lose"
        )
    gains = np.array([r["pseudo_v"] - r["central_v"] for r in per_actor])
    lines += [
        f"pseudo − central accuracy per actor: mean {100 * gains.mean():+.1f}, {int((gains > 0).sum())} improve, "
        f"{int((gains == 0).sum())} unchanged, {int((gains < 0).sum())} worse",
        f"pseudo-label accuracy on adaptation halves: {100 * summary['pseudo_labels']['accuracy']:.1f}% "
        f"of {selected} selected",
        "",
        f"| actor | eval clips | selected | frame-mean g | central v | pseudo v | {' | '.join(oracles)} "
        f"| gap to {ceiling} |",
        "|---" * (7 + len(oracles)) + "|",
    ]
    return lines + [
        f"| {r['actor']} | {r['evaluate']} | {r['selected']} | {100 * r['frame_mean_g']:.0f} "
        f"| {100 * r['central_v']:.0f} | {100 * r['pseudo_v']:.0f} | "
        + " | ".join(f"{100 * r[name]:.0f}" for name in oracles)
        + f" | {100 * (r[ceiling] - r['central_v']):+.0f} |"
        for r in per_actor
    ]


if __name__ == "__main__":
    main()
