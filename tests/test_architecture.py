"""The package's shape, checked from its source: import order between concerns, one home per name."""

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "fedfer"
SIBLING = "/".join(("..", "shared"))  # a folder beside the checkout, which a user's clone does not have


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imports(path: Path, modules: set[str]) -> set[str]:
    """The fedfer modules `path` imports, at any depth of the file (lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedfer"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("fedfer"))
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items()}


def test_no_import_cycles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_ml_code_knows_nothing_of_flower() -> None:
    """data/ and model/ are plain PyTorch and numpy: testable, and usable, without Flower."""
    for path in [*(PACKAGE / "data").rglob("*.py"), *(PACKAGE / "model").rglob("*.py")]:
        assert not re.search(r"^\s*(from|import) flwr", path.read_text(), re.MULTILINE), path


def test_generic_modules_import_no_corpus_reader() -> None:
    """Only the places that are about a corpus (its reader, the synthetic writers, the central stage
    of a CREMA-D-layout world, the commands) may import `fedfer.data.datasets.<corpus>`."""
    allowed = ("fedfer.data.datasets", "fedfer.synth", "fedfer.experiment.central", "fedfer.commands")
    readers = {"fedfer.data.datasets.crema_d", "fedfer.data.datasets.affectnet", "fedfer.data.datasets.msp_improv"}
    for module, imported in import_graph().items():
        if not module.startswith(allowed):
            assert not imported & readers, f"{module} imports {sorted(imported & readers)}"


def test_message_keys_and_run_paths_are_written_once() -> None:
    """A message key or a run-folder file name appears as a literal in one module only."""
    literals = {
        '"num-examples"': "fedfer/federation/protocol.py",
        '"partition-id"': "fedfer/federation/protocol.py",
        '"cm-personal"': "fedfer/federation/protocol.py",
        '"cm-pseudo"': "fedfer/federation/protocol.py",
        '"rounds.json"': "fedfer/experiment/rundir.py",
        '"subjects.json"': "fedfer/experiment/rundir.py",
        '"summary.json"': "fedfer/experiment/rundir.py",
        '"run_config.toml"': "fedfer/experiment/rundir.py",
    }
    sources = [*PACKAGE.rglob("*.py"), REPO / "server_app.py", REPO / "client_app.py"]
    for literal, home in literals.items():
        holders = sorted(str(p.relative_to(REPO)) for p in sources if literal in p.read_text())
        assert holders == [home], (literal, holders)


def test_nothing_reads_outside_the_repository() -> None:
    """A user's clone has no sibling folders: no file names a path above the repository."""
    roots = [REPO / d for d in ("fedfer", "tests", "simulations", "docker", ".ci")]
    suffixes = (".py", ".toml", ".yaml", ".md", "")
    files = [p for root in roots for p in root.rglob("*") if p.is_file() and p.suffix in suffixes]
    files += [REPO / name for name in ("pyproject.toml", "README.md", "server_app.py", "client_app.py")]
    for path in files:
        if "data" in path.relative_to(REPO).parts or path.name == "test_architecture.py":
            continue
        text = path.read_text(errors="replace")
        assert SIBLING not in text and not re.search(r'/ "shared"', text), path
