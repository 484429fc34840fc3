"""Configuration in one place: each run-config key declared once (fedfer.runconfig), pyproject.toml
repeating its defaults, the flags made from the same declarations."""

import ast
import tomllib

import pytest
from conftest import REPO

from fedfer import cli
from fedfer.runconfig import FederationConfig, PersonalizeConfig
from fedfer.runs.options import options_from_args
from fedfer.settings import declared


def test_pyproject_holds_the_declared_keys_with_their_defaults_in_order() -> None:
    """`[tool.flwr.app.config]` is the declaration's defaults, key for key and in the same order, and
    a typo is an error rather than a silent default."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert list(pyproject.items()) == list(FederationConfig().to_run_config().items())
    assert FederationConfig.from_run_config(pyproject) == FederationConfig()
    with pytest.raises(ValueError, match="max-per-clas"):
        FederationConfig.from_run_config({**pyproject, "max-per-clas": 3})


def test_a_kebab_case_key_is_written_once_in_the_package() -> None:
    """A hyphenated key appears as a string literal in fedfer/runconfig.py only: every other module
    reaches it through the declaration (single-word keys double as ordinary words and are not checked)."""
    keys = [d.setting.key for d in declared(FederationConfig) if "-" in d.setting.key]
    sources = [*(REPO / "fedfer").rglob("*.py"), REPO / "server_app.py", REPO / "client_app.py"]
    holders: dict[str, list[str]] = {key: [] for key in keys}
    for path in sources:
        literals = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        for key in keys:
            if key in literals:
                holders[key].append(str(path.relative_to(REPO)))
    assert {key: files for key, files in holders.items() if files != ["fedfer/runconfig.py"]} == {}


def test_flags_are_spelled_as_their_keys_and_keep_the_declared_defaults() -> None:
    parse = cli.build_parser(["run"]).parse_args
    assert options_from_args(parse(["run"])).federation == FederationConfig()
    given = options_from_args(
        parse(["run", "--max-per-class", "7", "--num-server-rounds", "3", "--learning-rate", "0.01", "--seed", "4"])
    ).federation
    assert given.personalize == PersonalizeConfig(max_per_class=7, lr=0.01, seed=4) and given.num_server_rounds == 3
    short = options_from_args(parse(["run", "-P", "7", "--rounds", "3", "--lr", "0.01", "--seed", "4"])).federation
    assert short == given
    codecs = options_from_args(parse(["run", "--codec", "float16", "--codec-down", "int8"])).federation
    assert (codecs.codec_up, codecs.codec_down) == ("float16", "int8")
    beyond = options_from_args(parse(["run", "--teacher-shift", "em", "--adabn", "--local-labels", "soft"]))
    assert beyond.federation.personalize == PersonalizeConfig(teacher_shift="em", adabn=True, local_labels="soft")


def test_a_bad_flag_value_is_refused_naming_the_key() -> None:
    parse = cli.build_parser(["run"]).parse_args
    with pytest.raises(ValueError, match=r"p-threshold = 1\.5 \(expected a probability in \[0, 1\)\)"):
        options_from_args(parse(["run", "--p-threshold", "1.5"]))
    with pytest.raises(SystemExit):  # a closed set of values is argparse's own check
        parse(["run", "--aggregation", "mean"])
