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

from fedfer.synth.presets import PRESETS, WorldPreset, get_preset
from fedfer.synth.world import CORPORA, MANIFEST, read_manifest, render_world

__all__ = ["CORPORA", "MANIFEST", "PRESETS", "WorldPreset", "get_preset", "read_manifest", "render_world"]
