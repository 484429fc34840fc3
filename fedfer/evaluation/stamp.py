"""Where a published figure came from: commit, date, machine, load, and the settings that matter.

Every result file a study writes carries one (`stamp(...)`), and the docs print it under each table,
so a reader can tell a figure measured on a busy 2-core machine from one on a quiet 16-core one, and
which world version and settings produced it.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from fedfer import __version__

REPO = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checkout's commit (with "+dirty" when files differ from it), or "unknown" outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def stamp(**settings: Any) -> dict[str, Any]:
    """The stamp of a result computed now, with `settings` (image size, BatchNorm, teacher...)."""
    from fedfer.synth.presets import WORLD_VERSION

    return {
        "commit": commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {cpu_model()}",
        "load": round(os.getloadavg()[0], 1),
        "fedfer": __version__,
        "world_version": WORLD_VERSION,
        "settings": settings,
    }


def stamp_line(s: dict[str, Any]) -> str:
    """One Markdown line for a stamp, printed under the table it belongs to."""
    settings = ", ".join(f"{k} {v}" for k, v in s.get("settings", {}).items())
    return (
        f"<sub>commit {s['commit']} · {s['date']} · {s['machine']} · load {s['load']} · world v{s['world_version']}"
        + (f" · {settings}" if settings else "")
        + "</sub>"
    )
