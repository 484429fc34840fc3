"""Statistics a reviewer accepts: means with 95% t-intervals over seeds, paired tests over subjects.

A seed changes the actor split, the central training and the personalization, so a number from one
seed says little; every grid figure is a mean over seeds with its confidence interval. Per-subject
gains are paired (the same subject before and after), so they get a Wilcoxon signed-rank test
rather than a comparison of two means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values and the half-width of its 95% Student-t confidence interval (nan for n < 2)."""

    mean: float
    half_width: float
    n: int

    def format(self, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
        """'41.3 ± 19.1' in percent by default ('+2.6 ± 2.2' when `signed`); a single value has no interval."""
        mean = f"{scale * self.mean:{'+' if signed else ''}.{digits}f}"
        return mean if self.n < 2 else f"{mean} ± {scale * self.half_width:.{digits}f}"


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and t-interval half-width of independent values (one per seed)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    if x.size < 2:
        return Interval(float(x.mean()), float("nan"), 1)
    sem = x.std(ddof=1) / np.sqrt(x.size)
    return Interval(float(x.mean()), float(sem * stats.t.ppf(0.5 + confidence / 2, x.size - 1)), int(x.size))


@dataclass(frozen=True)
class PairedGains:
    """Per-subject gains (after − before) and what they add up to."""

    gains: tuple[float, ...]
    threshold: float  # |gain| <= threshold counts as unchanged
    improved: int
    unchanged: int
    worse: int
    mean: float
    p_value: float  # two-sided Wilcoxon signed-rank; nan when every gain is within the threshold

    def tally(self) -> str:
        return f"{self.improved} / {self.unchanged} / {self.worse}"


def paired_gains(before: Sequence[float], after: Sequence[float], threshold: float = 1e-9) -> PairedGains:
    """Improved / unchanged / worse subjects and the Wilcoxon signed-rank p-value of the gains.

    Gains within `threshold` count as unchanged and, as zero differences, are left out of the test
    (scipy's `zero_method="wilcox"`), so subjects the method did not touch cannot make it look better.
    """
    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if b.shape != a.shape or b.ndim != 1 or b.size == 0:
        raise ValueError(f"need two equally long, non-empty score lists; got shapes {b.shape} and {a.shape}")
    if threshold < 0:
        raise ValueError(f"the unchanged threshold must be >= 0, got {threshold}")
    gains = a - b
    moved = np.abs(gains) > threshold
    p_value = float(stats.wilcoxon(gains[moved], zero_method="wilcox").pvalue) if moved.sum() >= 1 else float("nan")
    return PairedGains(
        gains=tuple(float(g) for g in gains),
        threshold=threshold,
        improved=int((gains > threshold).sum()),
        unchanged=int((~moved).sum()),
        worse=int((gains < -threshold).sum()),
        mean=float(gains.mean()),
        p_value=p_value,
    )
