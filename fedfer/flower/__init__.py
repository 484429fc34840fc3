"""Flower's processes as fedfer starts and watches them: the SuperLink and SuperNodes with their
flags and credentials (runtime, certs), the lab launchers (forked_clientapps, quick_supernode), the
wire-level byte counter (relay) and progress lines (progress). Every patch of, and reliance on,
Flower's internals is in `internals`, behind a check of the pinned Flower version. Nothing here
imports fedfer's learning code."""
