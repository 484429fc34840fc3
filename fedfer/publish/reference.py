"""Reference pages written from the code: the command line (`fedfer.cli.build_parser`) and every
run-config key (the declarations of `fedfer.runconfig.FederationConfig`); the run folder's page is
`fedfer.publish.run_folder`'s. Each page says where it came from and how to write it again."""

from __future__ import annotations

import argparse
import functools
import json
import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from fedfer import cli
from fedfer.publish.result_tables import outside_code
from fedfer.runconfig import FederationConfig
from fedfer.settings import Declared, declared

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "python -m fedfer.publish"
WIDTH = 100  # columns of the usage lines, whatever the terminal that writes the page


def generated_from(source: str) -> str:
    return f"<!-- Generated from {source} by `{REGENERATE}`: edit the code, not this page. -->"


def cell(text: Any) -> str:
    """`text` as one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


# ---------------------------------------------------------------- the command line


def verb_parser(verb: str) -> argparse.ArgumentParser:
    """`fedfer <verb>`'s own parser, with its flags, laid out at a fixed width."""
    root = cli.build_parser([verb])
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[verb]
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=WIDTH)
    return parser


def job_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of a verb's jobs (`fedfer lab certs`), laid out like the verb's; empty for a verb without."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    jobs = dict(sub.choices) if sub is not None else {}
    for job in jobs.values():
        job.formatter_class = parser.formatter_class
    return jobs


def flag_rows(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[list[str]]:
    formatter = parser._get_formatter()
    rows = []
    for action in actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.nargs == 0:
            default = "switch"
        elif action.default in (None, argparse.SUPPRESS) or not action.option_strings:
            default = "–"
        else:
            default = f"`{' '.join(map(str, action.default)) if isinstance(action.default, list) else action.default}`"
        text = formatter._expand_help(action) if action.help else ""
        if action.choices is not None and not all(str(c) in text for c in action.choices):
            text += " (one of: " + ", ".join(f"`{c}`" for c in action.choices) + ")"
        rows.append([names, default, text])
    return rows


def verbs_table() -> str:
    """The verbs and what each does, as `fedfer --help` lists them."""
    return "\n".join(table(["verb", "what it does"], [[f"`fedfer {v}`", s] for v, s in cli.VERBS.items()]))


def cli_page() -> str:
    lines = [
        generated_from("`fedfer.cli.build_parser`"),
        "",
        "# Command line: `fedfer`",
        "",
        "One verb per stage. `fedfer VERB --help` prints the same flags; errors name the value and the remedy "
        "(`FEDFER_DEBUG=1` shows the traceback).",
        "",
        verbs_table(),
    ]
    for verb in cli.VERBS:
        parser = verb_parser(verb)
        lines += ["", f"## fedfer {verb}", "", *parser_section(parser)]
        for job, job_parser in job_parsers(parser).items():
            lines += ["", f"### fedfer {verb} {job}", "", *parser_section(job_parser)]
    return "\n".join(lines) + "\n"


def parser_section(parser: argparse.ArgumentParser) -> list[str]:
    """A parser's description, usage line and flag tables (its jobs' are sections of their own)."""
    lines = [parser.description or "", "", "```text", parser.format_usage().strip(), "```"]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._SubParsersAction)]
        rows = flag_rows(parser, actions)
        if not rows:
            continue
        title = {"options": "options", "positional arguments": "arguments"}.get(group.title or "", group.title)
        lines += ["", f"**{title}**", "", *table(["flag", "default", "what it does"], rows)]
    return lines


# ---------------------------------------------------------------- the run config


def toml_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | bool) else repr(value)


def flags_of(d: Declared, available: set[str]) -> str:
    """The `fedfer run` flags of a setting, as far as `fedfer run --help` lists them."""
    s = d.setting
    spelled = f"--no-{s.key}" if d.kind is bool and d.default else f"--{s.key}"
    given = [f for f in (spelled, *s.aliases) if s.flag and f in available]
    return ", ".join(f"`{f}`" for f in given) or "–"


def config_sections() -> list[tuple[str, str, list[Declared]]]:
    """(title, what the section's config holds, its settings), in declaration order."""
    config = FederationConfig()
    nested = {f.name: type(getattr(config, f.name)) for f in fields(config) if is_dataclass(f.default)}
    sections: dict[str, tuple[str, str, list[Declared]]] = {}
    for d in declared(FederationConfig):
        holder = d.path[0] if len(d.path) > 1 else ""
        kind = nested.get(holder, FederationConfig)
        title = f"{kind.__name__} (`{'.'.join(d.path[:-1])}`)" if holder else "FederationConfig"
        sections.setdefault(holder, (title, first_paragraph(kind.__doc__), []))[2].append(d)
    return list(sections.values())


def run_config_page() -> str:
    lines = [
        generated_from("the declarations of `fedfer.runconfig.FederationConfig` (`fedfer.settings.setting`)"),
        "",
        "# Run configuration",
        "",
        "Every key of a federation's run config, declared once in `fedfer/runconfig.py`. The same keys are "
        "`[tool.flwr.app.config]` in `pyproject.toml` (the defaults, for a bare `flwr run .`), the "
        "`run_config.toml` that `fedfer prepare` writes into a run folder, and, where a flag is listed (as "
        "`fedfer run --help` lists it), flags of `fedfer run`, `fedfer prepare` and `fedfer deploy`. A key without "
        "a flag is set in the run config that `flwr run --run-config` reads. A switch's flag turns it off when it "
        "is on by default (`--no-KEY`). A value outside what a key accepts is refused, naming the key.",
    ]
    run = verb_parser("run")
    available = {o for action in run._actions for o in action.option_strings}
    for title, doc, settings in config_sections():
        lines += ["", f"## {title}", ""] + ([doc, ""] if doc else [])
        rows = [
            [
                f"`{d.setting.key}`",
                f"`{toml_value(d.default)}`",
                d.accepts_text(),
                flags_of(d, available),
                d.setting.help,
            ]
            for d in settings
        ]
        lines += table(["key", "default", "accepts", "flag", "what it does"], rows)
    return "\n".join(lines) + "\n"


GENERATED = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- /generated -->)", re.DOTALL)
BLOCKS = {"verbs": verbs_table}  # blocks a page may hold between `generated` markers


def paste_generated(text: str) -> str:
    """`text` with every block between `<!-- generated: NAME -->` and `<!-- /generated -->` written again."""
    return outside_code(
        text, lambda t: GENERATED.sub(lambda m: m.group(1) + BLOCKS[m.group(2)]() + "\n" + m.group(4), t)
    )
