"""Ways to run a study, each ending in the same report: what a run is told (options), the path every
run takes (study: prepare → federate → check → report), a Flower simulation (simulate), real
SuperLink/SuperNode processes (deployment, supernodes), lab node bundles and compose files
(bundles, compose), a crowd federation for scale (scale), and the report itself (report)."""
