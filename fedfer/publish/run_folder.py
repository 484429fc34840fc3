"""The run folder's reference page, read from the code that writes it: the layout and paths of
`fedfer.rundir`, the round log of `fedfer.federation.strategy.RoundLog`, the message names of
`fedfer.federation.protocol` and the keys of summary.json as `fedfer.runs.records` and the runners
put them there. The modules are read as source (nothing of torch or Flower is imported)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from fedfer import rundir
from fedfer.publish.reference import REPO, generated_from, table

# What each summary.json key means. The keys themselves are read from the code; a key the code gains
# shows up in the page with "–" until it is described here.
SUMMARY_KEYS = {
    "classes": "the task's classes, in the order of every per-class list and matrix",
    "num_subjects": "subjects of the run (one client each)",
    "subjects_missing": "subjects whose node sent no round-1 evaluation (its client failed)",
    "subjects_change": "per-subject weighted-F1 tally, round-1 personalized against central: `metric`, "
    "`threshold`, `improved`, `unchanged`, `worse`, `mean_gain`",
    "subjects_change_accuracy": "the same tally on accuracy",
    "per_subject": "per subject: `subject`, `clips`, `selected`, `before` / `after` (`macro_f1`, `weighted_f1`, "
    "`accuracy`)",
    "pseudo_labels": "round-1 pseudo labels: `selected_per_class`, `precision_per_class`, `accuracy`, `selected_total`",
    "rounds": "per round, as in the table below",
    "subjects_without_pseudo_labels": "subjects none of whose videos reached `p-threshold` in round 1",
    "paper": "the paper's figures the report prints beside the run's",
    "adapt_f": "with `adapt-f-rounds`: per round of f()'s adaptation, the rounds' fields with `face_crops` per "
    "subject (FedAvg's weights) and `loss_mean` (the clients' mean NT-Xent loss) instead of `selected_videos`",
    "adapt_f_seconds": "with `adapt-f-rounds`: the adaptation's federation alone",
    "adapted_stages_seconds": "with `adapt-f-rounds`: the stages redone on the adapted f() (features, g(), v())",
    "personalized": "scores of the round-1 personalized models, pooled (the paper's Table 2)",
    "personalized_round_<r>": "scores of the models personalized in round r > 1, from the FedAvg model",
    "central_before": "scores of the central v() before federation (server's evaluation, `central-eval`)",
    "central_after": "scores of the central v() after the last round (the paper's Table 6)",
    "central_before_answered": "the central v() on the subjects that answered round 1 (Table 2's comparison)",
    "mode": "`simulation` or `deployment`",
    "teacher": "the pseudo-labeller g() that was used",
    "teacher_reason": "why that pseudo-labeller (e.g. no `--affectnet`)",
    "protocol": "run-config `protocol`",
    "central_labels": "run-config `central-labels`",
    "total_seconds": "the whole command, preparation included",
    "flower_seconds": "the Flower run alone",
    "superlink_traffic": "a deployment's SuperLink byte counts: `run_id`, `inbound_bytes`, `outbound_bytes`, `status`",
}
# rounds.json keys whose field carries no comment in `RoundLog`.
ROUND_KEYS = {
    "round": "the round's number (a resumed run numbers its rounds on)",
    "seconds": "from sending the round's train messages to the last evaluate reply",
}
SCORES = (
    "Each scored model holds per-class `precision`, `recall`, `f1`, `support`, the `macro` / `micro` / `weighted` "
    'means, `accuracy`, `confusion`, `macro_f1`, `micro_f1`, `weighted_f1` (the paper\'s "Micro mean"), `uar`, '
    "`war` and `n` (`fedfer.evaluation.metrics.ClassificationReport`)."
)


def source_tree(module: str) -> ast.Module:
    return ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())


def function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def key_text(node: ast.expr | None) -> str | None:
    """A dict key or subscript as the page spells it: constants as they are, f-strings with <placeholders>."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else f"<{ast.unparse(v.value)}>" for v in node.values)
    return None


