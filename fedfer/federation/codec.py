"""How tensors are written into a message: float32, float16, or 8-bit per-tensor affine codes.

A codec trades bytes on the wire for rounding error in the weights. The decoded side is always
float32, and the server decodes every reply before averaging: Flower's FedAvg multiplies arrays in
their own dtype, so averaging float16 or 8-bit codes directly would lose precision or overflow.

Decoding reads each array's dtype, so a message describes itself: float16 arrays are widened,
uint8 arrays are mapped back through their row of the `INT8_AFFINE` array (offset, step), in the
sorted order of the coded names. 8-bit uses the tensor's own range, min to max in 255 steps, so the
rounding error of each value is at most half a step.

Packing (`pack-arrays`) sends the coded tensors of a message as one array instead of one per tensor:
Flower stores and moves each array as its own object, one request each, so v()'s 22 arrays cost 22
round trips per message in a deployment. The packed array is the tensors' codes concatenated in
sorted name order (the same bytes), and the message's config names them and their shapes
(`PACKED_NAMES`, `PACKED_SHAPES`), so a receiver unpacks it without knowing v() in advance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from torch import Tensor

from fedfer.config import CODECS
from fedfer.federation.protocol import INT8_AFFINE, PACKED, PACKED_NAMES, PACKED_SHAPES

INT8_LEVELS = 255  # uint8 codes 0..255


def check_codec(codec: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}: use one of {', '.join(CODECS)}")
    return codec


def encode(state: Mapping[str, Tensor], codec: str) -> dict[str, np.ndarray]:
    """Float tensors written with `codec`; the arrays to send, by name."""
    check_codec(codec)
    values = {k: t.detach().cpu().numpy().astype(np.float32) for k, t in state.items()}
    if codec == "float32":
        return values
    if codec == "float16":
        return {k: x.astype(np.float16) for k, x in values.items()}
    arrays: dict[str, np.ndarray] = {}
    affine = np.zeros((len(values), 2), dtype=np.float32)  # rows: (offset, step) per name, sorted
    for row, name in enumerate(sorted(values)):
        x = values[name]
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        step = (high - low) / INT8_LEVELS if high > low else 1.0
        arrays[name] = np.clip(np.rint((x - low) / step), 0, INT8_LEVELS).astype(np.uint8)
        affine[row] = (low, step)
    arrays[INT8_AFFINE] = affine
    return arrays


def decode(arrays: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """The float32 tensors an encoded message carries; a malformed 8-bit message is a ValueError."""
    coded = sorted(k for k, x in arrays.items() if x.dtype == np.uint8)
    affine = arrays.get(INT8_AFFINE)
    if coded and (affine is None or affine.shape != (len(coded), 2)):
        raise ValueError(
            f"{len(coded)} uint8 arrays but {INT8_AFFINE!r} is "
            f"{'missing' if affine is None else f'of shape {affine.shape}'}: the sender's 8-bit codec is "
            "incompatible with this fedfer"
        )
    rows = {name: i for i, name in enumerate(coded)}
    out = {}
    for name, x in arrays.items():
        if name == INT8_AFFINE:
            continue
        if x.dtype not in (np.float32, np.float16, np.uint8):
            raise ValueError(
                f"array {name} has dtype {x.dtype}: fedfer's codecs send float32, float16 or uint8 codes only"
            )
        if name in rows:
            low, step = affine[rows[name]].astype(np.float64)
            x = low + step * x.astype(np.float64)
        out[name] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return out


Layout = dict[str, tuple[int, ...]]  # tensor name → shape, in the order a packed array holds them (sorted)


def layout_of(state: Mapping[str, Tensor]) -> Layout:
    """The layout a packed message of `state` has: its names, sorted, and their shapes."""
    return {k: tuple(state[k].shape) for k in sorted(state)}


def layout_config(layout: Layout) -> dict[str, list[str]]:
    """The config entries that tell a receiver how to unpack: names and shapes ("64,1280"; "" for a scalar)."""
    return {PACKED_NAMES: list(layout), PACKED_SHAPES: [",".join(map(str, s)) for s in layout.values()]}


def layout_from_config(config: Mapping) -> Layout | None:
    """The layout a received config describes, or None when its message is not packed."""
    if PACKED_NAMES not in config:
        return None
    names, shapes = list(config[PACKED_NAMES]), list(config.get(PACKED_SHAPES, []))
    if len(names) != len(shapes):
        raise ValueError(
            f"{PACKED_NAMES!r} names {len(names)} tensors but {PACKED_SHAPES!r} gives {len(shapes)} shapes: "
            "the sender's packing is incompatible with this fedfer"
        )
    return {n: tuple(int(d) for d in s.split(",") if d) for n, s in zip(names, shapes)}


def pack(arrays: Mapping[str, np.ndarray], layout: Layout) -> dict[str, np.ndarray]:
    """The coded tensors of `layout` as one flat array (their codes concatenated); the 8-bit table stays apart."""
    packed = {PACKED: np.concatenate([arrays[k].ravel() for k in layout])}
    if INT8_AFFINE in arrays:
        packed[INT8_AFFINE] = arrays[INT8_AFFINE]
    return packed


def unpack(arrays: Mapping[str, np.ndarray], layout: Layout) -> dict[str, np.ndarray]:
    """`pack` undone: the tensors' codes by name, each with its shape."""
    flat = arrays[PACKED]
    sizes = [int(np.prod(s)) for s in layout.values()]
    if flat.ndim != 1 or flat.size != sum(sizes):
        raise ValueError(
            f"{PACKED!r} holds {flat.size} values of shape {flat.shape}, but its layout describes {sum(sizes)}"
        )
    ends = np.cumsum(sizes)
    out = {k: flat[end - size : end].reshape(shape) for (k, shape), size, end in zip(layout.items(), sizes, ends)}
    if INT8_AFFINE in arrays:
        out[INT8_AFFINE] = arrays[INT8_AFFINE]
    return out


def encode_record(state: Mapping[str, Tensor], codec: str, packed: bool = False) -> ArrayRecord:
    """`encode` as the ArrayRecord a message carries: one array per tensor, or one in all when `packed`."""
    arrays = encode(state, codec)
    if packed:
        arrays = pack(arrays, layout_of(state))
    return ArrayRecord({k: Array(x) for k, x in arrays.items()})


def decode_record(record: ArrayRecord, layout: Layout | None = None) -> dict[str, Tensor]:
    """`decode` of a received ArrayRecord, unpacked first when it is packed (through `layout`, which the
    config of the packed message described)."""
    arrays = {k: record[k].numpy() for k in record}
    if PACKED in arrays:
        if layout is None:
            raise ValueError(f"a packed message ({PACKED!r}) came without its layout ({PACKED_NAMES!r} in its config)")
        arrays = unpack(arrays, layout)
    return decode(arrays)


def dtype_counts(record: ArrayRecord) -> Counter[str]:
    """How many arrays of each dtype a record carries (what the 'wire' really held)."""
    return Counter(record[k].dtype for k in record if k != INT8_AFFINE)
