"""The calibration: its label statistics on the real files, its knobs, its search, its mechanisms,
and the rule that it never loads anything that adapts."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, REPO

from fedfer.calibration.ideal import ideal_g, neutral_visibility, still_scores
from fedfer.calibration.knobs import Knob, apply, get, read
from fedfer.calibration.label_stats import label_statistics, plurality_label, read_voted_clips
from fedfer.calibration.planned import planned_label_statistics, voted
from fedfer.calibration.search import Evaluations, fit
from fedfer.synth.actors import Population, draw_style
from fedfer.synth.affectnet import plan_stills
from fedfer.synth.crema_d import plan_corpus
from fedfer.synth.presets import get_preset


def test_real_crema_d_label_statistics_match_the_published_figures() -> None:
    stats = label_statistics(read_voted_clips(DATA / "crema-d"))
    # face plurality agrees with the acted emotion on 70.6 ± 12.3% of each actor's labelled clips
    assert stats["face_actor_agreement_mean"] == pytest.approx(0.706, abs=0.001)
    assert stats["face_actor_agreement_sd"] == pytest.approx(0.123, abs=0.001)
    assert stats["face_share_tie"] == pytest.approx(470 / 7442, abs=1e-6)
    assert stats["face_share_NEU"] == pytest.approx(2076 / 7442, abs=1e-6)
    for intended in ("ANG", "HAP", "SAD"):
        row = [v for k, v in stats.items() if k.startswith(f"face_confusion_{intended}_")]
        assert sum(row) == pytest.approx(1.0)
    assert plurality_label((1, 2, 2, 0, 0, 0)) == "tie"


def test_knobs_reach_nested_fields_and_leave_the_preset_untouched() -> None:
    base = get_preset("tiny")
    values = {
        "crema_d.population.blends.HAP.SAD": 0.25,
        "crema_d.xx_intensity.1": 1.1,
        "affectnet.annotator.sharpness": 11.0,
        "crema_d.level_intensity.LO": 0.3,
    }
    changed = apply(base, values)
    assert read(changed, [Knob(k, 0, 1, "") for k in values]) == values
    assert changed.crema_d.population.blends == {**base.crema_d.population.blends, "HAP": {"SAD": 0.25}}
    assert changed.crema_d.level_intensity["MD"] == base.crema_d.level_intensity["MD"]
    assert get(base, "crema_d.population.blends.HAP.SAD") == 0.0  # never set: weighs nothing
    assert base.affectnet.annotator.sharpness != 11.0


def _quadratic(values: dict[str, float]) -> dict[str, float]:
    a, b = values["a"], values["b"]
    return {"x": a + 0.5 * b, "y": a - b, "z": a * a}


def test_gauss_newton_fits_a_known_simulator_and_logs_every_candidate(tmp_path) -> None:
    knobs = [Knob("a", -2.0, 2.0, ""), Knob("b", -2.0, 2.0, "")]
    targets = _quadratic({"a": 0.8, "b": -0.6})
    log = Evaluations(tmp_path / "c.jsonl", "toy")
    result = fit(_quadratic, knobs, {"a": 0.0, "b": 0.0}, targets, dict.fromkeys(targets, 0.01), log, iterations=8)
    assert result.values["a"] == pytest.approx(0.8, abs=0.02)
    assert result.values["b"] == pytest.approx(-0.6, abs=0.02)
    assert result.history[-1] < result.history[0]
    rows = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(rows) == len(log.rows) >= 3
    assert Evaluations(tmp_path / "c.jsonl", "toy").lookup(rows[0]["knobs"]) == rows[0]["statistics"]


def test_blended_portrayals_make_the_crowd_confuse_emotions() -> None:
    """A world whose anger portrayals blend in disgust gets anger clips labelled disgust; nothing else
    about the actors changes (common random numbers)."""
    small = dataclasses.replace(get_preset("small").crema_d, n_actors=20)
    plain_preset = dataclasses.replace(small, population=dataclasses.replace(small.population, blends={}))
    plain = label_statistics(voted(plan_corpus(plain_preset, get_preset("small").raters, 5)))
    blended_preset = dataclasses.replace(
        small, population=dataclasses.replace(small.population, blends={"ANG": {"DIS": 0.6}})
    )
    blended_clips = plan_corpus(blended_preset, get_preset("small").raters, 5)
    blended = label_statistics(voted(blended_clips))
    assert blended["face_confusion_ANG_DIS"] > plain["face_confusion_ANG_DIS"] + 0.1
    assert blended["face_confusion_HAP_HAP"] == plain["face_confusion_HAP_HAP"]


def test_actor_draws_do_not_depend_on_the_shares() -> None:
    a = draw_style(np.random.default_rng(3), Population(p_resting_look=0.0))
    b = draw_style(np.random.default_rng(3), Population(p_resting_look=1.0))
    assert a.resting_look == "" and b.resting_look != ""
    assert a.expressivity == b.expressivity and a.substitutions == b.substitutions
    assert a.head_motion == b.head_motion


def test_common_expressiveness_spreads_actors_agreement() -> None:
    crema = dataclasses.replace(get_preset("small").crema_d, n_actors=40)
    sd = {}
    for spread in (0.0, 0.8):
        preset = dataclasses.replace(
            crema, population=dataclasses.replace(crema.population, expressivity_common_sd=spread)
        )
        sd[spread] = label_statistics(voted(plan_corpus(preset, get_preset("small").raters, 1)))[
            "face_actor_agreement_sd"
        ]
    assert sd[0.8] > sd[0.0] + 0.02


def test_the_ideal_teacher_scores_stills_and_sees_neutral_where_faces_are_blank() -> None:
    world = get_preset("tiny")
    train, valid = plan_stills(dataclasses.replace(world.affectnet, n_train=600, valid_per_class=20), 0)
    g = ideal_g(train, 6, world.affectnet.annotator)
    scores = still_scores(g, valid)
    assert scores["macro"]["f1"] > 100 / 6 + 10  # far above chance
    blank = dataclasses.replace(
        world.crema_d, population=dataclasses.replace(world.crema_d.population, p_resting_look=0.0, p_resting_extra=0.0)
    )
    clips = plan_corpus(blank, world.raters, 0)
    labels = ["NEU" if c.emotion == "NEU" else c.emotion for c in clips]
    seen = neutral_visibility(g, clips, labels, 0.5)
    assert seen["neutral_recall"] > 0.5
    assert sum(seen["p_neu_histogram"]) == sum(lab == "NEU" for lab in labels)


def test_planned_statistics_are_deterministic_and_follow_the_knobs() -> None:
    a = planned_label_statistics({}, preset="tiny", seeds=(1,))
    assert a == planned_label_statistics({}, preset="tiny", seeds=(1,))
    stricter = planned_label_statistics({"raters.neutral_threshold": 0.6}, preset="tiny", seeds=(1,))
    assert stricter["face_share_NEU"] > a["face_share_NEU"]


def test_the_calibration_runner_loads_nothing_that_adapts() -> None:
    """The runner and the calibration package import no personalization, pseudo-labelling, federation
    or Flower module, directly or through anything they import."""
    runner = str(REPO / "simulations" / "calibrate_world.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('runner', {runner!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "import fedfer.calibration.calibration_report, fedfer.calibration.rendered\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    forbidden = (
        "fedfer.model.pseudo",
        "fedfer.model.personalize",
        "fedfer.federation",
        "flwr",
        "fedfer.paper.adaptation",
    )
    assert not [m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert "fedfer.calibration.search" in loaded
