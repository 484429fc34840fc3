"""Codecs and payload scopes: what they do to the tensors, and real Flower runs with each codec
(bytes from the serialized messages, the server decoding 8-bit replies), in simulation and deployment."""

import json

import numpy as np
import pytest
import torch

from fedfer.config import CODECS
from fedfer.federation.codec import (
    decode,
    decode_record,
    encode,
    encode_record,
    layout_config,
    layout_from_config,
    layout_of,
    pack,
    unpack,
)
from fedfer.federation.payload import extra_state, split_payload
from fedfer.federation.protocol import F_PREFIX, G_PREFIX, INT8_AFFINE, PACKED, v_state
from fedfer.model.checkpoint import load_head
from fedfer.model.heads import VFERHead
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.testing import build_fake_run


def test_codecs_round_trip_within_their_rounding() -> None:
    state = v_state(VFERHead(6))
    state["constant"] = torch.full((3,), 0.25)  # a tensor with no range still decodes exactly
    for codec, tolerance in (("float32", 0.0), ("float16", 1e-3)):
        back = decode_record(encode_record(state, codec))
        assert all(back[k].dtype == torch.float32 for k in state)
        assert max(float((back[k] - state[k]).abs().max()) for k in state) <= tolerance
    arrays = encode(state, "int8")
    assert {arrays[k].dtype for k in state} == {np.dtype(np.uint8)}
    back = decode(arrays)
    for k, t in state.items():
        step = float(t.max() - t.min()) / 255
        assert float((back[k] - t).abs().max()) <= step / 2 + 1e-6, k
    assert torch.equal(back["constant"], state["constant"])


def test_int8_is_a_quarter_of_float32_and_a_broken_message_is_named() -> None:
    state = v_state(VFERHead(6))
    sizes = {codec: encode_record(state, codec).count_bytes() for codec in ("float32", "float16", "int8")}
    assert sizes["int8"] <= 0.26 * sizes["float32"] and sizes["float16"] <= 0.51 * sizes["float32"]
    arrays = encode(state, "int8")
    del arrays[INT8_AFFINE]
    with pytest.raises(ValueError, match=INT8_AFFINE):
        decode(arrays)
    with pytest.raises(ValueError, match="codec-up = 'int4' \\(expected one of"):
        FederationConfig(codec_up="int4")


def test_packing_sends_the_same_bytes_as_one_array_and_unpacks_them_exactly() -> None:
    state = v_state(VFERHead(6))
    layout = layout_from_config(layout_config(layout_of(state)))  # as the receiver reads it from the config
    assert layout == {k: tuple(t.shape) for k, t in sorted(state.items())}
    for codec in CODECS:
        arrays = encode(state, codec)
        packed = pack(arrays, layout)
        tensors = sorted(state)
        assert packed[PACKED].tobytes() == b"".join(arrays[k].tobytes() for k in tensors), codec
        assert set(packed) == {PACKED, *([INT8_AFFINE] if codec == "int8" else [])}
        back = unpack(packed, layout)
        assert set(back) == set(arrays) and all(
            back[k].dtype == arrays[k].dtype
            and back[k].shape == arrays[k].shape
            and back[k].tobytes() == arrays[k].tobytes()
            for k in arrays
        ), codec
        record = encode_record(state, codec, packed=True)
        assert len(record) == len(packed) and decode_record(record, layout).keys() == state.keys()
        assert all(torch.equal(decode_record(record, layout)[k], decode(arrays)[k]) for k in state)
    with pytest.raises(ValueError, match="without its layout"):
        decode_record(encode_record(state, "float32", packed=True))
    short = dict(list(layout.items())[:-1])
    with pytest.raises(ValueError, match="its layout describes"):
        unpack(pack(encode(state, "float32"), layout), short)


def test_wider_payloads_carry_g_and_f_and_split_back(tmp_path) -> None:
    from fedfer.model.checkpoint import HeadCard, save_head
    from fedfer.model.heads import IFERHead

    save_head(tmp_path / "g.pt", IFERHead(6), HeadCard("ifer", ("a", "b", "c", "d", "e", "f"), "fake"))
    assert extra_state("v", tmp_path / "g.pt", "offline") == {}
    g_only = extra_state("g+v", tmp_path / "g.pt", "offline")
    whole = extra_state("f+g+v", tmp_path / "g.pt", "offline")
    assert g_only and all(k.startswith(G_PREFIX) for k in g_only)
    f_values = sum(t.numel() for k, t in whole.items() if k.startswith(F_PREFIX))
    assert f_values > 2_000_000  # MobileNetV2's features: about 2.2M parameters plus BatchNorm statistics
    v = v_state(VFERHead(6))
    v_part, extras = split_payload({**v, **whole})
    assert set(v_part) == set(v) and set(extras) == set(whole)
    with pytest.raises(ValueError, match="pixel teacher"):
        extra_state("g+v", "", "offline")


