"""Actor splits: the paper's CREMA-D partition, gender-balanced, seeded, saved and reused."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pytest
from conftest import DATA

from fedfer.data.datasets.crema_d import BrokenClipWarning, load_crema_d
from fedfer.data.splits import (
    actor_genders,
    default_counts,
    load_or_create_split,
    split_actors,
)


@pytest.fixture(scope="module")
def genders() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BrokenClipWarning)
        return actor_genders(load_crema_d(DATA / "crema-d", require_video=False))


def test_crema_d_split_sizes_and_gender_balance(genders: dict[str, str]) -> None:
    split = split_actors(genders, seed=0)
    # The paper's 4 dev and 31 test actors; its "76 train" cannot hold for 91 actors, the rest is 56.
    assert {name: len(actors) for name, actors in split.items()} == {"train": 56, "dev": 4, "test": 31}
    assert sorted(a for actors in split.values() for a in actors) == sorted(genders)
    by_gender = {name: Counter(genders[a] for a in actors) for name, actors in split.items()}
    assert by_gender == {"train": {"M": 30, "F": 26}, "dev": {"M": 2, "F": 2}, "test": {"M": 16, "F": 15}}


def test_same_seed_same_split_other_seed_other_split(genders: dict[str, str]) -> None:
    assert split_actors(genders, seed=3) == split_actors(genders, seed=3)
    assert split_actors(genders, seed=3)["test"] != split_actors(genders, seed=4)["test"]


def test_small_corpora_get_proportional_or_explicit_counts() -> None:
    assert default_counts(91) == (56, 4, 31)
    assert default_counts(3) == (1, 1, 1)
    actors = {f"{i:02d}": "MF"[i % 2] for i in range(12)}
    split = split_actors(actors, counts=(6, 2, 4))
    assert [Counter(actors[a] for a in split[n]) for n in ("train", "dev", "test")] == [
        {"M": 3, "F": 3},
        {"M": 1, "F": 1},
        {"M": 2, "F": 2},
    ]
    with pytest.raises(ValueError, match="summing to the 12 actors"):
        split_actors(actors, counts=(6, 2, 5))


def test_split_file_is_created_then_reused(tmp_path: Path, genders: dict[str, str]) -> None:
    path = tmp_path / "split.json"
    first = load_or_create_split(path, genders, seed=1)
    saved = json.loads(path.read_text())
    assert saved["counts"] == {"train": 56, "dev": 4, "test": 31} and saved["test"] == first["test"]
    saved["test"], saved["train"] = saved["train"][:31], saved["test"] + saved["train"][31:]
    path.write_text(json.dumps(saved))  # a hand-edited split is what later runs must see
    assert load_or_create_split(path, genders, seed=1)["test"] == saved["test"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_split_file_of_another_actor_set_is_an_error(tmp_path: Path, genders: dict[str, str]) -> None:
    path = tmp_path / "split.json"
    load_or_create_split(path, genders)
    fewer = dict(list(genders.items())[:-1])
    with pytest.raises(ValueError, match="different actor set.*Delete the file"):
        load_or_create_split(path, fewer, counts=(55, 4, 31))
    with pytest.raises(ValueError, match="seed 0.*asked for seed 5"):
        load_or_create_split(path, genders, seed=5)


def test_garbled_split_file_is_an_error(tmp_path: Path, genders: dict[str, str]) -> None:
    path = tmp_path / "split.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="split.json: not a fedfer split file"):
        load_or_create_split(path, genders)
