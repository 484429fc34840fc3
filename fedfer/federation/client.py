"""A subject's side of the federation, without Flower: personalize v() and measure it locally.

The client holds its clips' features, the frozen g() and its own personalized v() on its disk.
What it hands back for sending is v()'s state and counts; everything about individual videos
(features, pseudo labels, predictions) stays in this object and on the subject's disk.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fedfer.config import DEFAULT_BATCHNORM, PIXEL_TEACHER
from fedfer.data.store import npz_bytes
from fedfer.data.subject import SubjectData, load_subject, personal_checkpoint
from fedfer.federation.protocol import load_v_state, v_state
from fedfer.io import atomic_write_bytes, atomic_write_json
from fedfer.model.checkpoint import HeadCard, load_head, save_head
from fedfer.model.heads import VFERHead
from fedfer.model.inference import confusion
from fedfer.model.personalize import personalize
from fedfer.model.teacher_shift import teacher_clip_probabilities
from fedfer.runconfig import PersonalizeConfig

log = logging.getLogger(__name__)


class SubjectClient:
    """One subject: data from `subject_dir`, g() from `ifer_checkpoint`, personal v() under `subject_dir/personal/`.

    `run_id` tags what personalization writes there: the personal v() of another run (a lab node
    kept between runs, a results folder reused) is never evaluated as this run's. `batchnorm_style`
    is v()'s BatchNorm convention (the run's; see `fedfer.model.heads.BATCHNORM`). With `teacher`
    = the pixel teacher (`fedfer.config.PIXEL_TEACHER`), pseudo labels come from that model on the
    subject's own videos and `ifer_checkpoint` is unused. `protocol` (`fedfer.config.PROTOCOLS`):
    held-out adapts on one half of the clips and scores on the other, drawn from `config.seed`.
    """

    def __init__(
        self,
        subject_dir: Path | str,
        ifer_checkpoint: Path | str,
        config: PersonalizeConfig,
        run_id: int = 0,
        batchnorm_style: str = DEFAULT_BATCHNORM,
        teacher: str = "",
        protocol: str = "transductive",
    ) -> None:
        self.dir = Path(subject_dir)
        self.data: SubjectData = load_subject(self.dir)
        self.ifer_checkpoint = Path(ifer_checkpoint)
        self.config = config
        self.run_id = run_id
        self.batchnorm_style = batchnorm_style
        self.teacher = teacher
        self.personal_path = personal_checkpoint(self.dir)
        self.adapt, self.scored = self.data.halves(protocol, config.seed)  # clip positions

    @functools.cached_property
    def ifer(self) -> tuple[nn.Module, HeadCard]:
        """The frozen g() and its card, loaded only by the messages that pseudo-label (training, not evaluation)."""
        return load_head(
            self.ifer_checkpoint, stage="ifer", classes=self.data.classes, backbone_id=self.data.backbone_id or None
        )

    def teacher_probabilities(self) -> np.ndarray:
        """(N_adapt, K) the teacher's mean class probabilities over each adaptation clip's frames (the rule)."""
        if self.teacher == PIXEL_TEACHER:
            from fedfer.data.fer2013 import video_probabilities

            videos = self.data.videos()
            return video_probabilities([videos[i] for i in self.adapt], self.data.classes)
        g, _ = self.ifer
        return teacher_clip_probabilities(g, [self.data.features[i] for i in self.adapt], self.config.teacher_shift)

    def new_v(self, state: dict[str, Tensor]) -> VFERHead:
        return load_v_state(VFERHead(len(self.data.classes), batchnorm_style=self.batchnorm_style), state).eval()

    def personalize_round(
        self, global_state: dict[str, Tensor], server_round: int, seed: int
    ) -> tuple[dict[str, Tensor], int, float]:
        """Fine-tune the received v() on pseudo labels; keep it as this subject's model; return its state.

        Returns (v state, number of selected videos, last epoch's training loss).
        """
        v = self.new_v(global_state)
        probabilities = self.teacher_probabilities()
        clips = [self.data.features[i] for i in self.adapt]
        own = self.data.labels[self.adapt] if self.config.labels_from != "teacher" else None  # never sent
        result = personalize(v, probabilities, clips, replace(self.config, seed=seed), own)
        if result.num_selected == 0:
            log.warning(
                "subject %s: no video reached p-threshold %.2f (highest mean probability %.2f): its v() stays the "
                "received one; lower p-threshold (--p-threshold) to personalize it",
                self.data.subject,
                self.config.p_threshold,
                float(probabilities.max()) if probabilities.size else 0.0,
            )
        save_head(
            self.personal_path,
            v,
            HeadCard(stage="vfer", classes=self.data.classes, backbone_id=self.data.backbone_id),
        )
        pseudo = npz_bytes(  # indices are positions among all of the subject's clips
            indices=self.adapt[result.pseudo.indices], labels=result.pseudo.labels, confidence=result.pseudo.confidence
        )
        atomic_write_bytes(self.personal_path.with_name("pseudo.npz"), pseudo)
        atomic_write_json(
            self.personal_path.with_name("personal.json"),
            {
                "subject": self.data.subject,
                "run": self.run_id,
                "round": server_round,
                "selected": result.num_selected,
                "per_class": result.pseudo.per_class(len(self.data.classes)).tolist(),
                "train_loss": result.train_loss,
            },
        )
        return v_state(v), result.num_selected, (result.train_loss[-1] if result.train_loss else float("nan"))

    def _personalized_in_this_run(self) -> bool:
        record = self.personal_path.with_name("personal.json")
        return (
            self.personal_path.exists() and record.exists() and json.loads(record.read_text()).get("run") == self.run_id
        )

    def evaluate(self, global_state: dict[str, Tensor]) -> dict[str, np.ndarray | int]:
        """Confusion matrices (K×K, true × predicted) on the subject's scored clips (its labelled clips,
        those of the held-out half under the held-out protocol).

        'personal': this subject's personalized v() of this run (the received central v() if it has
        not personalized yet); 'pseudo': pseudo label vs truth on the selected clips. Only these
        counts leave the client, and only in studies where the subject has labels. (The central v()
        itself is scored by the server.)
        """
        k = len(self.data.classes)
        idx = self.scored
        truth = self.data.labels[idx]
        clips = [self.data.features[i] for i in idx]
        pseudo_cm = np.zeros((k, k), dtype=np.int64)
        if self._personalized_in_this_run():
            personal = load_head(self.personal_path, stage="vfer", classes=self.data.classes)[0]
            with np.load(self.personal_path.with_name("pseudo.npz")) as p:
                true_of_selected = self.data.labels[p["indices"]]
                known = true_of_selected >= 0
                if known.any():  # scikit-learn refuses an empty selection
                    from sklearn.metrics import confusion_matrix  # 0.8 s to import: only label-counting runs pay it

                    pseudo_cm = confusion_matrix(
                        true_of_selected[known], p["labels"][known], labels=list(range(k))
                    ).astype(np.int64)
        else:
            personal = self.new_v(global_state)
        return {"num-labelled": len(idx), "personal": confusion(personal, clips, truth, k), "pseudo": pseudo_cm}


def threads_for_client() -> None:
    """Simulated clients share the machine's cores: one thread each, or they fight over them."""
    torch.set_num_threads(1)
