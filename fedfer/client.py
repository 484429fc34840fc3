"""A subject's side of the federation, without Flower: personalize v() and measure it locally.

The client holds its clips' features, the frozen g() and its own personalized v() on its disk.
What it hands back for sending is v()'s state and counts; everything about individual videos
(features, pseudo labels, predictions) stays in this object and on the subject's disk.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fedfer.checkpoint import HeadCard, load_head, save_head
from fedfer.config import PersonalizeConfig
from fedfer.evaluation import confusion
from fedfer.exchange import load_v_state, v_state
from fedfer.io import atomic_write_bytes, atomic_write_json
from fedfer.models import VFERHead
from fedfer.personalize import personalize
from fedfer.subject import SubjectData, load_subject

PERSONAL_DIR = "personal"


class SubjectClient:
    """One subject: data from `subject_dir`, g() from `ifer_checkpoint`, personal v() under `subject_dir/personal/`."""

    def __init__(self, subject_dir: Path, ifer_checkpoint: Path, config: PersonalizeConfig) -> None:
        self.dir = Path(subject_dir)
        self.data: SubjectData = load_subject(self.dir)
        self.g, self.g_card = load_head(Path(ifer_checkpoint), stage="ifer", classes=self.data.classes)
        self.config = config
        self.personal_path = self.dir / PERSONAL_DIR / "v.pt"

    def new_v(self, state: dict[str, Tensor]) -> VFERHead:
        return load_v_state(VFERHead(len(self.data.classes)), state).eval()

    def personalize_round(self, global_state: dict[str, Tensor], server_round: int, seed: int) -> tuple[dict[str, Tensor], int, float]:
        """Fine-tune the received v() on pseudo labels; keep it as this subject's model; return its state.

        Returns (v state, number of selected videos, last epoch's training loss).
        """
        v = self.new_v(global_state)
        result = personalize(v, self.g, self.data.features, replace(self.config, seed=seed))
        save_head(self.personal_path, v, HeadCard(stage="vfer", classes=self.data.classes, backbone_id=self.g_card.backbone_id))
        buffer = io.BytesIO()
        np.savez(buffer, indices=result.pseudo.indices, labels=result.pseudo.labels, confidence=result.pseudo.confidence)
        atomic_write_bytes(self.personal_path.with_name("pseudo.npz"), buffer.getvalue())
        atomic_write_json(
            self.personal_path.with_name("personal.json"),
            {"subject": self.data.subject, "round": server_round, "selected": result.num_selected, "per_class": result.pseudo.per_class(len(self.data.classes)).tolist(), "train_loss": result.train_loss},
        )
        return v_state(v), result.num_selected, (result.train_loss[-1] if result.train_loss else float("nan"))

    def evaluate(self, global_state: dict[str, Tensor]) -> dict[str, np.ndarray | int]:
        """Confusion matrices (K×K, true × predicted) on the subject's labelled clips.

        'global': the received central v(); 'personal': this subject's personalized v() (the central
        one if it has not personalized yet); 'pseudo': pseudo label vs truth on the selected clips.
        Only these counts leave the client, and only in studies where the subject has labels.
        """
        k = len(self.data.classes)
        idx = self.data.labelled
        truth = self.data.labels[idx]
        clips = [self.data.features[i] for i in idx]
        central = self.new_v(global_state)
        personal = load_head(self.personal_path, stage="vfer", classes=self.data.classes)[0] if self.personal_path.exists() else central
        pseudo_cm = np.zeros((k, k), dtype=np.int64)
        pseudo_file = self.personal_path.with_name("pseudo.npz")
        if pseudo_file.exists():
            with np.load(pseudo_file) as p:
                known = self.data.labels[p["indices"]] >= 0
                np.add.at(pseudo_cm, (self.data.labels[p["indices"]][known], p["labels"][known]), 1)
        return {
            "num-labelled": len(idx),
            "global": confusion(central, clips, truth, k),
            "personal": confusion(personal, clips, truth, k),
            "pseudo": pseudo_cm,
        }


def read_subjects_file(path: Path) -> list[Path]:
    """The subject directories of a run, in partition-id order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"subjects file {path} not found: `fedfer run` writes it; check the run-dir / subjects-file setting")
    return [Path(p) for p in json.loads(path.read_text())]


def threads_for_client() -> None:
    """Simulated clients share the machine's cores: one thread each, or they fight over them."""
    torch.set_num_threads(1)
