"""What a subject's teacher probabilities become before the selection: corrections for a biased g().

g() is trained on still images of many strangers, with class-weighted loss, so its clip
probabilities carry two biases on a subject's videos: the class prior it believes in (uniform,
from the weighting) is not the subject's, and its view of talking, video-framed faces is skewed.
Each function here takes the (N, K) frame-mean probabilities of one subject's N clips and returns
corrected (N, K) probabilities; none needs anything beyond the subject's own clips and what the
server sent.

- `em_label_shift`: the subject's class prior re-estimated by expectation-maximisation (Saerens,
  Latinne & Decaestecker, 2002) and the posteriors adjusted to it.
- `align_to_prior`: distribution alignment (ReMixMatch, Berthelot et al., 2020): the subject's mean
  prediction is pulled to a target prior, the training actors' label shares.
- `combine_with_student`: the central v()'s own predictions on the same clips, as a second opinion
  (agreement, or the product of the two distributions).
- `teacher_clip_probabilities` under `baseline`: not a correction of the probabilities but of g()'s
  input, so it is applied where they are computed: g()'s BatchNorm statistics re-estimated on the
  subject's frames (`fedfer.model.frame_adaptation.subject_baseline`), which removes a resting face
  that a frame model cannot tell from an expression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedfer.config import COMBINE_RULES, TEACHER_SHIFTS
from fedfer.model.frame_adaptation import subject_baseline
from fedfer.model.heads import IFERHead
from fedfer.model.pseudo import clip_probabilities


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)


def em_label_shift(
    probabilities: np.ndarray, train_prior: np.ndarray | None = None, iterations: int = 100, tol: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted (N, K) posteriors, estimated (K,) prior) of one subject's clips.

    EM for a shifted label prior: p_new(y|x) ∝ p(y|x) · π_new(y) / π_train(y), π_new = mean p_new(y|x),
    repeated to a fixed point. `train_prior` defaults to uniform: g() is trained with class weights,
    which is the same as training under a uniform prior.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"need (N, K) probabilities of at least one clip, got shape {p.shape}")
    base = np.full(p.shape[1], 1.0 / p.shape[1]) if train_prior is None else np.asarray(train_prior, np.float64)
    prior = base.copy()
    adjusted = p
    for _ in range(iterations):
        adjusted = _normalise(p * (prior / base))
        new = adjusted.mean(axis=0)
        if np.abs(new - prior).max() < tol:
            prior = new
            break
        prior = new
    return adjusted.astype(np.float32), prior.astype(np.float32)


def align_to_prior(probabilities: np.ndarray, target_prior: np.ndarray) -> np.ndarray:
    """(N, K) probabilities scaled per class by target / (the subject's mean prediction), renormalised:
    the subject's predictions then average to roughly `target_prior` (ReMixMatch's alignment)."""
    p = np.asarray(probabilities, dtype=np.float64)
    target = np.asarray(target_prior, dtype=np.float64)
    if target.shape != (p.shape[1],) or np.any(target < 0) or target.sum() <= 0:
        raise ValueError(f"target prior must be {p.shape[1]} non-negative shares, got {target_prior!r}")
    return _normalise(p * (target / target.sum()) / np.clip(p.mean(axis=0), 1e-12, None)).astype(np.float32)


def combine_with_student(teacher: np.ndarray, student: np.ndarray, rule: str) -> np.ndarray:
    """(N, K) probabilities from g()'s (`teacher`) and the central v()'s (`student`) on the same clips.

    "teacher": g() alone (the paper). "agree": g()'s probabilities where both argmaxes agree, zero
    elsewhere (such a clip can pass no threshold). "product": the normalised product, which is
    confident only where both are.
    """
    if teacher.shape != student.shape:
        raise ValueError(f"teacher {teacher.shape} and student {student.shape} probabilities differ in shape")
    if rule == "teacher":
        return teacher
    if rule == "agree":
        same = teacher.argmax(axis=1) == student.argmax(axis=1)
        return np.where(same[:, None], teacher, 0.0).astype(np.float32)
    if rule == "product":
        return _normalise(teacher.astype(np.float64) * student).astype(np.float32)
    raise ValueError(f"unknown combination {rule!r}: use one of {COMBINE_RULES}")


def parse_prior(text: str, num_classes: int) -> np.ndarray:
    """(K,) shares from "s1,s2,…" (the `class-prior` setting); empty → uniform."""
    if not text.strip():
        return np.full(num_classes, 1.0 / num_classes, dtype=np.float32)
    try:
        shares = np.array([float(x) for x in text.split(",")], dtype=np.float64)
    except ValueError:
        shares = np.array([])
    if shares.shape != (num_classes,) or np.any(shares < 0) or shares.sum() <= 0:
        raise ValueError(f"class-prior must be {num_classes} comma-separated non-negative shares, got {text!r}")
    return (shares / shares.sum()).astype(np.float32)


def format_prior(shares) -> str:
    """The `class-prior` setting of (K,) shares."""
    return ",".join(f"{float(x):.6f}" for x in shares)


def teacher_clip_probabilities(g: IFERHead, clips: Sequence[np.ndarray], shift: str) -> np.ndarray:
    """(N, K) g()'s frame-mean probabilities of a subject's (T_i, 1280) clips, from a g() whose input
    baseline is the subject's own frames under `teacher-shift` "baseline", from g() as it is otherwise."""
    return clip_probabilities(subject_baseline(g, clips) if shift == "baseline" else g, clips)


def shift_teacher(probabilities: np.ndarray, shift: str, prior: np.ndarray) -> np.ndarray:
    """g()'s (N, K) clip probabilities after the `teacher-shift` setting: unchanged ("none", the paper,
    and "baseline", which `teacher_clip_probabilities` applied when computing them), label-shift EM
    ("em") or alignment to `prior` ("prior")."""
    if shift in ("none", "baseline"):
        return probabilities
    if shift == "em":
        return em_label_shift(probabilities)[0]
    if shift == "prior":
        return align_to_prior(probabilities, prior)
    raise ValueError(f"unknown teacher shift {shift!r}: use one of {TEACHER_SHIFTS}")
