"""One round of the federated contrastive adaptation of f() (`adapt-f-rounds`, seed 003), both sides.

Before the paper's federation, the run can adapt f()'s last blocks to the subjects' faces: each round
the server sends the blocks and SimCLR's projection head, each subject trains them on a few face crops
of each of its own videos (`fedfer.model.contrastive`), and FedAvg, weighted by crops, averages what
comes back. After every round the server writes the adapted f() as a weights file
(`RunDir.adapted_f`); `fedfer run` then re-extracts the features and trains and federates on it. Face
crops never leave the device: they are cached in the subject's own folder.
Knows nothing of Flower: the apps call these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from fedfer.config import FeatureConfig
from fedfer.data.backbone import Backbone, load_frame_encoder, save_backbone
from fedfer.data.store import npz_bytes
from fedfer.data.subject import read_manifest, videos_by_clip
from fedfer.io import atomic_write_bytes, digest
from fedfer.model.contrastive import AdaptableEncoder, ContrastiveConfig, adapt_locally, adapted_backbone
from fedfer.runconfig import AdaptConfig
from fedfer.rundir import RunDir

FACE_FRAMES_DIR = "face_frames"  # in the subject's folder, on its device; kept across runs (personal/ is not)


def contrastive_config(adapt: AdaptConfig, seed: int = 0) -> ContrastiveConfig:
    return ContrastiveConfig(blocks=adapt.blocks, epochs=adapt.epochs, seed=seed)


def device_face_frames(subject_dir: Path, per_clip: int) -> tuple[np.ndarray, str]:
    """The subject's face crops to adapt on, (N, S, S, 3) uint8, and the f() weights its features come from:
    decoded from its own videos once, then read from its device's cache (`face_frames/<settings>.npz` in its folder)."""
    from fedfer.data.face_cubes import face_frames
    from fedfer.data.faces import CropSettings

    manifest = read_manifest(subject_dir)
    if "video_dir" not in manifest:
        raise FileNotFoundError(
            f"subject {manifest['subject']} ({subject_dir}) holds features only: adapting f() needs its videos "
            "(`fedfer run --adapt-f-rounds N` writes subjects that hold them)"
        )
    clip_ids = [c["clip_id"] for c in manifest["clips"]]
    found = videos_by_clip(Path(manifest["video_dir"]), clip_ids)
    if not found:
        raise FileNotFoundError(f"no video of subject {manifest['subject']} in {manifest['video_dir']}")
    features = FeatureConfig(**manifest["feature_config"])
    crop = CropSettings(margin=features.margin, image_size=features.image_size, frame_step=features.frame_step)
    # the crops depend on the videos, the detector and the crop, not on which f() will read them
    detection = {"detector": features.detector, "min_confidence": features.min_confidence}
    key = digest({"per_clip": per_clip, "clips": sorted(found), **asdict(crop), **detection}, 12)
    cache = Path(subject_dir) / FACE_FRAMES_DIR / f"{key}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return data["crops"], features.weights
    crops = face_frames([found[c] for c in sorted(found)], crop, per_clip, features.detector, features.min_confidence)
    atomic_write_bytes(cache, npz_bytes(crops=crops))
    return crops, features.weights


def adapt_round(
    subject_dir: Path, global_state: dict[str, Tensor], adapt: AdaptConfig, seed: int
) -> tuple[dict[str, Tensor], int, float]:
    """A subject's round: (adapted blocks and head, face crops trained on = FedAvg's weight, mean NT-Xent loss)."""
    crops, weights = device_face_frames(subject_dir, adapt.frames_per_clip)
    config = contrastive_config(adapt, seed)
    encoder = AdaptableEncoder(load_frame_encoder(weights), config)
    encoder.load_shared_state(global_state)
    loss = adapt_locally(encoder, crops, config)
    return encoder.shared_state(), len(crops), loss


@dataclass
class AdaptRounds:
    """The server's side: the blocks it starts from, and the adapted f() it writes after each round."""

    run: RunDir
    backbone: Backbone
    encoder: AdaptableEncoder

    @classmethod
    def load(cls, weights: str, adapt: AdaptConfig, run: RunDir) -> AdaptRounds:
        backbone = load_frame_encoder(weights)
        return cls(run, backbone, AdaptableEncoder(backbone, contrastive_config(adapt)))

    @property
    def initial_state(self) -> dict[str, Tensor]:
        return self.encoder.shared_state()

    def after_round(self, server_round: int, state: dict[str, Tensor]) -> None:
        """Write f() with the averaged blocks (round 0, before any training, writes nothing)."""
        if server_round == 0:
            return
        self.encoder.load_shared_state(state)
        source = f"{self.backbone.backbone_id} adapted by {server_round} federated contrastive rounds"
        save_backbone(adapted_backbone(self.backbone, self.encoder), self.run.adapted_f, source)
