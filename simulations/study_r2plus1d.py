"""Seed 004's R(2+1)D baseline against fedfer's f()+v(): what it costs, and what it scores.

`price` measures, in one run on this machine, the parameters, MACs per clip (PyTorch's
FlopCounterMode, 1 MAC = 2 FLOPs), CPU time and wall-clock latency per clip at 1 and 2 threads (the
fastest of N runs), peak memory (each model in a fresh process, its `ru_maxrss` above the process
before the model was built), a training step's time and memory, and the bytes a client would
send per round to federate the whole network or only its heads, measured on serialized Flower train
replies as fedfer's strategy measures them, with v() measured the same way beside them.

`accuracy` trains the network centrally on a synthetic world's face clips, on the same actor splits
(the split files `fedfer train` saved in the workspace) and labels as the central v(), and scores
both on the test actors (macro F1 and accuracy, mean ± 95% CI over seeds). The f()+v() numbers are
read from the `central_eval.json` that `fedfer train --seed N` wrote, after each seed's training (so
`fedfer train` may still be running for the later seeds when this starts).

    python simulations/study_r2plus1d.py price --frames 16 --size 32 --out results/r2plus1d/price.json
    python simulations/study_r2plus1d.py accuracy --workspace data --seeds 0 1 2 --frames 16 --size 32 \\
        --epochs 1 --batch-size 8 --out results/r2plus1d/accuracy.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fedfer.config import Task
from fedfer.data.datasets import Clip
from fedfer.data.face_cubes import ClipSampling, FaceClips, extract_face_cubes
from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.evaluation.stats import mean_ci
from fedfer.experiment.central import actor_split, load_clips, prepare_world
from fedfer.io import atomic_write_json
from fedfer.model.heads import FrameEncoder, VFERHead
from fedfer.model.r2plus1d import R2Plus1DFER, SparseCentreLoss, load_kinetics_encoder
from fedfer.model.train_clips import ClipTrainConfig, fit_clips, predict_logits

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
        "parameters": parameters,
        "models": rows,
        "bytes_up_per_client_per_round": federated,
        "v_bytes_logged_by_fedfer_runs": 851_377,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }


def price_markdown(result: dict) -> str:
    lines = ["| block | parameters |", "|---|---|"]
    lines += [f"| {name} | {n:,} |" for name, n in result["parameters"].items()]
    lines += [
        "",
        "| model, input per clip | parameters (trained) | MACs per clip | CPU time per clip, 1 thread "
        "| wall time per clip, 1 / 2 threads | peak memory | training step on 1 clip: CPU time, 1 thread "
        "| its peak memory |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["models"].items():
        inference, step = row["inference"], row["training_step"]
        lines.append(
            f"| {name} | {row['parameters'] / 1e6:.2f} M ({row['trained_parameters'] / 1e6:.2f} M) "
            f"| {row['macs_per_clip'] / 1e9:.2f} G | {inference['seconds']['cpu_1_threads']:.3f} s "
            f"| {inference['seconds']['wall_1_threads']:.3f} / {inference['seconds']['wall_2_threads']:.3f} s "
            f"| {inference['peak_above_bare_mib']:,.0f} MiB | {step['seconds']['cpu_1_threads']:.3f} s "
            f"| {step['peak_above_bare_mib']:,.0f} MiB |"
        )
    v_bytes = result["bytes_up_per_client_per_round"]["v() (fedfer)"]
    lines += ["", "| federated, float32 | bytes up per client per round | × v() |", "|---|---|---|"]
    lines += [f"| {name} | {b:,} | {b / v_bytes:,.1f} |" for name, b in result["bytes_up_per_client_per_round"].items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ accuracy


def fv_report(workspace: Path, world_id: str, seed: int) -> dict:
    """The central v()'s test-actor scores that `fedfer train --seed` wrote for this world."""
    pattern = f"*/vfer-K{NUM_CLASSES}-av-s{seed}-*-eval/central_eval.json"
    found = sorted((workspace / "models" / world_id).glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one {pattern} under {workspace / 'models' / world_id}, found {[str(p) for p in found]}: "
            f"run `fedfer train --world <preset> --workspace {workspace} --seed {seed}` first (default settings)"
        )
    return json.loads(found[0].read_text(encoding="utf-8"))["vfer"]


def labelled(clips: list[Clip], actors: list[str], cubes: dict[str, Path], size: int) -> FaceClips:
    """The face clips of `actors` that have a label, at `size` pixels."""
    chosen = [c for c in clips if c.actor in set(actors) and c.label is not None]
    return FaceClips.load([cubes[c.clip_id] for c in chosen], [c.label for c in chosen], size)


