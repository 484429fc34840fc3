"""The stages before federation, each cached in the workspace and skipped when done: the world and
its features and actor split (world), the sets the central heads learn from (sets), the
pseudo-labeller (teacher), the central g() and v() (training) and their held-out scores (central_eval).

"Central" means one thing in fedfer: the model trained centrally, v() (and g()), and its global
copy across the federation's rounds."""
