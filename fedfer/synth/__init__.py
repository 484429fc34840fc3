"""fedfer's synthetic world: CREMA-D-, AffectNet- and MSP-IMPROV-shaped corpora rendered from scratch.

Real corpora cannot be downloaded everywhere (and two need a licence), so fedfer renders its own,
in the real on-disk layouts, with the properties the method's claims depend on: expressions as
action units with onset/apex/offset dynamics, speech moving the mouth whatever the emotion, actor
styles that a population model is miscalibrated for, crowd labels that disagree like CREMA-D's,
and a domain shift between still images and videos. Entry point: `render_world`; sizes: `PRESETS`.

Module map: expression (AUs, prototypes, envelopes, speech) → actors (identity, style) → face
(drawing) → camera (framing, light, noise, motion) → takes (one performance as a plan) → render
(plans → files, in parallel) → raters (votes) → crema_d / affectnet / msp_improv (corpus writers)
→ world (orchestration, manifests); truth (the sidecar); presets (sizes); crowd (feature-level
subjects for scale studies, drawn from a model fitted to real or rendered ones).
"""

from importlib import import_module
from typing import Any

# Loaded on first use: a ClientApp imports `fedfer.synth.crowd` alone, and the renderer's modules need
# OpenCV, which a SuperNode's image does not carry.
_HOMES = {
    "PRESETS": "fedfer.synth.presets",
    "WorldPreset": "fedfer.synth.presets",
    "get_preset": "fedfer.synth.presets",
    "CORPORA": "fedfer.synth.world",
    "MANIFEST": "fedfer.synth.world",
    "read_manifest": "fedfer.synth.world",
    "render_world": "fedfer.synth.world",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'fedfer.synth' has no attribute {name!r}")