def accuracy(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    sampling = ClipSampling(args.frames, args.size)
    config = ClipTrainConfig(epochs=args.epochs, batch_size=args.batch_size)
    world = prepare_world(args.world, args.workspace, seed=args.world_seed, progress=False)
    clips = load_clips(world, Task(num_classes=NUM_CLASSES))  # the labels are the same for every seed
    start = time.perf_counter()
    cubes = extract_face_cubes(
        [c.path for c in clips], args.workspace / "face_cubes" / world.world_id, size=PAPER.size, workers=args.workers
    )
    result = {
        "world": world.world_id,
        "sampling": asdict(sampling),
        "config": asdict(config),
        "kinetics": str(args.kinetics) if args.kinetics else None,
        "threads": args.threads,
        "face_crops_seconds": time.perf_counter() - start,
        "seeds": [],
    }
    clips = [c for c in clips if c.clip_id in cubes]
    classes = Task(num_classes=NUM_CLASSES).classes
    for seed in args.seeds:
        split = actor_split(world, clips, args.workspace, seed)  # the file `fedfer train --seed` saved
        train, dev, test = (labelled(clips, split[name], cubes, sampling.size) for name in ("train", "dev", "test"))
        torch.manual_seed(seed)
        model, centre = R2Plus1DFER(NUM_CLASSES), SparseCentreLoss(NUM_CLASSES)
        if args.kinetics is not None:
            load_kinetics_encoder(model, args.kinetics)
        start = time.perf_counter()
        history = fit_clips(model, centre, train, dev, sampling, replace(config, seed=seed))
        train_seconds = time.perf_counter() - start
        predicted = predict_logits(model, test, sampling.frames, config.batch_size).argmax(axis=1)
        report = evaluate_predictions(test.labels, predicted, classes)
        row = {
            "seed": seed,
            "clips": {"train": len(train), "dev": len(dev), "test": len(test)},
            "r2plus1d": {"macro_f1": report.macro_f1, "accuracy": report.accuracy, "uar": report.uar},
            "r2plus1d_confusion": report.confusion,
            # read now, not at the start: `fedfer train` for the later seeds may still be running beside this
            "fv": {m: fv_report(args.workspace, world.world_id, seed)[m] for m in ("macro_f1", "accuracy", "uar")},
            "train_seconds": train_seconds,
            "history": asdict(history),
        }
        result["seeds"].append(row)
        atomic_write_json(args.out, result)  # each seed's hours are kept should a later one fail
        print(json.dumps({k: row[k] for k in ("seed", "r2plus1d", "fv", "train_seconds")}), flush=True)
    return {**result, "load_average_end": os.getloadavg()}


def accuracy_markdown(result: dict) -> str:
    seeds = result["seeds"]
    lines = [
        "| model | macro F1 | accuracy (WAR) | UAR | per seed (macro F1) |",
        "|---|---|---|---|---|",
    ]
    for key, name in (("fv", "f()+v() (fedfer, central)"), ("r2plus1d", "R(2+1)D + attention (seed 004)")):
        cells = [mean_ci([s[key][m] for s in seeds]).format() for m in ("macro_f1", "accuracy", "uar")]
        per_seed = ", ".join(f"{100 * s[key]['macro_f1']:.1f}" for s in seeds)
        lines.append(f"| {name} | {' | '.join(cells)} | {per_seed} |")
    minutes = [s["train_seconds"] / 60 for s in seeds]
    lines.append(
        f"\nR(2+1)D training: {', '.join(f'{m:.0f}' for m in minutes)} min per seed on {result['threads']} threads; "
        f"face crops {result['face_crops_seconds'] / 60:.1f} min (once)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    for name in ("price", "accuracy"):
        sub = parts.add_parser(name)
        sub.add_argument("--frames", type=int, default=16, help="frames per clip trained on (paper: 16)")
        sub.add_argument("--size", type=int, default=32, help="crop side trained on (paper: 112)")
        sub.add_argument("--out", type=Path, default=Path(f"results/r2plus1d/{name}.json"))
    parts.choices["price"].add_argument("--repeats", type=int, default=5, help="timed runs per latency (fastest)")
    sub = parts.choices["accuracy"]
    sub.add_argument("--world", default="small", help="synthetic preset rendered in the workspace")
    sub.add_argument("--world-seed", type=int, default=0)
    sub.add_argument("--workspace", type=Path, default=Path("data"))
    sub.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    sub.add_argument("--epochs", type=int, default=1)
    sub.add_argument("--batch-size", type=int, default=8)
    sub.add_argument("--threads", type=int, default=2)
    sub.add_argument("--workers", type=int, default=2, help="face-detection processes")
    sub.add_argument("--kinetics", type=Path, help="torchvision's Kinetics-400 R(2+1)D-18 file (default: from scratch)")
    args = parser.parse_args()
    result = price(args) if args.part == "price" else accuracy(args)
    atomic_write_json(args.out, result)
    print((price_markdown if args.part == "price" else accuracy_markdown)(result))
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
