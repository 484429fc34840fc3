"""Speaker-independent train/dev/test partitions of a corpus' actors, seeded and saved.

CREMA-D: the paper holds out 4 dev and 31 test actors, "keeping each set as gender balanced as
possible". Its text also says 76 train actors, but 76 + 4 + 31 = 111 while CREMA-D has 91 actors;
the 31 test actors agree with its result tables, so fedfer trains on the remaining 56. Corpora of
another size get the same dev and test shares (at least one actor each); MSP-IMPROV's 6/2/4 and
any other partition are passed as explicit counts.

Gender balance: each held-out set takes from every gender in proportion to the actors still
available (largest-remainder rounding), test first, then dev; train keeps the rest. For CREMA-D
(48 M / 43 F) that gives test 16 M / 15 F, dev 2 / 2, train 30 / 26.

A split is saved as JSON and reused, so every stage and every later run sees the same actors in
the same set; asking for it again with another corpus, seed or counts is an error, not a silent
new split.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from fedfer.config import PROTOCOLS
from fedfer.data.datasets import Clip
from fedfer.io import atomic_write_json

SPLITS: tuple[str, ...] = ("train", "dev", "test")
# The paper's CREMA-D held-out sets, as shares of its 91 actors.
_REFERENCE_ACTORS, _REFERENCE_DEV, _REFERENCE_TEST = 91, 4, 31


def actor_genders(clips: Iterable[Clip]) -> dict[str, str]:
    """{actor: gender} from clips whose meta carries "gender" (as the corpus readers set it)."""
    return {clip.actor: clip.meta["gender"] for clip in clips}


def default_counts(num_actors: int) -> tuple[int, int, int]:
    """(train, dev, test) actor counts: CREMA-D's 56/4/31 for 91 actors, the same shares otherwise."""
    if num_actors < 3:
        raise ValueError(f"a train/dev/test split needs at least 3 actors; got {num_actors}")
    test = max(1, math.floor(num_actors * _REFERENCE_TEST / _REFERENCE_ACTORS + 0.5))
    dev = max(1, math.floor(num_actors * _REFERENCE_DEV / _REFERENCE_ACTORS + 0.5))
    return num_actors - dev - test, dev, test


def split_actors(
    actors: Mapping[str, str], seed: int = 0, counts: tuple[int, int, int] | None = None
) -> dict[str, list[str]]:
    """Partition actors ({actor id: gender}) into {"train", "dev", "test": sorted actor ids}.

    counts: (train, dev, test), each at least 1, summing to the number of actors; default
    `default_counts`. The same actors, seed and counts always give the same split.
    """
    _, dev, test = _checked_counts(counts, len(actors))
    rng = np.random.default_rng(seed)
    # Shuffled actors per gender; held-out sets take from the front, train keeps what is left.
    pools = {
        gender: [str(a) for a in rng.permutation(sorted(a for a in actors if actors[a] == gender))]
        for gender in sorted(set(actors.values()))
    }
    split: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for name, size in (("test", test), ("dev", dev)):
        for gender, n in _proportional({g: len(p) for g, p in pools.items()}, size).items():
            split[name] += pools[gender][:n]
            pools[gender] = pools[gender][n:]
    split["train"] = [a for pool in pools.values() for a in pool]
    return {name: sorted(split[name]) for name in SPLITS}