def test_server_decodes_8_bit_replies_and_bytes_shrink(codec_runs) -> None:
    rounds = {codec: json.loads(run.rounds.read_text())[0] for codec, run in codec_runs.items()}
    v_arrays = len(v_state(VFERHead(6)))
    assert rounds["int8"]["received_dtypes"] == {"uint8": 3}  # what the wire held: one packed array per reply
    assert rounds["float16"]["received_dtypes"] == {"float16": 3}
    assert rounds["float32"]["received_dtypes"] == {"float32": 3}
    assert rounds["unpacked"]["received_dtypes"] == {"float32": 3 * v_arrays}
    assert all(r["received_arrays"] == rounds["unpacked"]["received_arrays"] for r in rounds.values())
    for codec, ratio in (("int8", 0.26), ("float16", 0.51)):
        for way in ("bytes_up_total", "bytes_down_total"):
            assert rounds[codec][way] <= ratio * rounds["float32"][way], (codec, way)
    # The averaged v() the server kept is float32 and loads into v() (decoded, not the codes).
    v, _ = load_head(codec_runs["int8"].central_checkpoint(1), stage="vfer")
    assert all(t.dtype == torch.float32 for t in v.state_dict().values() if t.is_floating_point())


def test_packed_and_unpacked_runs_average_the_same_v_to_the_bit(codec_runs) -> None:
    """Packing changes how v() travels, not what: the float32 runs with and without it keep identical
    averaged v()s and the same clients' scores, and the packed messages are no larger."""
    packed, unpacked = (
        v_state(load_head(codec_runs[n].central_checkpoint(1), stage="vfer")[0]) for n in ("float32", "unpacked")
    )
    assert packed.keys() == unpacked.keys() and all(torch.equal(packed[k], unpacked[k]) for k in packed)
    rounds = {n: json.loads(codec_runs[n].rounds.read_text())[0] for n in ("float32", "unpacked")}
    scores = {n: sorted(c["evaluate"]["cm-personal"] for c in r["clients"].values()) for n, r in rounds.items()}
    assert scores["float32"] == scores["unpacked"]
    for way in ("bytes_up_total", "bytes_down_total"):
        assert rounds["float32"][way] <= rounds["unpacked"][way], way


def norm(state: dict) -> float:
    return sum(float(t.norm() ** 2) for t in state.values()) ** 0.5


def test_averaged_v_agrees_across_codecs(codec_runs) -> None:
    """The averaged v() of a float16 (8-bit) run differs from the float32 run's by about the codec's
    own rounding of v(), down and up: training does not amplify it. Bound: 3 × the rounding of the
    starting v() by that codec, and a small share of v()'s norm."""
    start = v_state(load_head(codec_runs["float32"].central_checkpoint(0), stage="vfer")[0])
    after = {codec: v_state(load_head(run.central_checkpoint(1), stage="vfer")[0]) for codec, run in codec_runs.items()}
    reference = after["float32"]
    assert norm({k: reference[k] - start[k] for k in start}) > 0  # the round trained something
    for codec, share in (("float16", 1e-3), ("int8", 5e-3)):
        rounded = decode(encode(start, codec))
        rounding = norm({k: rounded[k] - start[k] for k in start})
        distance = norm({k: after[codec][k] - reference[k] for k in reference})
        assert 0 < distance <= 3 * rounding, (codec, distance, rounding)
        assert distance <= share * norm(reference), (codec, distance)


def test_deployment_with_forked_clientapps_completes_and_stops_every_process(tmp_path, monkeypatch) -> None:
    """SuperNodes in `--isolation process` with fedfer's warm launcher beside each, dialling the
    SuperLink through a byte-counting relay: every client answers both messages of the round over
    TLS (verified through the relay), the wire carries at least what the SuperLink counted, and
    nothing is left running."""
    from conftest import StartedProcesses

    from fedfer.flower.relay import CountingRelay
    from fedfer.runs.deployment import deploy_prepared

    values = {**build_fake_run(tmp_path / "prepared"), "num-server-rounds": 1, "central-eval": False}
    run_dir = tmp_path / "deployment"
    started = StartedProcesses(monkeypatch)
    with CountingRelay() as relay:
        values = {**values, "run-dir": str(run_dir)}
        result = deploy_prepared(run_dir, values, launcher="forked", node_route=relay.route)
    traffic = result["superlink_traffic"]
    assert traffic["status"] == "finished:completed"
    assert relay.connections >= 3
    assert relay.bytes_to_target >= traffic["inbound_bytes"] > 3 * 800_000  # three v() replies, at least
    assert relay.bytes_from_target >= traffic["outbound_bytes"] > 3 * 800_000
    (entry,) = json.loads(RunDir(run_dir).rounds.read_text())
    assert len(entry["clients"]) == 3 and entry["seconds"] > 0
    assert all("train" in c and "evaluate" in c and "error" not in c for c in entry["clients"].values())
    assert len(started.pids) == 7  # SuperLink, 3 SuperNodes, 3 warm launchers
    assert started.leftovers(run_dir) == []
