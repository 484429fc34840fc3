"""Does the world leave room for personalization, and how much of it do pseudo labels recover?

For every test actor, its labelled clips are split in two halves (seeded, stratified by label):
adaptation and evaluation. On the evaluation half it scores
  - frame-mean g(): the mean of g()'s frame probabilities (the pseudo-label rule) — frames alone;
  - central v(): trained on the training actors — the sequence model;
  - pseudo v(): central v() personalized on the adaptation half with g()'s pseudo labels (the method);
  - oracle v(): central v() fine-tuned on the adaptation half with the true labels (the ceiling).
The gap oracle − central says how much an actor differs from the training actors in a way its own
clips can fix; pseudo − central says how much of that the method recovers, and the pseudo-label
precision on the adaptation half says why. Nothing here is used by training in `fedfer run`.

    python simulations/study_personalization.py --world small --seed 0 --out results/study_personalization
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np

from fedfer.checkpoint import load_head
from fedfer.commands.run import add_world_arguments, options_from_args
from fedfer.config import PersonalizeConfig, TrainConfig
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.metrics import evaluate_predictions
from fedfer.personalize import personalize
from fedfer.pseudo import clip_probabilities, select_pseudo_labels
from fedfer.runner import central_stage
from fedfer.train import LabelledSet, fit, predict_proba, train_head

MODELS = ("frame_mean_g", "central_v", "pseudo_v", "oracle_v")


def frames_vs_sequence(prepared, epochs: int, seed: int) -> dict:
    """A per-frame classifier trained on the training actors' video frames (each frame labelled with
    its clip's label), averaged over each test clip, against the sequence model v() on the same clips.

    Both see the same videos and labels; only the sequence model can use the order of the frames.
    """
    classes = prepared.task.classes
    split = {name: set(actors) for name, actors in prepared.split.items()}

    def frames(name: str) -> LabelledSet:
        clips = [c for c in prepared.clips if c.actor in split[name] and c.label is not None]
        x = [prepared.store.load(c.clip_id) for c in clips]
        return LabelledSet(np.concatenate(x), np.concatenate([[c.label] * len(f) for c, f in zip(clips, x)]))

    frame_model, _ = train_head(frames("train"), frames("dev"), TrainConfig(stage="ifer", num_classes=len(classes), epochs=epochs, batch_size=256, seed=seed), progress=False)
    test = [c for c in prepared.clips if c.actor in split["test"] and c.label is not None]
    x, y = [prepared.store.load(c.clip_id) for c in test], np.array([c.label for c in test])
    central, _ = load_head(prepared.vfer, stage="vfer", classes=classes)
    reports = {
        "frame_classifier_clip_mean": evaluate_predictions(y, clip_probabilities(frame_model, x).argmax(1), classes),
        "sequence_v": evaluate_predictions(y, predict_proba(central, x).argmax(1), classes),
    }
    return {name: {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1} for name, r in reports.items()}


def halves(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of clip positions into adaptation and evaluation halves."""
    adapt, held = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        adapt += idx[: len(idx) // 2].tolist()
        held += idx[len(idx) // 2 :].tolist()
    return np.array(sorted(adapt)), np.array(sorted(held))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_arguments(parser)
    parser.add_argument("--max-per-class", "-P", type=int, default=PersonalizeConfig().max_per_class)
    parser.add_argument("--p-threshold", type=float, default=PersonalizeConfig().p_threshold)
    parser.add_argument("--oracle-epochs", type=int, default=2, help="fine-tuning epochs with true labels (default: 2, as the method's)")
    parser.add_argument("--frame-epochs", type=int, default=10, help="epochs of the per-frame video classifier (default: 10)")
    parser.add_argument("--out", type=Path, default=Path("results/study_personalization"))
    args = parser.parse_args()
    options = options_from_args(args)
    started = time.monotonic()
    prepared = central_stage(options)
    classes = prepared.task.classes
    k = len(classes)
    central, _ = load_head(prepared.vfer, stage="vfer", classes=classes)
    g, _ = load_head(prepared.ifer, stage="ifer", classes=classes)
    rng = np.random.default_rng(args.seed)
    personal_config = PersonalizeConfig(max_per_class=args.max_per_class, p_threshold=args.p_threshold, seed=args.seed)
    oracle_config = TrainConfig(stage="vfer", num_classes=k, epochs=args.oracle_epochs, lr=personal_config.lr, batch_size=personal_config.batch_size, class_weighted=False, seed=args.seed)

    pooled = {m: ([], []) for m in MODELS}
    per_actor, pseudo_cm = [], np.zeros((k, k), dtype=np.int64)
    for actor in sorted(prepared.split["test"]):
        clips = [c for c in prepared.clips if c.actor == actor and c.label is not None]
        features = [prepared.store.load(c.clip_id) for c in clips]
        labels = np.array([c.label for c in clips])
        adapt, held = halves(labels, rng)
        adapt_x, held_x = [features[i] for i in adapt], [features[i] for i in held]
        pseudo_v, oracle_v = copy.deepcopy(central), copy.deepcopy(central)
        result = personalize(pseudo_v, g, adapt_x, personal_config)
        fit(oracle_v, LabelledSet(adapt_x, labels[adapt]), None, oracle_config, progress=False)
        chosen = select_pseudo_labels(clip_probabilities(g, adapt_x), personal_config.max_per_class, personal_config.p_threshold)
        np.add.at(pseudo_cm, (labels[adapt][chosen.indices], chosen.labels), 1)
        predictions = {
            "frame_mean_g": clip_probabilities(g, held_x).argmax(1),
            "central_v": predict_proba(central, held_x).argmax(1),
            "pseudo_v": predict_proba(pseudo_v, held_x).argmax(1),
            "oracle_v": predict_proba(oracle_v, held_x).argmax(1),
        }
        row = {"actor": actor, "adapt": len(adapt), "evaluate": len(held), "selected": result.num_selected}
        for m, pred in predictions.items():
            pooled[m][0].extend(labels[held].tolist())
            pooled[m][1].extend(pred.tolist())
            row[m] = float((pred == labels[held]).mean())
        per_actor.append(row)

    reports = {m: evaluate_predictions(np.array(t), np.array(p), classes) for m, (t, p) in pooled.items()}
    frames_seq = frames_vs_sequence(prepared, args.frame_epochs, args.seed)
    selected = pseudo_cm.sum(0)
    summary = {
        "world": prepared.world.world_id,
        "seconds": time.monotonic() - started,
        "settings": {"P": args.max_per_class, "p_threshold": args.p_threshold, "oracle_epochs": args.oracle_epochs},
        "pooled": {m: {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1} for m, r in reports.items()},
        "frames_vs_sequence": frames_seq,
        "per_actor": per_actor,
        "pseudo_labels": {"selected_per_class": dict(zip(classes, selected.tolist())), "precision_per_class": {c: (float(pseudo_cm[i, i] / selected[i]) if selected[i] else None) for i, c in enumerate(classes)}, "accuracy": float(np.trace(pseudo_cm) / max(1, selected.sum()))},
    }
    lines = ["# Personalization study", "", f"world {summary['world']}, {len(per_actor)} test actors, P={args.max_per_class}, threshold={args.p_threshold}", "",
             "| model (evaluation halves, pooled) | macro F1 | micro F1 |", "|---|---|---|"]
    lines += [f"| {m} | {100 * r.macro_f1:.1f} | {100 * r.micro_f1:.1f} |" for m, r in reports.items()]
    lines += ["", "| frames alone vs sequence (all test clips) | macro F1 | micro F1 |", "|---|---|---|"]
    lines += [f"| {m} | {100 * r['macro_f1']:.1f} | {100 * r['micro_f1']:.1f} |" for m, r in frames_seq.items()]
    gaps = np.array([r["oracle_v"] - r["central_v"] for r in per_actor])
    gains = np.array([r["pseudo_v"] - r["central_v"] for r in per_actor])
    lines += ["", f"oracle − central accuracy per actor: mean {100 * gaps.mean():+.1f}, {int((gaps > 0).sum())} of {len(gaps)} actors gain",
              f"pseudo − central accuracy per actor: mean {100 * gains.mean():+.1f}, {int((gains > 0).sum())} improve, {int((gains == 0).sum())} unchanged, {int((gains < 0).sum())} worse",
              f"pseudo-label accuracy on adaptation halves: {100 * summary['pseudo_labels']['accuracy']:.1f}% of {int(selected.sum())} selected", "",
              "| actor | eval clips | selected | frame-mean g | central v | pseudo v | oracle v | oracle gap |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['actor']} | {r['evaluate']} | {r['selected']} | {100 * r['frame_mean_g']:.0f} | {100 * r['central_v']:.0f} | {100 * r['pseudo_v']:.0f} | {100 * r['oracle_v']:.0f} | {100 * (r['oracle_v'] - r['central_v']):+.0f} |" for r in per_actor]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "summary.json", summary)
    atomic_write_text(args.out / "report.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:17]))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
