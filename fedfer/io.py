"""Small file helpers shared by every stage: atomic writes and validated CSV tables.

Results, splits and caches are written atomically (a temporary file in the same directory, then
`os.replace`) so an interrupted run never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so readers see either the old file or the complete new one.

    Parent directories are created. The temporary file sits beside the target because `os.replace`
    is only atomic within one file system.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """`atomic_write_bytes` for text."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """`atomic_write_bytes` for JSON (UTF-8, trailing newline, keys in insertion order)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n")


def read_csv(path: str | Path, columns: Sequence[str], remedy: str = "") -> list[dict[str, str]]:
    """Rows of a CSV file with a header, checked to hold at least `columns`.

    Corpus label files are edited, converted and re-exported by hand; checking the header up front
    turns a silently shifted or truncated table into one clear error naming the file, the missing
    columns and `remedy` (how to obtain a good copy).
    """
    path = Path(path)
    expected = ", ".join(repr(c) for c in columns)
    hint = f" {remedy}" if remedy else ""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found; expected a CSV with columns {expected}.{hint}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: not the expected table: missing columns {', '.join(repr(c) for c in missing)} "
                    f"(header read: {header[:10]}); expected columns {expected}.{hint}"
                )
            rows = list(reader)
        except (csv.Error, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: unreadable CSV ({err}); expected columns {expected}.{hint}") from err
    short = [i for i, row in enumerate(rows) if any(row.get(c) is None for c in columns)]
    if short:
        raise ValueError(
            f"{path}: {len(short)} rows have fewer fields than the header (first at data row {short[0] + 1}); "
            f"the file looks truncated or garbled.{hint}"
        )
    return rows


def digest(obj: Any, length: int) -> str:
    """The first `length` hex digits of the sha256 of `obj` as sorted-key JSON: a stable name for a
    configuration (cache folders, feature fingerprints)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
