"""What `flwr run .` ships to the SuperLink and every SuperNode: the apps' code and config, nothing else.

The bundle (FAB) is built with Flower's own builder from a copy of this repository into which a
lab's deployment material has been written where a careless guide would put it: node bundles
(subject manifests with clip ids and labels), credentials, a run folder with its results, a Flower
home, and a stray run-config file at the root.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

from conftest import REPO
from flwr.cli.build import build_fab_from_disk

from fedfer.flower.certs import make_credentials
from fedfer.flower.runtime import write_connection, write_run_config
from fedfer.io import atomic_write_json
from fedfer.rundir import RunDir
from fedfer.runs.bundles import export_nodes
from fedfer.testing import build_fake_run

# Generated material a working copy may hold, too large or irrelevant to copy (all git-ignored).
NOT_COPIED = {".git", "data", "results", "runs", ".fedfer", ".flwr", ".pytest_cache", ".ruff_cache"}
FAB_OWN = {"pyproject.toml", ".info/CONTENT"}  # the app's config (re-serialized by Flower) and the manifest


def working_copy(destination: Path) -> Path:
    shutil.copytree(
        REPO,
        destination,
        ignore=lambda folder, names: [
            n for n in names if n == "__pycache__" or (Path(folder) == REPO and n in NOT_COPIED)
        ],
    )
    return destination


def test_app_bundle_holds_only_the_apps_code_after_a_lab_deployment(tmp_path: Path) -> None:
    repo = working_copy(tmp_path / "fedfer")
    run = RunDir(repo / "results" / "lab")
    values = build_fake_run(run.root)
    write_run_config(run.run_config, {**values, "run-dir": str(run.root)})
    atomic_write_json(run.summary, {"per_subject": []})
    for nodes in (repo / "nodes", repo / "docker" / "nodes"):
        export_nodes(run.root, nodes)
    for certs in (repo / "certs", repo / "docker" / "certs"):
        credentials = make_credentials(certs, 3, ["superlink"])
    write_connection(repo / ".flwr-lab", "lab", "10.0.0.5:9093", insecure=False, root_certificates=credentials.ca_cert)
    write_run_config(repo / "my-run.toml", {"central-eval": False})  # not git-ignored: fab-include alone keeps it out
    private = [
        repo / "nodes" / "node-0" / "subject" / "subject.json",
        repo / "docker" / "nodes" / "node-1" / "subject" / "subject.json",
        repo / ".flwr-lab" / "config.toml",
        run.subject("1000") / "subject.json",
    ]
    assert all(path.is_file() for path in private)  # the material is there to be (wrongly) picked up

    fab = zipfile.ZipFile(io.BytesIO(build_fab_from_disk(repo)))

    shipped = set(fab.namelist())
    code = {"server_app.py", "client_app.py"} | {
        p.relative_to(repo).as_posix() for p in (repo / "fedfer").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert shipped - FAB_OWN == code, f"not the apps' code: {sorted(shipped - FAB_OWN - code)}"
    assert shipped >= FAB_OWN
