"""The `fedfer` command line: one verb per stage, each implemented in `fedfer.commands.<verb>`.

Verb modules are imported only when their verb runs, so `fedfer synth` or `fedfer --help` do not pay
for importing torch or Flower.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

VERBS: dict[str, str] = {
    "params": "print parameter counts of f(), g(), v() in PyTorch's and the paper's convention",
    "models": "obtain the face-detector model, the offline backbone weights and the FER-2013 teacher",
    "synth": "render the built-in synthetic corpora (CREMA-D, AffectNet, MSP-IMPROV shaped)",
    "features": "detect faces and cache frozen f() features for a folder of videos",
    "train": "train the central heads: g() on still images, v() on training-actor videos",
    "evaluate": "evaluate a checkpoint on test clips: metrics JSON, Markdown table, confusion PNG",
    "prepare": "prepare a run folder and print the `flwr run` line that federates it (Flower-native route)",
    "run": "the main job: a federated personalization simulation on Flower, with its report",
    "deploy": "the same federation as real SuperLink/SuperNode processes on this machine",
    "lab": "prepare a lab of several machines: credentials (certs), SuperNode data (nodes), compose files (compose)",
    "predict": "run a trained or personalized v() on videos or a camera, frame by frame (streaming)",
    "export": "export f()+v() (streaming) and g() to ONNX with a JSON card, for devices",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for `argv` (the arguments after `fedfer`); only the verb it names gets its flags."""
    parser = argparse.ArgumentParser(prog="fedfer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    verb = argv[0] if argv else None
    for name, summary in VERBS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        if name == verb:  # only the chosen verb's module is imported
            importlib.import_module(f"fedfer.commands.{name}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    command = importlib.import_module(f"fedfer.commands.{args.verb}")
    try:
        return int(command.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as err:
        # fedfer's errors name the file or value and the remedy: show that, not a traceback.
        if os.environ.get("FEDFER_DEBUG"):
            raise
        print(f"fedfer {args.verb}: error: {err}\n(set FEDFER_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
