"""A personalized model for devices: ONNX graphs, a JSON card, and the ONNX Runtime engine that runs them.

    fv_step.onnx  f() + one v() step: (face uint8 (1, S, S, 3) RGB, h (1, 64), c (1, 64))
                  → (probabilities (1, K), h, c, features (1, 1280)); normalisation is inside the graph
    g.onnx        g(): features (N, 1280) → probabilities (N, K), the pseudo-labeller of personalization
    card.json     classes, input size, normalisation, face crop, backbone id, parameter counts

The face goes in as the uint8 crop a camera pipeline has at hand, so a device needs no copy of the
normalisation; it is still written in the card. `features` come out so a device can keep them for
its own unlabelled personalization (g() pseudo-labels them, v() is fine-tuned on them).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fedfer import __version__
from fedfer.config import FeatureConfig
from fedfer.data.encoder import FEATURE_DIM
from fedfer.data.faces import resolve_detector
from fedfer.graphs import onnx_bytes, ort_session
from fedfer.io import atomic_write_bytes, atomic_write_json
from fedfer.model.heads import count_parameters
from fedfer.predict.choice import LoadedModel
from fedfer.predict.pipeline import Engine, FaceToEmotion

FV_STEP_FILE = "fv_step.onnx"
G_FILE = "g.onnx"
CARD_FILE = "card.json"
FORMATS = ("onnx",)
FV_INPUTS = ("face", "h", "c")
FV_OUTPUTS = ("probabilities", "h_out", "c_out", "features")


class ExportError(ValueError):
    """An export folder that is missing, incomplete or of another format."""


class GProbabilities(nn.Module):
    """g() with its softmax: features (N, 1280) → probabilities (N, K)."""

    def __init__(self, g: nn.Module) -> None:
        super().__init__()
        self.g = g.eval()

    def forward(self, features: Tensor) -> Tensor:
        return torch.softmax(self.g(features), dim=-1)


def export_onnx(model: LoadedModel, out_dir: Path) -> dict[str, Any]:
    """Write fv_step.onnx, g.onnx (when `model.g` is loaded) and card.json into `out_dir`; returns the card."""
    out_dir = Path(out_dir)
    features = model.choice.features
    size = features.image_size
    fv = FaceToEmotion(model)
    h = torch.zeros(1, fv.v.state_size)
    face = torch.zeros(1, size, size, 3, dtype=torch.uint8)
    atomic_write_bytes(
        out_dir / FV_STEP_FILE, onnx_bytes(fv, (face, h, h.clone()), (list(FV_INPUTS), list(FV_OUTPUTS)))
    )
    k = len(model.classes)
    parameters = {
        "f": asdict(count_parameters("f", model.backbone.encoder, 0, trained_on_clients=False)),
        "v": asdict(count_parameters("v", model.v, k, trained_on_clients=True)),
    }
    if model.g is not None:
        batch = torch.export.Dim("batch", min=1)
        atomic_write_bytes(
            out_dir / G_FILE,
            onnx_bytes(
                GProbabilities(model.g),
                (torch.zeros(2, FEATURE_DIM),),
                (["features"], ["probabilities"]),
                dynamic={"features": {0: batch}},
            ),
        )
        parameters["g"] = asdict(count_parameters("g", model.g, k, trained_on_clients=False))
    detector = resolve_detector(features.detector, features.min_confidence)
    card = {
        "format": "onnx",
        "fedfer_version": __version__,
        "model": model.choice.description,
        "classes": list(model.classes),
        "files": {"fv_step": FV_STEP_FILE, "g": G_FILE if model.g is not None else None},
        "input": {
            "name": FV_INPUTS[0],
            "shape": [1, size, size, 3],
            "dtype": "uint8",
            "layout": "one RGB face crop, height × width × channel",
        },
        "face_crop": {
            "detector": detector.name,
            "detector_kind": detector.kind,
            "min_confidence": features.min_confidence,
            "margin": features.margin,
            "image_size": size,
            "frame_step": features.frame_step,
            "rule": "square of side max(w, h)·(1 + 2·margin) centred on the face box, resized to image_size",
        },
        "normalization": {
            "scale": 1 / 255,
            "mean": list(model.backbone.mean),
            "std": list(model.backbone.std),
            "formula": "(face · scale − mean) / std per RGB channel, applied inside fv_step.onnx",
        },
        "state": {"inputs": ["h", "c"], "outputs": ["h_out", "c_out"], "shape": [1, fv.v.state_size], "start": 0.0},
        "outputs": {
            "probabilities": "running class probabilities of the clip so far (1, K)",
            "features": f"f() features rounded to float16 precision (1, {FEATURE_DIM}), as v() and g() were trained",
        },
        "backbone_id": model.backbone.backbone_id,
        "weights_sha256": model.backbone.weights_sha256,
        "batchnorm": model.v_card.batchnorm,
        "parameters": parameters,
    }
    atomic_write_json(out_dir / CARD_FILE, card)
    return card


def read_card(directory: Path) -> dict[str, Any]:
    """The card of an export folder; ExportError naming the folder and the remedy when it is not one."""
    path = Path(directory) / CARD_FILE
    if not path.is_file():
        raise ExportError(f"{directory} holds no {CARD_FILE}: pass a folder written by `fedfer export --format onnx`")
    card = json.loads(path.read_text())
    if card.get("format") != "onnx" or not (Path(directory) / card["files"]["fv_step"]).is_file():
        raise ExportError(f"{directory} is not a complete ONNX export (see {path}); export it again")
    return card


class OnnxEngine(Engine):
    """fv_step.onnx in ONNX Runtime, the state carried between frames."""

    def __init__(self, directory: Path, threads: int = 1) -> None:
        card = read_card(directory)
        self.card = card
        self.session = ort_session(Path(directory) / card["files"]["fv_step"], threads)
        self.classes = tuple(card["classes"])
        crop = card["face_crop"]
        self.faces = FeatureConfig(
            image_size=crop["image_size"],
            margin=crop["margin"],
            detector=crop["detector_kind"],
            min_confidence=crop["min_confidence"],
            frame_step=crop["frame_step"],
        )
        self.state_size = card["state"]["shape"][1]
        self.reset()

    def _run(self, crop: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probabilities, h_out, c_out, _ = self.session.run(None, dict(zip(FV_INPUTS, (crop, h, c))))
        return probabilities, h_out, c_out
