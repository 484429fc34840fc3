"""The layout of one run's folder, `results/<run>/`: the single place that names its files.

Everything that writes or reads a run — `fedfer run`/`deploy`, the ServerApp, the report, the
studies and the tests — asks this class for the path, so the layout can change in one place.
Standard library only: the apps and the report import it without pulling in any stage.

    subjects.json            subject directories, in partition-id order
    subjects/<id>/           one subject's manifest and, after training, its personal/ model
    options.json             what `fedfer run` was told (RunOptions) and the checkpoints it used
    run_config.toml          the run-config overrides handed to `flwr run`
    crowd_model.npz          a crowd run's model of subjects (scale studies)
    server/rounds.json       bytes, seconds and client replies per round (the strategy's log)
    server/adapt_rounds.json  the rounds adapting f() first (adapt-f-rounds), logged as rounds.json's
    server/adapted_f.pt      f() with its adapted blocks: a weights file (--weights) the run's features come from
    server/central_round_<r>.json, server/v_round_<r>.pt   the central v() after round r (0 = before)
    logs/                    Flower's log and every process' log
    flwr-home/               the run's own FLWR_HOME (connections, app cache, SuperLink state)
    credentials/             the deployment's CA, certificates and node keys
    summary.json, report.md, subject_gains.png, confusion_<model>.png   the report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run folder; nothing is created until a caller writes."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def subjects_file(self) -> Path:
        return self.root / "subjects.json"

    @property
    def subjects_dir(self) -> Path:
        return self.root / "subjects"

    def subject(self, subject_id: str) -> Path:
        return self.subjects_dir / subject_id

    @property
    def options_file(self) -> Path:
        return self.root / "options.json"

    @property
    def run_config(self) -> Path:
        return self.root / "run_config.toml"

    @property
    def crowd_model(self) -> Path:
        """A crowd run's model of subjects (scale studies; `fedfer.synth.crowd`)."""
        return self.root / "crowd_model.npz"

    @property
    def server(self) -> Path:
        return self.root / "server"

    @property
    def rounds(self) -> Path:
        return self.server / "rounds.json"

    @property
    def adapt_rounds(self) -> Path:
        return self.server / "adapt_rounds.json"

    @property
    def adapted_f(self) -> Path:
        """f() after the federated contrastive rounds: a weights record every `--weights` takes."""
        return self.server / "adapted_f.pt"

    def central_eval(self, server_round: int) -> Path:
        return self.server / f"central_round_{server_round}.json"

    def central_checkpoint(self, server_round: int) -> Path:
        return self.server / f"v_round_{server_round}.pt"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def flower_log(self) -> Path:
        return self.logs / "flower.log"

    @property
    def flwr_home(self) -> Path:
        return self.root / "flwr-home"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def gains_plot(self) -> Path:
        return self.root / "subject_gains.png"

    def confusion_plot(self, model: str) -> Path:
        return self.root / f"confusion_{model}.png"
