"""Where a crowd node's time goes: cProfile of one node's work for S subjects, without Flower.

The scale benchmark (`bench_scale.py`) measures whole federations; this splits the ClientApp side
of a round into its stages — drawing a subject's features, g()'s pseudo labels, the 2 epochs of v(),
building v() from the received state, the partial average — so docs/how-to/scale.md can say which of them a
faster machine, a smaller clip or a different structure would help.

    python simulations/profile_crowd_node.py --prepared results/small-K6-seed0 --subjects 20
"""

from __future__ import annotations

import cProfile
import pstats
import tempfile
import time
import tomllib
from pathlib import Path

import torch
from study_args import study_parser

from fedfer.federation.client import threads_for_client
from fedfer.federation.group import train_crowd_group
from fedfer.federation.protocol import v_state
from fedfer.model.checkpoint import load_head
from fedfer.runconfig import FederationConfig
from fedfer.rundir import RunDir
from fedfer.runs.scale import crowd_model_of
from fedfer.synth.crowd import CrowdModel

# (label, function name as pstats names it, file suffix): the stages of one subject's turn.
STAGES = [
    ("draw the subject's features (crowd model)", "subject", "synth/crowd.py"),
    ("g() on every frame, mean per clip", "clip_probabilities", "model/pseudo.py"),
    ("top-P selection", "select_pseudo_labels", "model/pseudo.py"),
    ("2 epochs of v() (forward, backward, Adam)", "fit", "model/training.py"),
    ("v() built from the received state", "load_v_state", "federation/protocol.py"),
    ("v() state out (clone)", "v_state", "federation/protocol.py"),
]


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--prepared", type=Path, required=True, help="a prepared run folder (g(), v(), subjects)")
    parser.add_argument("--subjects", type=int, default=20, help="subjects the node serves")
    args = parser.parse_args(argv)
    threads_for_client()
    run = FederationConfig.from_run_config(tomllib.loads(RunDir(args.prepared).run_config.read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        crowd = CrowdModel.load(crowd_model_of(args.prepared, Path(tmp)))
    g, _ = load_head(Path(run.ifer_checkpoint), stage="ifer", classes=crowd.classes)
    central, _ = load_head(Path(run.central_checkpoint), stage="vfer", classes=crowd.classes)
    start = v_state(central)
    # The first pass pays one-off costs of a fresh process (lazy imports of torch's optimizers and
    # compiler hooks, allocator warm-up): a Ray actor pays them once, in its first round.
    for name, first in (("cold (a fresh process)", 0), ("warm (the actor's later messages)", args.subjects)):
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        indices = range(first, first + args.subjects)
        result = train_crowd_group(start, indices, crowd, 0, g, run.personalize, run.batchnorm)
        profile.disable()
        seconds = time.perf_counter() - started
        stats = pstats.Stats(profile).stats  # {(file, line, name): (calls, ncalls, tottime, cumtime, callers)}
        print(
            f"\n{name}: {args.subjects} subjects in {seconds:.2f} s ({seconds / args.subjects * 1000:.0f} ms each, "
            f"{torch.get_num_threads()} thread); {result.weight} pseudo-labelled videos trained on"
        )
        print("| stage | seconds | share |\n|---|---|---|")
        for label, function, suffix in STAGES:
            cumulative = sum(v[3] for (file, _, fn), v in stats.items() if fn == function and file.endswith(suffix))
            print(f"| {label} | {cumulative:.2f} | {cumulative / seconds * 100:.0f}% |")


if __name__ == "__main__":
    main()
