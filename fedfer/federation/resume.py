"""Where an interrupted federation can go on from: the last round whose record and central v() both
reached the disk.

The server writes a round's entry in `rounds.json` and then checkpoints the central v() after it
(both atomically); a round counts as completed only when both are there. A resumed run starts from
that checkpoint, numbers its rounds on from it and keeps the earlier rounds' log entries.
"""

from __future__ import annotations

import json

from fedfer.rundir import RunDir


def recorded_rounds(run: RunDir) -> list[dict]:
    """The entries of the run's `rounds.json`, or none when the federation never finished a round."""
    if not run.rounds.is_file():
        return []
    try:
        return json.loads(run.rounds.read_text())
    except ValueError as err:
        raise ValueError(f"{run.rounds} is not valid JSON ({err}): delete it to run the federation anew") from err


def last_completed_round(run: RunDir) -> int:
    """The last round recorded in full (log entry and central checkpoint), 0 when there is none."""
    done = [
        r["round"] for r in recorded_rounds(run) if "stopped" not in r and run.central_checkpoint(r["round"]).is_file()
    ]
    return max(done, default=0)


def earlier_rounds(run: RunDir, resume_round: int) -> list[dict]:
    """The log entries a run resumed after `resume_round` keeps (none for a new run)."""
    return [r for r in recorded_rounds(run) if r["round"] <= resume_round] if resume_round else []


def stop_reason(run: RunDir) -> str | None:
    """Why the server stopped the federation early (too few useful replies), if it did."""
    return next((r["stopped"] for r in recorded_rounds(run) if "stopped" in r), None)
