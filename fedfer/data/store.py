"""The frozen-feature store: one `<clip_id>.npz` per clip, holding `features` (T, 1280) float16 and
a JSON `meta` record (see `fedfer.data.extract` for what the meta carries and how it is fingerprinted).

Reading features needs only numpy: a client that holds cached features never imports torch's vision
stack or OpenCV to load them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fedfer.io import atomic_write_bytes


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """The bytes of an .npz holding `arrays`, for an atomic write."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class FeatureStore:
    """A folder of `<clip_id>.npz` feature files (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, clip_id: str) -> Path:
        return self.root / f"{clip_id}.npz"

    def clip_ids(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.npz") if not p.name.startswith("."))

    def load(self, clip_id: str) -> np.ndarray:
        """(T, 1280) float16 features of one clip."""
        with np.load(self._existing(clip_id)) as data:
            return data["features"]

    def meta(self, clip_id: str) -> dict[str, Any]:
        with np.load(self._existing(clip_id)) as data:
            return json.loads(str(data["meta"]))

    def save(self, clip_id: str, features: np.ndarray, meta: dict[str, Any]) -> None:
        """Write atomically: an interrupted run leaves either the old file or the complete new one."""
        atomic_write_bytes(self.path(clip_id), npz_bytes(features=features, meta=np.array(json.dumps(meta))))

    def cached_meta(self, clip_id: str) -> dict[str, Any] | None:
        """The stored clip's meta; None when absent or unreadable (then it is recomputed)."""
        try:
            return self.meta(clip_id)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None

    def _existing(self, clip_id: str) -> Path:
        path = self.path(clip_id)
        if not path.is_file():
            raise FileNotFoundError(
                f"no features for clip {clip_id!r} in {self.root} (run `fedfer features` on its videos)"
            )
        return path
