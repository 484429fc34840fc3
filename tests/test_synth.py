"""The synthetic world: layout, determinism, resumption, label statistics, detectability."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fedfer.data.datasets import EMOTIONS_6
from fedfer.synth import MANIFEST, PRESETS, render_world
from fedfer.synth.crema_d import plan_corpus
from fedfer.synth.expression import Envelope, syllables
from fedfer.synth.raters import face_evidence, perceived_expression, plurality

# The tiny preset: 8 actors × (IEO at HI + DFA) × 6 emotions = 12 clips each.
TINY_CLIPS = PRESETS["tiny"].crema_d.n_actors * 12

# A world small enough to render several times per test: one actor, one sentence, CREMA-D only.
MICRO = dataclasses.replace(
    PRESETS["tiny"], name="micro", crema_d=dataclasses.replace(PRESETS["tiny"].crema_d, n_actors=1, sentences=("DFA",))
)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


# ---------------------------------------------------------------- layout


def test_crema_d_layout_matches_the_real_corpus(tiny_world: Path) -> None:
    root = tiny_world / "crema_d"
    names = sorted(p.stem for p in (root / "VideoFlash").glob("*.flv"))
    assert len(names) == TINY_CLIPS
    assert "1001_IEO_NEU_XX" in names and "1001_IEO_HAP_HI" in names and "1001_DFA_SAD_XX" in names
    with (root / "VideoDemographics.csv").open() as f:
        demo = list(csv.DictReader(f))
    assert [d["ActorID"] for d in demo] == [str(a) for a in range(1001, 1009)]
    assert Counter(d["Sex"] for d in demo) == {"Male": 4, "Female": 4}
    with (root / "SentenceFilenames.csv").open() as f:
        listed = [r["Filename"] for r in csv.DictReader(f)]
    assert sorted(listed) == names


def test_videos_are_480x360_and_as_long_as_planned(tiny_world: Path) -> None:
    root = tiny_world / "crema_d"
    truth = {r["clip"]: r for r in csv.DictReader((root / "_truth" / "items.csv").open())}
    cap = cv2.VideoCapture(str(root / "VideoFlash" / "1002_IEO_ANG_HI.flv"))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1])
    assert frames[0].shape == (360, 480, 3)
    assert len(frames) == int(truth["1002_IEO_ANG_HI"]["n_frames"])


def test_real_crema_d_reader_loads_the_synthetic_corpus(tiny_world: Path) -> None:
    from fedfer.data.datasets.crema_d import load_crema_d

    clips = load_crema_d(tiny_world / "crema_d", label_mode="av")
    assert len(clips) == TINY_CLIPS
    assert {c.actor for c in clips} == {str(a) for a in range(1001, 1009)}
    assert all(c.path.is_file() for c in clips)
    assert sum(c.label is not None for c in clips) > 50


def test_tabulated_votes_and_summary_table_agree(tiny_world: Path) -> None:
    root = tiny_world / "crema_d" / "processedResults"
    rows = list(csv.reader((root / "tabulatedVotes.csv").open()))
    header, body = rows[0], rows[1:]
    assert header[:11] == ["", "A", "D", "F", "H", "N", "S", "fileName", "numResponses", "agreement", "emoVote"]
    assert len(body) == 3 * TINY_CLIPS
    votes = {(int(r[0]) // 100000, int(r[0]) % 100000): r for r in body}
    columns = {1: ("VoiceVote", "VoiceLevel"), 2: ("FaceVote", "FaceLevel"), 3: ("MultiModalVote", "MultiModalLevel")}
    resp = dict(
        zip(
            "ADFHNS",
            ("meanAngerResp", "meanDisgustResp", "meanFearResp", "meanHappyResp", "meanNeutralResp", "meanSadResp"),
        )
    )
    for s in csv.DictReader((root / "summaryTable.csv").open()):
        for qt, (vote_col, level_col) in columns.items():
            row = votes[(qt, int(s[""]))]
            assert row[7] == s["FileName"]
            counts = [int(x) for x in row[1:7]]
            assert 6 <= sum(counts) == int(row[8]) <= 12
            assert row[10] == s[vote_col] == ":".join(L for L, c in zip("ADFHNS", counts) if c == max(counts))
            levels = [float(x) for x in s[level_col].split(":")]
            expected = [float(row[header.index(resp[L])]) for L in s[vote_col].split(":")]
            assert np.allclose(levels, expected, atol=0.006)


def test_affectnet_and_msp_improv_layouts(tiny_world: Path) -> None:
    lists = tiny_world / "affectnet" / "Manually_Annotated_file_lists"
    first = (lists / "training.csv").read_text().splitlines()[0]
    assert first.split(",") == [
        "subDirectory_filePath",
        "face_x",
        "face_y",
        "face_width",
        "face_height",
        "facial_landmarks",
        "expression",
        "valence",
        "arousal",
    ]
    codes = Counter(int(line.split(",")[6]) for line in (lists / "training.csv").read_text().splitlines()[1:])
    assert codes[3] > 0 and codes[7] > 0  # Surprise and Contempt rows, which the task readers drop
    msp = tiny_world / "msp_improv"
    assert (msp / "Evalution.txt").is_file()
    assert len(list((msp / "Video").rglob("*.avi"))) == 12 * 4


def test_truth_sidecar_describes_every_clip_and_actor(tiny_world: Path) -> None:
    truth = tiny_world / "crema_d" / "_truth"
    rows = list(csv.DictReader((truth / "items.csv").open()))
    assert len(rows) == TINY_CLIPS
    mixture = np.array([[float(r[f"expressed_{e}"]) for e in EMOTIONS_6] for r in rows])
    assert np.allclose(mixture.sum(1), 1.0, atol=1e-3)
    actors = json.loads((truth / "actors.json").read_text())
    assert set(actors) == {str(a) for a in range(1001, 1009)}
    assert {"expressivity", "resting", "substitutions"} <= set(actors["1001"]["style"])


# ---------------------------------------------------------------- determinism, idempotence, resumption


def test_same_seed_gives_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    render_world(MICRO, 3, tmp_path / "a", corpora=["crema_d"], workers=1, progress=False)
    render_world(MICRO, 3, tmp_path / "b", corpora=["crema_d"], workers=2, progress=False)
    render_world(MICRO, 4, tmp_path / "c", corpora=["crema_d"], workers=1, progress=False)
    a, b, c = (_files(tmp_path / x / "crema_d") for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["VideoFlash/1001_DFA_HAP_XX.flv"] != c["VideoFlash/1001_DFA_HAP_XX.flv"]
    assert a["processedResults/tabulatedVotes.csv"] != c["processedResults/tabulatedVotes.csv"]


def test_finished_corpus_is_skipped_and_a_different_seed_refused(tiny_world: Path) -> None:
    again = render_world("tiny", 0, tiny_world, progress=False)
    assert all(m["skipped"] for m in again.values())
    with pytest.raises(ValueError, match="seed 0"):
        render_world("tiny", 1, tiny_world, corpora=["crema_d"], progress=False)


def test_a_world_from_another_generator_version_is_refused(tmp_path: Path) -> None:
    """A world rendered by an older generator is not silently reused: its caches would mix worlds."""
    render_world(MICRO, 0, tmp_path, corpora=["crema_d"], workers=1, progress=False)
    manifest = tmp_path / "crema_d" / MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "world_version": 1}))
    with pytest.raises(ValueError, match="world version 1"):
        render_world(MICRO, 0, tmp_path, corpora=["crema_d"], workers=1, progress=False)


def test_interrupted_render_resumes(tmp_path: Path) -> None:
    first = render_world(MICRO, 0, tmp_path, corpora=["crema_d"], workers=1, progress=False)["crema_d"]
    root = tmp_path / "crema_d"
    before = _files(root)
    (root / MANIFEST).unlink()  # as if killed before finishing
    (root / "VideoFlash" / "1001_DFA_ANG_XX.flv").unlink()
    (root / "VideoFlash" / ".1001_DFA_FEA_XX.partial.flv").write_bytes(b"half a video")
    resumed = render_world(MICRO, 0, tmp_path, corpora=["crema_d"], workers=1, progress=False)["crema_d"]
    assert first["rendered_now"] == 6 and resumed["rendered_now"] == 1
    assert _files(root) == before


def test_cli_reports_a_finished_world(tiny_world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fedfer.cli import main

    assert main(["synth", "--preset", "tiny", "--seed", "0", "--out", str(tiny_world), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "crema_d" in out and "skipped" in out


# ---------------------------------------------------------------- the world's properties


@pytest.fixture(scope="module")
def small_plan_40() -> list:
    """The planned clips (takes and ratings, no pixels) of the small preset with 40 actors."""
    preset = PRESETS["small"]
    return plan_corpus(dataclasses.replace(preset.crema_d, n_actors=40), preset.raters, seed=0)


def test_small_preset_labels_look_like_crema_d(small_plan_40: list) -> None:
    """Face plurality vs intended 55-80% (real 66%), ties 3-10% (real 6%), neutral the largest
    perceived class, 6-12 raters: from the planned ratings of 40 actors (no pixels needed)."""
    clips = small_plan_40
    tops = [plurality(c.ratings["face"].counts, EMOTIONS_6) for c in clips]
    agree = np.mean([t == [c.emotion] for t, c in zip(tops, clips)])
    ties = np.mean([len(t) > 1 for t in tops])
    perceived = Counter(t[0] for t in tops if len(t) == 1)
    assert 0.55 <= agree <= 0.8
    assert 0.03 <= ties <= 0.1
    assert perceived.most_common(1)[0][0] == "NEU"
    assert all(6 <= c.ratings["face"].counts.sum() <= 12 for c in clips)
    frames_per_actor = sum(len(c.take.plan.aus) for c in clips) / 40
    assert frames_per_actor * 91 <= 45_000  # the quick-start's budget for face detection and f()


def test_raters_discount_a_resting_face_that_every_frame_carries() -> None:
    """Actors whose resting face looks like an emotion: in their neutral clips every frame shows
    that look as strongly as a mild expression, yet the crowd, which sees the face before the
    emotion would arrive, calls the clip neutral. Frames alone cannot tell; the clip can."""
    preset = PRESETS["small"]
    clips = plan_corpus(dataclasses.replace(preset.crema_d, n_actors=30), preset.raters, seed=0)
    resting = [c for c in clips if c.emotion == "NEU" and c.actor.style.resting_look]
    assert len(resting) >= 10  # a fifth of the actors have one (CREMA_D_POPULATION.p_resting_look)
    look_in_frames = [face_evidence(c.take.plan.aus.mean(axis=0), (c.actor.style.resting_look,))[0] for c in resting]
    assert np.median(look_in_frames) >= 0.25
    called_neutral = np.mean([plurality(c.ratings["face"].counts, EMOTIONS_6) == ["NEU"] for c in resting])
    assert called_neutral >= 0.8


def test_raters_read_an_actors_substituted_cues_as_meant(small_plan_40: list) -> None:
    """An actor who shows an emotion through another channel (e.g. sadness in the brows) is still
    read as meaning that emotion, more often than the population's prototypes would say."""
    clips = small_plan_40
    substituted = [
        c for c in clips if c.intensity > 0.5 and any(s[0] == c.emotion for s in c.actor.style.substitutions)
    ]
    assert len(substituted) >= 20
    k = [EMOTIONS_6.index(c.emotion) for c in substituted]
    expression = [perceived_expression(c.take.plan.aus, c.take.onset) for c in substituted]
    own = np.mean(
        [face_evidence(e, EMOTIONS_6, c.actor.style.cue_prototype)[i] for e, c, i in zip(expression, substituted, k)]
    )
    population = np.mean([face_evidence(e, EMOTIONS_6)[i] for e, i in zip(expression, k)])
    assert own > population + 0.05