def dict_keys(node: ast.AST) -> list[str]:
    """The string keys of every dict literal under `node`, `**{...}` unpacked, in source order."""
    keys = []
    for d in (n for n in ast.walk(node) if isinstance(n, ast.Dict)):
        keys += [k for k in map(key_text, d.keys) if k is not None]
    return list(dict.fromkeys(keys))


def stored_keys(node: ast.AST, variable: str) -> list[str]:
    """Keys written as `variable[...] = ...` under `node`."""
    keys = [
        key_text(t.slice)
        for n in ast.walk(node)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == variable
    ]
    return [k for k in keys if k is not None]


def summary_keys() -> list[str]:
    collect = function(source_tree("fedfer.runs.records"), "collect")
    initial = next(
        n.value
        for n in ast.walk(collect)
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == "summary"
    )
    keys = dict_keys(initial) + stored_keys(collect, "summary") + stored_keys(collect, "reports")
    keys += [
        k for name in ("adapt_f", "run_study") for k in dict_keys(function(source_tree("fedfer.runs.study"), name))
    ]
    for module, name in (("fedfer.runs.simulate", "simulate_prepared"), ("fedfer.runs.deployment", "deploy_prepared")):
        returns = [n.value for n in ast.walk(function(source_tree(module), name)) if isinstance(n, ast.Return)]
        keys += [k for r in returns if r is not None for k in dict_keys(r)]
    return list(dict.fromkeys(keys))


def layout_notes() -> dict[str, str]:
    """The layout in `fedfer.rundir`'s docstring: each path (placeholders as <>) → what it says of it."""
    notes = {}
    for line in (rundir.__doc__ or "").splitlines():
        if line.startswith("    "):
            names, _, what = line.strip().partition("  ")
            for name in names.split(", "):
                notes[re.sub(r"<[^>]*>", "<>", name.rstrip("/"))] = what.strip()
    return notes


def paths_rows() -> list[list[str]]:
    """Every path `RunDir` names, relative to the run folder, with what it holds."""
    run, notes = rundir.RunDir(Path("RUN")), layout_notes()
    rows = []
    for name, member in vars(rundir.RunDir).items():
        if name.startswith("_") or not (isinstance(member, property) or inspect.isfunction(member)):
            continue
        if isinstance(member, property):
            path, doc = getattr(run, name), member.__doc__
        else:
            params = list(inspect.signature(member).parameters)[1:]
            path, doc = member(run, *(f"<{p}>" for p in params)), member.__doc__
        relative = str(path.relative_to(run.root))
        what = notes.get(re.sub(r"<[^>]*>", "<>", relative)) or (doc or "").split("\n")[0]
        what = what or (notes.get(str(path.parent.relative_to(run.root)), "") if path.suffix else "folder")
        rows.append([f"`{relative}`", f"`RunDir.{name}`", what])
    return rows


def comments(tree_source: str, names: set[str]) -> dict[str, str]:
    """`NAME = …  # comment` or `name: type = …  # comment` lines of a source: name → comment."""
    found = {}
    for line in tree_source.splitlines():
        m = re.match(r"\s*(\w+)\s*[:=][^#]*#\s*(.+)$", line)
        if m and m.group(1) in names:
            found[m.group(1)] = m.group(2).strip()
    return found


