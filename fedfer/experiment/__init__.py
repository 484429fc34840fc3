"""Whole runs: the cached central stage, the run folder's layout, a Flower simulation and a
deployment of the same apps, each ending in the same report."""
