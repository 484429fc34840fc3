"""What travels each round: v() only (the method), or also g() and f() (the alternatives it avoids).

The wider scopes exist to measure what the paper argues against: sending the whole network instead
of v(). g() and f() really travel both ways under their prefixes (`G_PREFIX`, `F_PREFIX`) and are
averaged like v(), but the clients do **not** train them: a client personalizes v() and returns g()
and f() as it received them (after its uplink codec). So a wider scope changes the bytes and the
seconds, never the accuracy, by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from fedfer.config import PAYLOADS
from fedfer.federation.protocol import F_PREFIX, G_PREFIX, LOCAL_ONLY_SUFFIX


def module_state(module: nn.Module, prefix: str) -> dict[str, Tensor]:
    """A module's averaged tensors (counters stay home, as for v()), named with `prefix`."""
    return {
        prefix + k: t.detach().float().clone()
        for k, t in module.state_dict().items()
        if not k.endswith(LOCAL_ONLY_SUFFIX)
    }


def extra_state(payload: str, ifer_checkpoint: str | Path, weights: str) -> dict[str, Tensor]:
    """g()'s (and f()'s) tensors that a `payload` scope sends besides v(); empty for "v".

    `ifer_checkpoint` is the run's g(); `weights` names f() as `fedfer.data.backbone` does.
    """
    if payload not in PAYLOADS:
        raise ValueError(f"payload {payload!r} is not one of {', '.join(PAYLOADS)}")
    if payload == "v":
        return {}
    if not ifer_checkpoint:
        raise ValueError(
            f"payload {payload!r} sends g(), but this run has no g() checkpoint (pixel teacher): use payload 'v'"
        )
    from fedfer.data.backbone import load_frame_encoder
    from fedfer.model.checkpoint import load_head

    g, _ = load_head(Path(ifer_checkpoint), stage="ifer")
    state = module_state(g, G_PREFIX)
    if payload == "f+g+v":
        state.update(module_state(load_frame_encoder(weights).encoder, F_PREFIX))
    return state


def split_payload(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(v()'s tensors, everything else) of a received payload."""
    extras = {k: t for k, t in state.items() if k.startswith((G_PREFIX, F_PREFIX))}
    return {k: t for k, t in state.items() if k not in extras}, extras
