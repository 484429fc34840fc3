"""The documentation as a user reads it: README.md and docs/.

Tables are data (docs/results/*.json) and reference pages are the code's (`python -m fedfer.publish`
writes both); every command a code block gives names a verb, script, flag, file and test that exist;
the site builds with mkdocs in strict mode; and the prose states what is true now, not its history.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from conftest import REPO

from fedfer import cli
from fedfer.publish import result_tables
from fedfer.publish.__main__ import build_parser, outputs, reference_pages
from fedfer.publish.reference import job_parsers, verb_parser

RESULTS = REPO / "docs" / "results"
DOCUMENTS = result_tables.documents(REPO)
GENERATED_PAGES = {REPO / path for path in reference_pages()}
HISTORY = re.compile(
    r"\b(before|earlier|predates?|predated|previously|used to|figures this README gave|an earlier run|targets?)\b",
    re.IGNORECASE,
)
STAMP = re.compile(r"^<sub>commit \S+ · .+ · load .+ · (world v\S+|no synthetic world).*</sub>$", re.MULTILINE)


def texts() -> dict[Path, str]:
    return {path: path.read_text() for path in DOCUMENTS}


def test_every_marked_table_is_what_its_json_renders_and_is_stamped() -> None:
    shown = set()
    for path, text in texts().items():
        assert result_tables.paste_tables(text, RESULTS) == text, f"{path}: run `python -m fedfer.publish`"
        for name, block in result_tables.marked_tables(text):
            shown.add(name.split("/")[0])
            if (RESULTS / f"{name.split('/')[0]}.json").is_file():
                assert block.startswith("| ") and STAMP.search(block), (path.name, name)
    assert {p.stem for p in RESULTS.glob("*.json")} <= shown  # every published file is on some page
    assert {"effect", "calibration"} <= shown  # the calibrated world's figures have their places


def test_generated_pages_are_what_the_code_renders_now() -> None:
    stale = [str(path.relative_to(REPO)) for path, text in outputs(REPO).items() if path.read_text() != text]
    assert stale == [], "run `python -m fedfer.publish`"


def test_results_files_of_each_form_render_with_their_stamp(tmp_path: Path) -> None:
    stamp = {"commit": "abc", "date": "2026-12-07", "machine": "2 cores", "load": 1.0, "world_version": 2}
    generic = {"stamp": {**stamp, "transcribed": True}, "tables": {"t": {"columns": ["a", "b"], "rows": [["x", 1]]}}}
    interval = {"mean": 0.5, "half_width": 0.02, "n": 9}
    paired = {"macro_f1": {"mean": 0.01, "half_width": 0.01, "n": 9}, "improved": 5, "unchanged": 1, "worse": 3}
    stage = {"macro_f1": interval, "neu_recall": interval, "vs_central": {**paired, "wilcoxon_p": 0.2}}
    stage["vs_paper"] = {**paired, "wilcoxon_p": 1.0}
    effect = {
        "stamp": {**stamp, "world_version": 3},
        "methods": {
            "paper": {"personalized": stage, "after_fedavg": stage, "labelled_clips": 6, "bytes_per_round": 847_128}
            | {"seconds": {"mean": 0.0571, "half_width": 0.0104, "n": 30}}
        },
    }
    row = {"statistic": "ties", "target": 0.063, "mean": 0.07, "ci": 0.01, "tolerance": 0.02, "ok": True}
    calibration = {"stamp": {**stamp, "world_version": 3}, "label_statistics": [row]}
    for name, data in (("generic", generic), ("effect", effect), ("calibration", calibration)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    page = "<!-- table: generic/t -->\n<!-- /table -->\n<!-- table: effect -->\n<!-- /table -->\n"
    page += "<!-- table: calibration/label_statistics -->\n<!-- /table -->\n<!-- table: missing -->\n<!-- /table -->\n"
    pasted = result_tables.paste_tables(page, tmp_path)
    assert "| x | 1 |" in pasted and "world v2 (uncalibrated)" in pasted and "· transcribed</sub>" in pasted
    assert "| paper | 50.0 ± 2.0 | +1.0 ± 1.0 |" in pasted and "5/1/3 (p 0.2)" in pasted
    assert "| 50.0 ± 2.0 | 6 | 0.06 ± 0.01 | 0.85 |" in pasted  # labelled clips, client s and MB per round
    assert "| ties | 6.3 | 7.0 ± 1.0 | ±2 | yes |" in pasted and "world v3</sub>" in pasted
    assert "No figures yet: `docs/results/missing.json`" in pasted
    assert result_tables.paste_tables(pasted, tmp_path) == pasted
    with pytest.raises(ValueError, match="no table 'u'"):
        result_tables.paste_tables("<!-- table: generic/u -->\n<!-- /table -->\n", tmp_path)


# ---------------------------------------------------------------- commands, files and test ids


def code_lines(text: str) -> list[str]:
    """The lines of the fenced code blocks of `text`, continued lines joined, comments dropped."""
    lines = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            lines.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return lines


def words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def flags(tokens: list[str]) -> set[str]:
    return {t.split("=")[0] for t in tokens if t.startswith("--")}


def options(parser) -> set[str]:
    return {o for action in parser._actions for o in action.option_strings}


@cache
def script_flags(script: str) -> frozenset[str]:
    """The flags `simulations/<script>` accepts: its own `--` literals and those of the sibling modules it
    imports, and the flags `study_args.study_parser` adds for the flag sets it asks for."""
    sys.path.insert(0, str(REPO / "simulations"))
    try:
        import study_args
    finally:
        sys.path.remove(str(REPO / "simulations"))
    tree = ast.parse((REPO / "simulations" / script).read_text())
    found = {"--help"}
    siblings = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} & {"study_args", "comm_report"}
    for module in [tree, *(ast.parse((REPO / "simulations" / f"{m}.py").read_text()) for m in siblings)]:
        found |= {n.value for n in ast.walk(module) if isinstance(n, ast.Constant) and str(n.value).startswith("--")}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "study_parser":
            given = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg == "flags"}
            found |= options(study_args.study_parser(None, out="x", flags=given.get("flags", "")))
    return frozenset(found)


def check_command(tokens: list[str]) -> list[str]:
    """What is wrong with one documented command line (empty: nothing)."""
    if tokens[0] == "fedfer" or tokens[:3] == ["python", "-m", "fedfer.cli"]:
        rest = tokens[1:] if tokens[0] == "fedfer" else tokens[3:]
        if not rest or rest[0] not in cli.VERBS:
            return [f"no verb: {' '.join(tokens)}"]
        parser, name = verb_parser(rest[0]), f"fedfer {rest[0]}"
        jobs = job_parsers(parser)
        if jobs:  # a verb of jobs: `fedfer lab certs ...`
            if len(rest) < 2 or rest[1] not in jobs:
                return [f"{name} names no job of {sorted(jobs)}: {' '.join(tokens)}"]
            parser, name = jobs[rest[1]], f"{name} {rest[1]}"
        return [f"{name} has no {f}" for f in sorted(flags(rest) - options(parser))]
    if tokens[:3] == ["python", "-m", "fedfer.publish"]:
        return [f"fedfer.publish has no {f}" for f in sorted(flags(tokens) - options(build_parser()))]
    if tokens[:2] == ["python", "-m"] and tokens[2].startswith("fedfer."):
        module = REPO / tokens[2].replace(".", "/")
        return [] if module.with_suffix(".py").is_file() or (module / "__main__.py").is_file() else [tokens[2]]
    if len(tokens) > 1 and tokens[0] == "python" and tokens[1].startswith("simulations/"):
        script = tokens[1].removeprefix("simulations/")
        if not (REPO / "simulations" / script).is_file():
            return [f"no script {tokens[1]}"]
        return [f"{tokens[1]} has no {f}" for f in sorted(flags(tokens) - script_flags(script))]
    return []


def test_every_documented_command_names_a_verb_script_and_flags_that_exist() -> None:
    checked, wrong = 0, []
    for path, text in texts().items():
        for line in code_lines(text):
            if line.startswith(("fedfer ", "python simulations/", "python -m fedfer")):
                checked += 1
                wrong += [f"{path.relative_to(REPO)}: {w}" for w in check_command(words(line))]
    assert checked > 40 and wrong == []


def test_every_cited_file_test_and_link_exists() -> None:
    wrong = []
    for path, text in texts().items():
        text = re.sub(r"<!-- table: .*?<!-- /table -->", "", text, flags=re.DOTALL)  # generated, checked above
        for file, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", text):
            if not re.search(rf"^def {name}\(", (REPO / file).read_text(), re.MULTILINE):
                wrong.append(f"{path.name}: {file}::{name}")
        for cited in re.findall(r"(?<![\w/.$-])((?:fedfer|simulations|tests|docker|docs)/[\w./-]*\w)", text):
            awaited = cited.startswith("docs/results/") and Path(cited).stem in result_tables.MAKERS
            if "<" not in cited and not awaited and not (REPO / cited).exists():
                wrong.append(f"{path.name}: {cited}")
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not link.startswith(("http://", "https://")) and not (path.parent / link).exists():
                wrong.append(f"{path.name}: link {link}")
    assert wrong == []


# ---------------------------------------------------------------- the site and the prose


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip('mkdocs-material is not installed (pip install -e ".[dev]" installs it)')
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(REPO / "mkdocs.yml")]
        + ["--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()


def prose(text: str) -> str:
    """`text` without code blocks, inline code, generated blocks and comments: what was written as prose."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"<!-- (table|generated): .*?<!-- /(table|generated) -->", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`]*`|<!--.*?-->", "", text, flags=re.DOTALL)


def test_the_prose_says_what_is_true_now_without_its_history() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}: {m.group(0)!r}"
        for path, text in texts().items()
        if path not in GENERATED_PAGES
        for n, line in enumerate(prose(text).splitlines(), 1)
        for m in HISTORY.finditer(line)
    ]
    assert found == [], "history belongs in CHANGELOG.md; 'target' needs saying what it is"


def test_the_readme_is_a_guide_of_at_most_250_lines() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move detail into docs/ and link it"
