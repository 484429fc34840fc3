"""The package's shape, checked from its source: the layers and the import order between them, one
home per name, one name per module, and sizes a reader can hold in mind."""

import ast
import re
from pathlib import Path

import pytest
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


# The layers, lowest first. A module may import its own layer and those below it, never one above:
# base → data → synth → model → evaluation → flower → federation | predict → stages → runs → paper →
# calibration → commands. `fedfer.testing` (test support) and `fedfer.publish` (the docs' generated parts)
# sit on top. Each package's __init__ says what it holds.
LAYERS: tuple[tuple[str, ...], ...] = (
    # what every stage shares: files, settings, the run folder's layout, devices, ONNX graphs
    ("fedfer", "fedfer.io", "fedfer.config", "fedfer.settings", "fedfer.runconfig", "fedfer.rundir")
    + ("fedfer.device", "fedfer.graphs"),
    ("fedfer.data",),  # videos → faces → f() → features; corpus readers, splits, subject manifests
    ("fedfer.synth",),  # the synthetic world and the crowd workload
    ("fedfer.model",),  # g(), v(): checkpoints, training, inference, pseudo labels, personalization
    ("fedfer.evaluation",),  # scores of a model
    ("fedfer.flower",),  # Flower's processes and every patch of its internals
    ("fedfer.federation", "fedfer.predict"),  # one round of the protocol | using a trained v()
    ("fedfer.stages",),  # world → features → split → central g() and v()
    ("fedfer.runs",),  # ways to run a study and its report
    ("fedfer.paper",),  # the paper's grid
    ("fedfer.calibration",),  # the synthetic world fitted to published label statistics and Table 1
    ("fedfer.commands", "fedfer.cli", "fedfer.testing", "fedfer.publish"),  # the command line; test support; docs
)
# Imports that run up the layers on purpose, with the reason: none.
UPWARD_IMPORTS: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (module.startswith(prefix + ".") and prefix != "fedfer")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def test_no_import_runs_up_the_layers() -> None:
    upward = {
        (module, imported)
        for module, imports_ in import_graph().items()
        for imported in imports_
        if layer_of(imported) > layer_of(module)
    }
    assert upward == set(UPWARD_IMPORTS)


def test_module_names_are_unique_and_sizes_fit_a_reader() -> None:
    """One module per name across the package, the studies and the tests; none over 400 lines, no
    function over 80."""
    files = [*PACKAGE.rglob("*.py"), *(REPO / "simulations").rglob("*.py"), *(REPO / "tests").glob("*.py")]
    files += [REPO / "server_app.py", REPO / "client_app.py"]
    names: dict[str, list[str]] = {}
    for path in files:
        if path.name != "__init__.py":
            names.setdefault(path.stem, []).append(str(path.relative_to(REPO)))
    # A corpus' reader (data/datasets/) and its synthetic writer (synth/) are both named after the corpus.
    corpora = {"crema_d", "affectnet", "msp_improv"}
    assert {name: paths for name, paths in names.items() if len(paths) > 1 and name not in corpora} == {}
    long_modules, long_functions = [], []
    for path in files:
        text = path.read_text()
        if len(text.splitlines()) > 400:
            long_modules.append(str(path.relative_to(REPO)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 80:
                long_functions.append(f"{path.relative_to(REPO)}:{node.name}")
    assert long_modules == [] and long_functions == []


def patches_flower(source: str) -> bool:
    """Whether `source` changes an object of Flower's: assigns to an attribute of (or `setattr`s) something
    imported from `flwr`, or writes an object's `__dict__`."""
    tree = ast.parse(source)
    flower = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and (getattr(node, "module", None) or node.names[0].name).startswith("flwr")
        for alias in node.names
    }

    def changes(target: ast.expr) -> bool:
        root = target
        while isinstance(root, ast.Attribute | ast.Subscript):
            if isinstance(root, ast.Attribute) and root.attr == "__dict__":
                return True
            root = root.value
        return isinstance(target, ast.Attribute | ast.Subscript) and isinstance(root, ast.Name) and root.id in flower

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(changes(t) for t in node.targets):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in flower
        ):
            return True
    return False


def test_flower_internals_are_patched_for_the_pinned_flower_only(monkeypatch) -> None:
    """The one module that patches Flower pins the version pyproject.toml pins, and refuses any other."""
    import tomllib

    from fedfer.flower import internals

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"flwr[simulation]=={internals.PINNED_FLOWER}" in dependencies
    internals.require_pinned_flower()  # the installed one
    monkeypatch.setattr(internals, "version", lambda _: "1.43.0")
    with pytest.raises(RuntimeError, match=r"Flower 1\.43\.0 is installed: install flwr==1\.42\.0"):
        internals.shorten_server_pulls()
    sources = [*PACKAGE.rglob("*.py"), REPO / "server_app.py", REPO / "client_app.py"]
    patched = sorted(str(p.relative_to(REPO)) for p in sources if patches_flower(p.read_text()))
    assert patched == ["fedfer/flower/internals.py"]


def test_ml_code_knows_nothing_of_flower() -> None:
    """data/ and model/ are plain PyTorch and numpy: testable, and usable, without Flower."""
    for path in [*(PACKAGE / "data").rglob("*.py"), *(PACKAGE / "model").rglob("*.py")]:
        assert not re.search(r"^\s*(from|import) flwr", path.read_text(), re.MULTILINE), path


def test_generic_modules_import_no_corpus_reader() -> None:
    """Only the places that are about a corpus (its reader, the synthetic writers, the stages that read a
    CREMA-D-layout world and its stills, the commands) may import `fedfer.data.datasets.<corpus>`."""
    allowed = (
        "fedfer.data.datasets",
        "fedfer.synth",
        "fedfer.stages.workspace",
        "fedfer.stages.sets",
        "fedfer.calibration.label_stats",  # CREMA-D's own label files are its targets
        "fedfer.commands",
    )
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
        '"rounds.json"': "fedfer/rundir.py",
        '"subjects.json"': "fedfer/rundir.py",
        '"summary.json"': "fedfer/rundir.py",
        '"run_config.toml"': "fedfer/rundir.py",
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
