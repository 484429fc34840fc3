"""The server's side of a run, without Flower's app object: the central v() it starts from and what
happens after each round (checkpoint, score on the labelled subjects). The report at the end is
written by the ServerApp (`fedfer.runs.report`), from what the rounds recorded."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from flwr.app import ArrayRecord, MetricRecord
from torch import Tensor

from fedfer.data.subject import SubjectData, load_subject, read_subjects_file
from fedfer.federation.payload import extra_state, split_payload
from fedfer.federation.protocol import MACRO_F1, MICRO_F1, load_v_state, v_state
from fedfer.io import atomic_write_json
from fedfer.model.checkpoint import HeadCard, load_head, save_head
from fedfer.model.heads import VFERHead
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir

log = logging.getLogger(__name__)


@dataclass
class CentralRounds:
    """The central v() across rounds: checkpointed after every round, scored where subjects have labels."""

    run: RunDir
    card: HeadCard
    initial_state: dict[str, Tensor]  # what the first round sends: v() and the payload's extras (g(), f())
    subjects: list[SubjectData]  # labelled subjects the server scores the central v() on (studies only)
    protocol: str = "transductive"  # which of a subject's clips are scored (fedfer.data.splits.protocol_positions)
    seed: int = 0  # the run's seed, which draws the held-out halves

    @classmethod
    def load(cls, config: FederationConfig, run: RunDir) -> CentralRounds:
        central, card = load_head(config.central_checkpoint, stage="vfer")
        if card.batchnorm != config.batchnorm:
            raise ValueError(
                f"{config.central_checkpoint} has '{card.batchnorm}' BatchNorm but the run config says "
                f"batchnorm = '{config.batchnorm}': set it to '{card.batchnorm}' (clients build v() from it)"
            )
        subjects = labelled_subjects(read_subjects_file(config.subjects_file)) if config.central_eval else []
        extras = extra_state(config.payload, config.ifer_checkpoint, feature_weights(run))
        state = {**v_state(central), **extras}
        return cls(run, card, state, subjects, config.protocol, config.personalize.seed)

    @property
    def v_keys(self) -> list[str]:
        """Every array a reply must carry: v()'s, plus g()'s and f()'s in the wider payloads."""
        return list(self.initial_state)

    def state_after(self, server_round: int) -> dict[str, Tensor]:
        """The central v() after `server_round` (its checkpoint; 0 = the central model): where a resumed run starts."""
        if server_round == 0:
            return self.initial_state
        v, card = load_head(self.run.central_checkpoint(server_round), stage="vfer", classes=self.card.classes)
        if card.batchnorm != self.card.batchnorm:
            raise ValueError(
                f"{self.run.central_checkpoint(server_round)} has '{card.batchnorm}' BatchNorm, the run "
                f"'{self.card.batchnorm}': resume with the settings of the interrupted run"
            )
        return v_state(v)

    def after_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's `evaluate_fn`: round 0 is the central model before any training."""
        from fedfer.evaluation.scoring import evaluate_subjects

        v = VFERHead(len(self.card.classes), batchnorm_style=self.card.batchnorm)
        v = load_v_state(v, split_payload(arrays.to_torch_state_dict())[0]).eval()
        card = HeadCard(
            stage="vfer", classes=self.card.classes, backbone_id=self.card.backbone_id, config={"round": server_round}
        )
        save_head(self.run.central_checkpoint(server_round), v, card)
        if not self.subjects:
            return None
        result = evaluate_subjects(v, self.subjects, self.protocol, self.seed)
        atomic_write_json(self.run.central_eval(server_round), result)
        return MetricRecord({MACRO_F1: result["overall"]["macro_f1"], MICRO_F1: result["overall"]["micro_f1"]})


def feature_weights(run: RunDir) -> str:
    """f()'s weights as the run's options name them; "offline" for a run prepared without them (tests)."""
    if not run.options_file.is_file():
        return "offline"
    return json.loads(run.options_file.read_text())["features"]["weights"]


def labelled_subjects(directories: list[Path]) -> list[SubjectData]:
    """The subjects the server can score the central v() on; one it cannot read is left out with a
    warning (the study loses a row, the federation goes on: that subject's client fails on its own)."""
    subjects = []
    for directory in directories:
        try:
            subjects.append(load_subject(directory))
        except (OSError, ValueError) as err:
            log.warning("central evaluation leaves out %s: %s", directory, err)
    return subjects