def round_log_rows() -> list[list[str]]:
    """rounds.json's keys, from `RoundLog.to_dict`, each with the field or property it comes from."""
    source = (REPO / "fedfer/federation/strategy.py").read_text()
    tree = ast.parse(source)
    log = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RoundLog")
    fields = {n.target.id for n in log.body if isinstance(n, ast.AnnAssign)}
    notes = comments(ast.get_source_segment(source, log) or "", fields)
    properties = {n.name: ast.get_docstring(n) or "" for n in log.body if isinstance(n, ast.FunctionDef)}
    to_dict = function(ast.Module(body=log.body, type_ignores=[]), "to_dict")
    result = next(n.value for n in ast.walk(to_dict) if isinstance(n, ast.Return))
    rows = []
    for key, value in zip(result.keys, result.values):
        pairs = zip(value.keys, value.values) if key is None and isinstance(value, ast.Dict) else [(key, value)]
        if key is None and not isinstance(value, ast.Dict):
            inner = next(n for n in ast.walk(value) if isinstance(n, ast.Dict) and n.keys)
            pairs = zip(inner.keys, inner.values)
        for k, v in pairs:
            used = [n.attr for n in ast.walk(v) if isinstance(n, ast.Attribute) and n.attr in fields | set(properties)]
            source_of = used[0] if used else ""
            summed = isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "sum"
            what = ROUND_KEYS.get(key_text(k) or "") or (None if summed else notes.get(source_of))
            what = what or " ".join(properties.get(source_of, "").split()) or f"`{ast.unparse(v)}`"
            rows.append([f"`{key_text(k)}`", what])
    return rows


def message_rows() -> list[list[str]]:
    """The metrics a client's replies carry (`fedfer.federation.protocol`)."""
    source = (REPO / "fedfer/federation/protocol.py").read_text()
    tree = ast.parse(source)
    values = {
        n.targets[0].id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.targets[0], ast.Name)
    }
    groups = {
        n.targets[0].id: [e.id for e in n.value.elts]
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple) and isinstance(n.targets[0], ast.Name)
    }
    notes = comments(source, set(values))
    where = {
        "TRAIN_METRICS": "train",
        "EVALUATE_METRICS": "evaluate",
        "LABEL_METRICS": "train with `scores-in-train` (the default), else evaluate; `client-eval` on",
        "SCORE_COUNT_METRICS": "train, `client-eval` and `scores-in-train` on",
    }
    return [
        [f"`{values[name]}`", reply, notes.get(name, "")]
        for group, reply in where.items()
        for name in groups.get(group, [])
    ]


def run_folder_page() -> str:
    layout = [line[4:] for line in (rundir.__doc__ or "").splitlines() if line.startswith("    ")]
    summary = [[f"`{k}`", SUMMARY_KEYS.get(k, "–")] for k in summary_keys()]
    entry = dict_keys(function(source_tree("fedfer.runs.records"), "round_entry"))
    lines = [
        generated_from(
            "`fedfer.rundir`, `fedfer.federation.strategy.RoundLog`, `fedfer.federation.protocol` and "
            "`fedfer.runs.records`"
        ),
        "",
        "# The run folder",
        "",
        "`fedfer run`, `fedfer prepare` and `fedfer deploy` write one folder per run, `results/<run>/` (`--results`, "
        "`--name`). `fedfer.rundir.RunDir` is the one place that names its files:",
        "",
        "```text",
        *layout,
        "```",
        "",
        *table(["path", "named by", "what it holds"], paths_rows()),
        "",
        "## server/rounds.json",
        "",
        "A list with one entry per round, written by the ServerApp's strategy after every round "
        "(`fedfer.federation.strategy.RoundLog`):",
        "",
        *table(["key", "what it holds"], round_log_rows()),
        "",
        "Each value of `clients` holds, per node, the metrics of its `train` and `evaluate` replies and, when the "
        "node failed, `error` with its reason. The metrics a client may send (`fedfer.federation.protocol`; the "
        "audit refuses anything else):",
        "",
        *table(["metric", "reply", "what it is"], message_rows()),
        "",
        "## summary.json",
        "",
        "Written with report.md and the plots when the federation ends (`fedfer.runs.report.write_report`). " + SCORES,
        "",
        *table(["key", "what it holds"], summary),
        "",
        "Each entry of `rounds` holds: " + ", ".join(f"`{k}`" for k in entry) + " (bytes and selected videos per "
        "subject, failures as subject → reason).",
    ]
    return "\n".join(lines) + "\n"
