"""Seed 004's R(2+1)D baseline against fedfer's f()+v(): what it costs.

Measures, in one run on this machine, the parameters, MACs per clip (PyTorch's FlopCounterMode,
1 MAC = 2 FLOPs), CPU time and wall-clock latency per clip at 1 and 2 threads (the fastest of N
runs), peak memory (each model in a fresh process, its `ru_maxrss` above the process before the
model was built), a training step's time and memory, and the bytes a client would send per round to
federate the whole network or only its heads, measured on serialized Flower train replies as
fedfer's strategy measures them, with v() measured the same way beside them. The accuracy side is
simulations/study_r2plus1d.py.

    python simulations/bench_r2plus1d.py --frames 16 --size 32 --out results/r2plus1d/price.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fedfer.data.encoder import FrameEncoder
from fedfer.data.face_cubes import ClipSampling
from fedfer.evaluation.stamp import stamp
from fedfer.io import atomic_write_json
from fedfer.model.heads import VFERHead
from fedfer.model.r2plus1d import R2Plus1DFER, SparseCentreLoss
from fedfer.publish.result_tables import markdown, price_blocks, price_bytes, price_models

NUM_CLASSES = 6
PAPER = ClipSampling()  # 16 frames of 112 x 112
FRAME_SIZE = 224  # f()'s input, the paper's
LSTM_MACS_PER_FRAME = 4 * (64 + 64) * 64  # v()'s LSTM: the counter has no formula for aten.lstm


# ------------------------------------------------------------------------------ price


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, as FlopCounterMode counts them (convolutions, matmuls)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops() // 2


class FrameAndVideo(nn.Module):
    """f()+v() on one clip of raw frames: what a device runs to score a video."""

    def __init__(self) -> None:
        super().__init__()
        self.f, self.v = FrameEncoder(), VFERHead(NUM_CLASSES)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:  # (T, 3, 224, 224) → (1, K)
        return self.v(self.f(frames).unsqueeze(0), torch.tensor([len(frames)]))


def _build(kind: str, frames: int, size: int) -> tuple[nn.Module, torch.Tensor]:
    """A model and one clip of input for it, in eval mode."""
    if kind == "r2plus1d":
        return R2Plus1DFER(NUM_CLASSES).eval(), torch.rand(1, 3, frames, size, size)
    return FrameAndVideo().eval(), torch.rand(frames, 3, size, size)


def _step(kind: str, frames: int, size: int, mode: str) -> Callable[[], object]:
    """What one timed run does: score one clip, or one Adam step on one clip (batch of 1).

    Training f()+v() on a device is training v() on the clip's cached f() features: f() is frozen and
    never loaded for it. Training R(2+1)D is training the whole network and its centres."""
    if mode == "inference":
        model, clip = _build(kind, frames, size)

        def score() -> object:
            with torch.inference_mode():
                return model(clip)

        return score
    label = torch.tensor([0])
    if kind == "r2plus1d":
        model, clip = _build(kind, frames, size)
        centre = SparseCentreLoss(NUM_CLASSES)
        parameters = [*model.parameters(), *centre.parameters()]
        model.train()

        def loss() -> torch.Tensor:
            out = model(clip)
            return nn.functional.cross_entropy(out.logits, label) + centre(out.embedding, out.weights, label)

    else:
        v, features = VFERHead(NUM_CLASSES).train(), torch.randn(1, frames, 1280)  # (1, T, 1280) as cached
        parameters = list(v.parameters())

        def loss() -> torch.Tensor:
            return nn.functional.cross_entropy(v(features, torch.tensor([frames])), label)

    optimizer = torch.optim.Adam(parameters, lr=1e-3)

    def train_step() -> object:
        optimizer.zero_grad()
        loss().backward()
        return optimizer.step()

    return train_step


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _warm_up_runtime() -> None:
    """Run each kind of operator once on tiny tensors, forward and backward, at 1 and 2 threads.

    PyTorch maps its kernels, thread pools and oneDNN code on first use, some hundreds of MiB that any
    model pays once; doing it before the baseline keeps that out of the model's memory figure."""
    for threads in (1, 2):
        torch.set_num_threads(threads)
        modules = nn.ModuleList([nn.Conv3d(3, 4, 3), nn.Conv2d(3, 4, 3), nn.LSTM(4, 4, batch_first=True)])
        out = modules[0](torch.rand(1, 3, 4, 8, 8)).sum() + modules[1](torch.rand(1, 3, 8, 8)).sum()
        out = out + modules[2](torch.rand(1, 3, 4))[0].sum()
        out.backward()
        torch.optim.Adam(modules.parameters()).step()


def _measure_in_fresh_process(kind: str, frames: int, size: int, mode: str, repeats: int) -> dict:
    """Seconds per run and peak memory of one model in this (fresh) process: ru_maxrss only ever grows.

    Each run is timed twice: wall-clock, and this process's CPU time (all its threads). On cores that
    other jobs keep busy the wall-clock time measures them as much as the model, so the fastest of
    `repeats` runs is kept, and at 1 thread the CPU time is the latency the model would have on a
    quiet core. Memory is the peak above what the process held before building the model (Python,
    torch and its runtime, fedfer)."""
    torch.manual_seed(0)
    _warm_up_runtime()
    bare_mib = _rss_mib()
    step = _step(kind, frames, size, mode)
    seconds: dict[str, float] = {}
    for threads in (1, 2) if mode == "inference" else (1,):
        torch.set_num_threads(threads)
        wall, cpu = [], []
        for _ in range(repeats + 1):  # the first run warms up (allocator, oneDNN kernels, Adam state): not timed
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        seconds[f"wall_{threads}_threads"] = min(wall[1:])
        seconds[f"cpu_{threads}_threads"] = min(cpu[1:])
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "bare_process_mib": bare_mib, "peak_above_bare_mib": peak_mib - bare_mib}