def test_face_is_detected_in_almost_every_frame(tiny_world: Path) -> None:
    from fedfer.data.faces import open_detector, resolve_detector
    from fedfer.data.video import iter_frames

    spec = resolve_detector("mediapipe")
    if spec.kind != "mediapipe":
        pytest.skip("BlazeFace model unavailable (run `fedfer models`)")
    videos = sorted((tiny_world / "crema_d" / "VideoFlash").glob("*.flv"))[::4]
    videos += sorted((tiny_world / "msp_improv" / "Video").rglob("*.avi"))[::4]
    found = total = 0
    with open_detector(spec) as detector:
        for path in videos:
            _, frames = iter_frames(path)
            for rgb in frames:
                total += 1
                found += detector.detect(rgb) is not None
    assert found / total >= 0.95, f"face found in {found}/{total} frames"


def test_speech_moves_the_mouth_and_expressions_rise_from_neutral() -> None:
    syl = syllables("Don't forget a jacket")
    assert len(syl) == 6 and any(s.bilabial for s in syllables("Maybe tomorrow"))
    curve = Envelope(onset=5, apex=10, offset=20).curve(30)
    assert curve[:6].max() == 0.0 and curve[10:21].min() == 1.0 and 0.0 < curve[-1] < 1.0
    clips = plan_corpus(MICRO.crema_d, MICRO.raters, seed=0)
    neutral = next(c for c in clips if c.emotion == "NEU")
    assert neutral.take.plan.speech[:, 0].max() > 0.3  # the jaw moves in a neutral clip too
