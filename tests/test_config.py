"""Configuration in one place: the run config Flower carries and the dataclasses fedfer reads."""

import tomllib
from pathlib import Path

import pytest

from fedfer.config import FederationConfig


def test_run_config_round_trips_and_matches_pyproject() -> None:
    """The federation's settings live in one place: `[tool.flwr.app.config]` holds exactly the keys
    FederationConfig reads and writes, and a typo is an error rather than a silent default."""
    declared = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["tool"]["flwr"][
        "app"
    ]["config"]
    config = FederationConfig.from_run_config(declared)
    assert config == FederationConfig()  # pyproject's values are the dataclass defaults, not a second copy
    assert set(config.to_run_config()) == set(declared)
    assert FederationConfig.from_run_config(config.to_run_config()) == config
    with pytest.raises(ValueError, match="max-per-clas"):
        FederationConfig.from_run_config({**declared, "max-per-clas": 3})