def measure(kind: str, frames: int, size: int, mode: str, repeats: int) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_measure_in_fresh_process, (kind, frames, size, mode, repeats))


def reply_bytes(state: dict[str, torch.Tensor]) -> int:
    """Bytes of a client's train reply carrying `state` (float32), built as fedfer's ClientApp builds it."""
    from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from fedfer.federation.codec import encode_record
    from fedfer.federation.protocol import ARRAYS, CONFIG, METRICS, NUM_EXAMPLES, PARTITION_ID, SERVER_ROUND, TRAIN_LOSS
    from fedfer.federation.strategy import message_bytes

    # The identity Flower's runtime gives a ClientApp process (64-bit ids, as Flower draws them).
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 2**62 + 1, 2**63 + 1, 2**62 + 1
    request = Message(
        RecordDict({ARRAYS: encode_record(state, "float32"), CONFIG: ConfigRecord({SERVER_ROUND: 1})}),
        dst_node_id=TaskIdentity.node_id,
        message_type="train",
    )
    metrics = MetricRecord({NUM_EXAMPLES: 40, PARTITION_ID: 0, TRAIN_LOSS: 1.0})
    reply = Message(RecordDict({ARRAYS: encode_record(state, "float32"), METRICS: metrics}), reply_to=request)
    return message_bytes(reply)


def state_of(*modules: nn.Module) -> dict[str, torch.Tensor]:
    """What FedAvg would average: parameters and BatchNorm statistics, not the batch counters (as for v())."""
    from fedfer.federation.protocol import LOCAL_ONLY_SUFFIX

    return {
        f"{i}.{name}": tensor
        for i, module in enumerate(modules)
        for name, tensor in module.state_dict().items()
        if not name.endswith(LOCAL_ONLY_SUFFIX)
    }


def count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def price(args: argparse.Namespace) -> dict:
    from fedfer.federation.protocol import v_state

    trained = ClipSampling(args.frames, args.size)
    net, centre = R2Plus1DFER(NUM_CLASSES), SparseCentreLoss(NUM_CLASSES)
    heads = [net.embed, net.classifier, net.element_attention, centre]
    f_and_v = FrameAndVideo()
    parameters = {
        "r2plus1d encoder": count(net.encoder),
        "spatio-temporal attention": count(net.attention),
        "heads (embedding, classifier, element attention, centres)": count(*heads),
        "r2plus1d whole (with centres)": count(net, centre),
        "f() MobileNetV2": count(f_and_v.f),
        "v()": count(f_and_v.v),
    }
    load_start = os.getloadavg()
    stamped = stamp(frames=args.frames, size=args.size, repeats=args.repeats, torch=torch.__version__)
    stamped["world_version"] = None  # no synthetic world: random clips
    models = {
        f"R(2+1)D + attention, {PAPER.frames}×{PAPER.size}² (paper)": ("r2plus1d", PAPER.frames, PAPER.size),
        f"R(2+1)D + attention, {trained.frames}×{trained.size}² (trained here)": (
            "r2plus1d",
            trained.frames,
            trained.size,
        ),
        f"f()+v(), {PAPER.frames} frames × {FRAME_SIZE}²": ("fv", PAPER.frames, FRAME_SIZE),
    }
    rows = {}
    for name, (kind, frames, size) in models.items():
        model, clip = _build(kind, frames, size)
        macs = count_macs(model, clip) + (LSTM_MACS_PER_FRAME * frames if kind == "fv" else 0)
        rows[name] = {
            "parameters": count(net, centre) if kind == "r2plus1d" else count(f_and_v),
            "trained_parameters": count(net, centre) if kind == "r2plus1d" else count(f_and_v.v),
            "macs_per_clip": macs,
            "inference": measure(kind, frames, size, "inference", args.repeats),
            "training_step": measure(kind, frames, size, "training", max(1, args.repeats // 2)),
        }
        print(f"measured {name}", flush=True)
    v_bytes = reply_bytes(v_state(VFERHead(NUM_CLASSES)))
    federated = {
        "whole network": reply_bytes(state_of(net, centre)),
        "attention block + heads": reply_bytes(state_of(net.attention, *heads)),
        "heads only": reply_bytes(state_of(*heads)),
        "v() (fedfer)": v_bytes,
    }
    return {
        "stamp": stamped,
        "parameters": parameters,
        "models": rows,
        "bytes_up_per_client_per_round": federated,
        "v_bytes_logged_by_fedfer_runs": 851_377,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }


def price_markdown(result: dict) -> str:
    """The three tables as the docs publish them (`fedfer.publish.result_tables`)."""
    tables = [render(result) for render in (price_blocks, price_models, price_bytes)]
    return "\n\n".join("\n".join(markdown(columns, rows)) for columns, rows in tables) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames per clip trained on (paper: 16)")
    parser.add_argument("--size", type=int, default=32, help="crop side trained on (paper: 112)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per latency (fastest)")
    parser.add_argument("--out", type=Path, default=Path("results/r2plus1d/price.json"))
    args = parser.parse_args(argv)
    result = price(args)
    atomic_write_json(args.out, result)
    print(price_markdown(result))
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
