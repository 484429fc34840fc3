"""The documentation's generated parts: reference pages written from the code, results tables from data.

`python -m fedfer.publish` writes docs/reference/ (the command line from `fedfer.cli.build_parser`, every
run-config key from its declaration in `fedfer.runconfig`, the run folder from `fedfer.rundir` and the
round log of `fedfer.federation.strategy`) and pastes every results table between its markers in
README.md and docs/ from `docs/results/<name>.json` (`fedfer.publish.result_tables`). tests/test_docs.py
checks that what is committed is what this writes now.
"""