def load_or_create_split(
    path: str | Path, actors: Mapping[str, str], seed: int = 0, counts: tuple[int, int, int] | None = None
) -> dict[str, list[str]]:
    """The split saved at `path`, created there (atomically) on first use.

    A saved split is reused only for the same actor set, seed and counts; otherwise the error says
    what differs, since silently re-splitting would mix test actors into training across runs.
    """
    path = Path(path)
    resolved = _checked_counts(counts, len(actors))
    if not path.exists():
        split = split_actors(actors, seed, resolved)
        atomic_write_json(
            path,
            {
                "seed": seed,
                "counts": dict(zip(SPLITS, resolved)),
                "genders": {name: dict(sorted(Counter(actors[a] for a in split[name]).items())) for name in SPLITS},
                **split,
            },
        )
        return split
    stored = _read_split(path)
    remedy = "Delete the file to create a new split, or pass the split file made for this corpus."
    saved_actors = {a for name in SPLITS for a in stored[name]}
    if saved_actors != set(actors):
        extra, absent = sorted(saved_actors - set(actors)), sorted(set(actors) - saved_actors)
        raise ValueError(
            f"{path} splits a different actor set: {len(extra)} saved actors are not in the corpus "
            f"(e.g. {extra[:5]}), {len(absent)} corpus actors are not in the file (e.g. {absent[:5]}). {remedy}"
        )
    if stored["seed"] != seed or tuple(stored["counts"][n] for n in SPLITS) != resolved:
        raise ValueError(
            f"{path} was made with seed {stored['seed']} and counts {stored['counts']}; asked for seed "
            f"{seed} and counts {dict(zip(SPLITS, resolved))}. {remedy}"
        )
    return {name: list(stored[name]) for name in SPLITS}


def _read_split(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(stored, dict):
            raise TypeError("not a JSON object")
        for key in ("seed", "counts", *SPLITS):
            if key not in stored:
                raise KeyError(key)
        if not all(isinstance(stored[name], list) for name in SPLITS):
            raise TypeError("train/dev/test are not lists of actor ids")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path}: not a fedfer split file ({type(err).__name__}: {err}); expected JSON with keys "
            f"seed, counts, {', '.join(SPLITS)}. Delete it to create a new split."
        ) from err
    return stored


def _checked_counts(counts: tuple[int, int, int] | None, num_actors: int) -> tuple[int, int, int]:
    if counts is None:
        return default_counts(num_actors)
    counts = tuple(int(n) for n in counts)
    if len(counts) != 3 or min(counts) < 1 or sum(counts) != num_actors:
        raise ValueError(
            f"counts={counts}: expected (train, dev, test), each at least 1, summing to the {num_actors} actors"
        )
    return counts  # type: ignore[return-value]


def _proportional(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """Split `total` over groups in proportion to `sizes` (largest remainder; ties to the larger group)."""
    pool = sum(sizes.values())
    quotas = {g: total * n / pool for g, n in sizes.items()}
    shares = {g: math.floor(q) for g, q in quotas.items()}
    by_remainder = sorted(sizes, key=lambda g: (-(quotas[g] - shares[g]), -sizes[g], g))
    for g in by_remainder[: total - sum(shares.values())]:
        shares[g] += 1
    return shares


# A subject's clips under a protocol (fedfer.config.PROTOCOLS): one implementation shared by the
# Flower clients, the server's scoring and the grid.
UNLABELLED = -1  # a clip's label where the subject has none


def stratified_halves(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions split in two halves per label value (sorted): adaptation and test."""
    first, second = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        first += idx[: len(idx) // 2].tolist()
        second += idx[len(idx) // 2 :].tolist()
    return np.array(sorted(first), dtype=np.int64), np.array(sorted(second), dtype=np.int64)


def protocol_positions(labels: np.ndarray, protocol: str, seed: int, subject: str) -> tuple[np.ndarray, np.ndarray]:
    """(adaptation, scored) positions of one subject's clips under `protocol`.

    Transductive: the subject adapts on all its clips and is scored on the labelled ones. Held-out:
    its clips are halved per label, unlabelled ones as one more stratum, seeded by (seed, subject)
    so the subject's device and the server draw the same halves; it adapts on one half and is
    scored on the other half's labelled clips."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if protocol == "transductive":
        adapt, scored = np.arange(len(labels)), np.arange(len(labels))
    else:
        rng = np.random.default_rng([seed, int.from_bytes(subject.encode(), "little")])
        adapt, scored = stratified_halves(labels, rng)
    return adapt, scored[labels[scored] != UNLABELLED]
