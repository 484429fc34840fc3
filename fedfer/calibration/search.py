"""Fitting knobs to targets: damped Gauss-Newton on a seeded simulator, every candidate logged.

The planned world is deterministic for a seed, so two candidates differ only by their knobs (common
random numbers) and finite differences measure each knob's effect on every target: the Jacobian is
also the report's sensitivity table. Residuals are in units of each target's tolerance, so "cost ≤
number of targets" roughly means "within tolerance on average"; a ridge on the step keeps knobs
that no target constrains where they are. Every evaluated candidate is appended to a JSON-lines log,
and a rerun reads it back instead of recomputing (`Evaluations`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np

from fedfer.calibration.knobs import Knob

log = logging.getLogger(__name__)
Evaluate = Callable[[dict[str, float]], dict[str, float]]


class Evaluations:
    """Candidates evaluated so far (knob values → statistics), kept in a JSON-lines file."""

    def __init__(self, path: Path, stage: str) -> None:
        self.path = path
        self.stage = stage
        self.rows: list[dict] = []
        if path.is_file():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["stage"] == stage:
                    self.rows.append(row)

    @staticmethod
    def key(values: Mapping[str, float]) -> str:
        return json.dumps({k: round(v, 6) for k, v in sorted(values.items())})

    def lookup(self, values: Mapping[str, float]) -> dict[str, float] | None:
        wanted = self.key(values)
        return next((r["statistics"] for r in self.rows if self.key(r["knobs"]) == wanted), None)

    def add(self, values: Mapping[str, float], statistics: Mapping[str, float], cost: float, role: str) -> None:
        row = {"stage": self.stage, "role": role, "knobs": dict(values), "statistics": dict(statistics), "cost": cost}
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:  # one line per candidate: a killed run loses at most the line it was writing
            f.write(json.dumps(row) + "\n")


@dataclass
class FitResult:
    values: dict[str, float]
    cost: float
    statistics: dict[str, float]
    jacobian: dict[str, dict[str, float]]  # target → knob → change per unit of the knob
    history: list[float]


def residuals(
    statistics: Mapping[str, float], targets: Mapping[str, float], tolerances: Mapping[str, float]
) -> np.ndarray:
    """(n_targets,) (statistic − target) / tolerance, in the targets' order."""
    return np.array([(statistics[k] - targets[k]) / tolerances[k] for k in targets])


def fit(
    evaluate: Evaluate,
    knobs: Sequence[Knob],
    start: Mapping[str, float],
    targets: Mapping[str, float],
    tolerances: Mapping[str, float],
    evaluations: Evaluations,
    iterations: int = 6,
    step: float = 0.04,
    ridge: float = 0.5,
    refresh_every: int = 3,
    pool: Pool | None = None,
) -> FitResult:
    """Gauss-Newton with Levenberg damping over `knobs` (in units of each knob's range).

    `evaluate` maps knob values to statistics (a superset of `targets`); the Jacobian is taken by
    forward differences of `step` × range every `refresh_every` iterations and updated in between
    from each accepted step (Broyden's rank-one update), one evaluation per step instead of one per knob.
    """
    span = np.array([k.high - k.low for k in knobs])
    low = np.array([k.low for k in knobs])

    def values_of(x: np.ndarray) -> dict[str, float]:
        return {k.path: float(np.clip(low[i] + x[i] * span[i], k.low, k.high)) for i, k in enumerate(knobs)}

    def run(xs: list[np.ndarray], role: str) -> list[dict[str, float]]:
        todo = [values_of(x) for x in xs]
        known = [evaluations.lookup(v) for v in todo]
        missing = [v for v, s in zip(todo, known) if s is None]
        computed = iter(
            pool.map(evaluate, missing) if pool is not None and len(missing) > 1 else map(evaluate, missing)
        )
        out = []
        for v, s in zip(todo, known):
            if s is None:
                s = next(computed)
                evaluations.add(v, s, float(np.sum(residuals(s, targets, tolerances) ** 2)), role)
            out.append(s)
        return out

    x = np.array([(start[k.path] - k.low) / (k.high - k.low) for k in knobs])
    stats = run([x], "start")[0]
    r = residuals(stats, targets, tolerances)
    cost, damping, history = float(r @ r), 1.0, [float(r @ r)]
    jacobian = np.zeros((len(r), len(knobs)))
    measured = jacobian.copy()  # the last finite-difference Jacobian: the report's sensitivities
    for it in range(iterations):
        if it % refresh_every == 0:
            probes = []
            for i in range(len(knobs)):
                e = x.copy()
                e[i] = e[i] + step if e[i] + step <= 1.0 else e[i] - step
                probes.append(e)
            for i, s in enumerate(run(probes, f"jacobian-{it}")):
                jacobian[:, i] = (residuals(s, targets, tolerances) - r) / (probes[i][i] - x[i])
            measured = jacobian.copy()
        improved = False
        for _ in range(4):
            a = jacobian.T @ jacobian + (ridge + damping) * np.eye(len(knobs))
            candidate = np.clip(x - np.linalg.solve(a, jacobian.T @ r), 0.0, 1.0)
            s = run([candidate], f"step-{it}")[0]
            rc = residuals(s, targets, tolerances)
            dx = candidate - x
            if dx @ dx > 0:  # Broyden: make the model agree with what this step did
                jacobian += np.outer(rc - r - jacobian @ dx, dx) / (dx @ dx)
            if float(rc @ rc) < cost:
                x, r, stats, cost = candidate, rc, s, float(rc @ rc)
                damping, improved = damping / 3.0, True
                break
            damping *= 4.0
        history.append(cost)
        log.info("iteration %d: cost %.2f over %d targets", it + 1, cost, len(r))
        if not improved:
            break
    tol = np.array([tolerances[k] for k in targets])
    sensitivity = {
        t: {k.path: float(measured[j, i] * tol[j] / span[i]) for i, k in enumerate(knobs)}
        for j, t in enumerate(targets)
    }
    return FitResult(values_of(x), cost, stats, sensitivity, history)
