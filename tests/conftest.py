"""Test-wide environment: every cache, Flower home and telemetry switch points inside the repo or tmp."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Model files (face detector, offline backbone) are fetched once into the repo-local, git-ignored
# .fedfer/ and reused by later test runs; set FEDFER_HOME to share a cache between checkouts.
os.environ.setdefault("FEDFER_HOME", str(REPO / ".fedfer"))
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
