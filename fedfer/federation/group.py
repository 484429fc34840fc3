"""A simulated node that serves many crowd subjects: each personalizes on its own, the node replies once.

Cross-device simulators group subjects per simulated node so that the runtime's per-message cost
is paid once per group, not once per subject. The node returns the weighted partial average of its
subjects' v() states with their summed weight; FedAvg over such replies, weighted by that sum, is
exactly FedAvg over one reply per subject (Σ_nodes W_n · (Σ_i w_i s_i / W_n) / Σ W_n = Σ w_i s_i / Σ w_i).
Every subject still does the method's work: pseudo labels from g(), top-P selection, 2 local epochs.
Nothing of a subject outlives its turn: its features are drawn, used and dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from fedfer.federation.protocol import load_v_state, v_state
from fedfer.model.heads import VFERHead
from fedfer.model.personalize import personalize
from fedfer.model.teacher_shift import teacher_clip_probabilities
from fedfer.runconfig import PersonalizeConfig
from fedfer.synth.crowd import CrowdModel


@dataclass(frozen=True)
class GroupResult:
    state: dict[str, Tensor]  # the weighted partial average (the received state when no subject selected a video)
    weight: int  # Σ selected videos over the group's subjects: this reply's FedAvg weight
    subjects: int
    mean_loss: float  # mean over subjects that trained of their last epoch's loss (nan if none did)


def train_crowd_group(
    global_state: dict[str, Tensor],
    indices: Iterable[int],
    crowd: CrowdModel,
    crowd_seed: int,
    g: nn.Module,
    config: PersonalizeConfig,
    batchnorm: str,
) -> GroupResult:
    """Personalize v() for each crowd subject in `indices` from `global_state`; return their partial average.

    Subject i trains with seed `config.seed + i`, as the node serving it alone would (partition i)."""
    k = len(crowd.classes)
    total: dict[str, Tensor] = {}  # Σ w_i · state_i in float64, accumulated so only one state is held
    weight, subjects, losses = 0, 0, []
    for index in indices:
        data = crowd.subject(crowd_seed, index)
        v = load_v_state(VFERHead(k, batchnorm_style=batchnorm), global_state)
        result = personalize(
            v,
            teacher_clip_probabilities(g, data.features, config.teacher_shift),
            data.features,
            replace(config, seed=config.seed + index),
        )
        subjects += 1
        if result.num_selected == 0:
            continue
        losses.append(result.train_loss[-1])
        weight += result.num_selected
        for key, tensor in v_state(v).items():
            term = tensor.to(torch.float64) * result.num_selected
            total[key] = total[key] + term if key in total else term
    if weight == 0:
        return GroupResult(dict(global_state), 0, subjects, float("nan"))
    state = {key: (t / weight).to(torch.float32) for key, t in total.items()}
    return GroupResult(state, weight, subjects, sum(losses) / len(losses))
