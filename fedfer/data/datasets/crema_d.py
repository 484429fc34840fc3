"""CREMA-D in its release layout: clips, perceived-emotion labels and actor metadata.

The layout is the one of github.com/CheyneyComputerScience/CREMA-D:

    root/VideoFlash/<clip>.flv            the videos (fedfer's synthetic corpus writes .mp4)
    root/processedResults/tabulatedVotes.csv   vote counts per clip and rating modality
    root/processedResults/summaryTable.csv     the pluralities, used to check the counts
    root/VideoDemographics.csv            age and sex of the 91 actors

Labels come from the crowd votes, not from a derived table: in tabulatedVotes.csv the row id is
100000 * queryType + clipNum (queryType 1 voice only, 2 face only, 3 audio-visual) and the columns
A D F H N S count the raters who chose each emotion. The paper labels a clip by the plurality of
its audio-visual votes (`label_mode="av"`); seed 002 uses the face-only votes, kept as a
distribution (`"distribution"`); `"intended"` is the acted emotion in the file name.

Ties. 470 clips (face) and 420 (audio-visual) have no single plurality. The default policy,
`ties="exclude"`, leaves their label None: the raters disagreed, and any tie-break would put a label
on the clip that the crowd did not give (breaking ties towards the acted emotion, for example,
inflates the very agreement between perceived and intended emotion the crowd labels exist to
measure). Such clips are still returned, so a client can use them as unlabeled videos, but they do
not enter supervised training or evaluation. `ties="intended"` breaks a tie in favour of the
intended emotion when it is among the tied ones (else the label stays None), for studies that want
more labeled clips.

4-class task (ANG, HAP, NEU, SAD): the plurality is taken over all six emotions first, and a clip
whose label is DIS or FEA gets no label: a clip most raters saw as disgust is no evidence for the
runner-up. It stays in the corpus as an unlabeled video: a subject's device cannot know which of its
videos show a class outside the task, so its pseudo-labelling pool holds them all (g() predicts only
the task's classes); only training and scoring skip them.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fedfer.data.datasets import EMOTIONS_6, Clip, task_classes
from fedfer.io import read_csv

LABEL_MODES: tuple[str, ...] = ("intended", "face", "av", "distribution")
TIE_POLICIES: tuple[str, ...] = ("exclude", "intended")
MODALITIES: dict[int, str] = {1: "voice", 2: "face", 3: "av"}  # queryType → name
VOTE_COLUMNS: tuple[str, ...] = ("A", "D", "F", "H", "N", "S")  # in EMOTIONS_6 order
VIDEO_DIR = "VideoFlash"
VIDEO_SUFFIXES: tuple[str, ...] = (".flv", ".mp4")
VOTES_FILE = Path("processedResults") / "tabulatedVotes.csv"
SUMMARY_FILE = Path("processedResults") / "summaryTable.csv"
DEMOGRAPHICS_FILE = Path("VideoDemographics.csv")

# Media the corpus' own README reports as broken. They are kept (the labels are fine, and dropping
# them would change the corpus' documented counts) unless `drop_broken=True`.
KNOWN_BROKEN: dict[str, str] = {
    "1076_MTI_NEU_XX": "very short or broken video",
    "1076_MTI_SAD_XX": "very short or broken video",
    "1064_TIE_SAD_XX": "zero duration",
    "1064_IEO_DIS_MD": "about one minute long, holds every IEO take",
}

_REMEDY = (
    "Use the files of github.com/CheyneyComputerScience/CREMA-D (plain CSVs in the repository) or "
    "re-render the synthetic corpus with `fedfer synth`."
)
_LFS_REMEDY = (
    "CREMA-D's videos are stored in Git LFS: clone with `git lfs clone "
    "https://github.com/CheyneyComputerScience/CREMA-D` (or `git lfs pull` inside a plain clone), or "
    "use the mirror https://gitlab.com/cs-cooper-lab/crema-d-mirror; pass require_video=False to "
    "read labels only."
)
CLIP_NAME = re.compile(r"^(?P<actor>\d+)_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


def speaker_of(path: Path) -> str | None:
    """The actor of a CREMA-D clip from its file name (1001_DFA_ANG_XX → 1001), else the video's folder."""
    match = CLIP_NAME.match(path.stem)
    return match["actor"] if match else (path.parent.name or None)


_GENDERS = {"Male": "M", "Female": "F"}


class BrokenClipWarning(UserWarning):
    """A clip whose media the corpus documents as broken is part of the loaded set."""


@dataclass(frozen=True)
class LabelStatistics:
    """How a labeling of CREMA-D distributes over the classes.

    ties counts clips whose label votes tie at the top (before the tie policy); unlabelled counts
    clips left with label None; agree_with_intended counts labelled clips whose label is the acted
    emotion.
    """

    classes: tuple[str, ...]
    counts: dict[str, int]
    clips: int
    actors: int
    ties: int
    unlabelled: int
    agree_with_intended: int

    @property
    def labelled(self) -> int:
        return self.clips - self.unlabelled

    def to_dict(self) -> dict:
        return {**asdict(self), "labelled": self.labelled}


def read_votes(root: str | Path) -> dict[str, dict[str, tuple[int, ...]]]:
    """Vote counts per clip: {clip_id: {"voice"|"face"|"av": counts in EMOTIONS_6 order}}.

    Clips come in clipNum order. The counts are checked against summaryTable.csv's pluralities, so
    a shifted or edited vote table is reported instead of silently relabeling clips.
    """
    root = Path(root)
    path = root / VOTES_FILE
    rows = read_csv(path, ("", *VOTE_COLUMNS, "fileName"), _REMEDY)
    votes: dict[str, dict[str, tuple[int, ...]]] = {}
    numbers: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        row_id = _integer(row[""], path, line, "row id")
        modality = MODALITIES.get(row_id // 100000)
        if modality is None:
            raise ValueError(
                f"{path}, line {line}: row id {row_id} has queryType {row_id // 100000}; expected "
                "100000 * queryType + clipNum with queryType 1 (voice), 2 (face) or 3 (audio-visual)."
            )
        clip = row["fileName"]
        if modality in votes.setdefault(clip, {}):
            raise ValueError(f"{path}, line {line}: second {modality} row for clip {clip}.")
        votes[clip][modality] = tuple(_integer(row[c], path, line, c) for c in VOTE_COLUMNS)
        numbers[clip] = row_id % 100000
    for clip, by_modality in votes.items():
        absent = [m for m in MODALITIES.values() if m not in by_modality]
        if absent:
            raise ValueError(
                f"{path}: clip {clip} has no {', '.join(absent)} rows; every clip needs voice (1xxxxx), "
                f"face (2xxxxx) and audio-visual (3xxxxx) rows. {_REMEDY}"
            )
    _check_against_summary(root / SUMMARY_FILE, votes)
    return dict(sorted(votes.items(), key=lambda item: numbers[item[0]]))


def read_demographics(root: str | Path) -> dict[str, dict[str, str | int]]:
    """{actor id: {"gender": "M"|"F", "age": years}} from VideoDemographics.csv."""
    path = Path(root) / DEMOGRAPHICS_FILE
    actors: dict[str, dict[str, str | int]] = {}
    for line, row in enumerate(read_csv(path, ("ActorID", "Age", "Sex"), _REMEDY), start=2):
        if row["Sex"] not in _GENDERS:
            raise ValueError(f"{path}, line {line}: Sex {row['Sex']!r}; expected one of {sorted(_GENDERS)}.")
        age = _integer(row["Age"], path, line, "Age")
        actors[row["ActorID"].strip()] = {"gender": _GENDERS[row["Sex"]], "age": age}
    return actors


def load_crema_d(
    root: str | Path,
    label_mode: str = "av",
    num_classes: int = 6,
    ties: str = "exclude",
    require_video: bool = True,
    distribution_source: str = "face",
    drop_broken: bool = False,
) -> list[Clip]:
    """Every clip of a CREMA-D-layout directory, labeled for the 4- or 6-class task.

    label_mode: "av" (audio-visual plurality, the paper's labels), "face" (face-only plurality),
    "intended" (acted emotion) or "distribution" (plurality of `distribution_source` votes, with
    the counts in `Clip.votes`, restricted to the task's classes).
    ties: "exclude" or "intended" (see the module docstring for why "exclude" is the default).
    require_video: fail unless every clip's video is in root/VideoFlash; False reads labels only,
    with `Clip.path` where the video would be.
    Clip.meta: sentence, level, gender, age, votes ({"voice"|"face"|"av": six counts in
    EMOTIONS_6 order}) and tied (the emotions tied at the top of the label's votes, else empty).
    """
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode={label_mode!r}; expected one of {LABEL_MODES}")
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties={ties!r}; expected one of {TIE_POLICIES}")
    if distribution_source not in ("face", "av"):
        raise ValueError(f"distribution_source={distribution_source!r}; expected 'face' or 'av'")
    classes = task_classes(num_classes)
    root = Path(root)
    votes = read_votes(root)
    demographics = read_demographics(root)
    videos = _find_videos(root, votes, require_video)
    source = distribution_source if label_mode == "distribution" else label_mode

    clips: list[Clip] = []
    for clip_id, counts in votes.items():
        if drop_broken and clip_id in KNOWN_BROKEN:
            continue
        name = _parse_name(clip_id, root / VOTES_FILE)
        actor = name["actor"]
        if actor not in demographics:
            raise ValueError(f"{root / DEMOGRAPHICS_FILE}: no row for actor {actor} (clip {clip_id}). {_REMEDY}")
        intended = name["emotion"]
        if source == "intended":
            label, tied = intended, ()
        else:
            top = _plurality(counts[source])
            tied = top if len(top) > 1 else ()
            label = _break_tie(top, intended, ties)
        if label not in classes:
            label = None  # a tie, or a class outside the task: still an (unlabeled) video of its actor
        clips.append(
            Clip(
                clip_id=clip_id,
                actor=actor,
                path=videos[clip_id],
                label=None if label is None else classes.index(label),
                votes=_restrict(counts[source], classes) if label_mode == "distribution" else None,
                intended=intended,
                meta={
                    "sentence": name["sentence"],
                    "level": name["level"],
                    **demographics[actor],
                    "votes": counts,
                    "tied": tied,
                },
            )
        )
    broken = sorted(c.clip_id for c in clips if c.clip_id in KNOWN_BROKEN)
    if broken:
        warnings.warn(
            f"{root}: clips with media documented as broken are included: "
            + "; ".join(f"{c} ({KNOWN_BROKEN[c]})" for c in broken)
            + ". Pass drop_broken=True to leave them out.",
            BrokenClipWarning,
            stacklevel=2,
        )
    return clips


def label_statistics(clips: Iterable[Clip], num_classes: int) -> LabelStatistics:
    """Class counts, ties and agreement with the intended emotion of clips from `load_crema_d`."""
    classes = task_classes(num_classes)
    clips = list(clips)
    labelled = [c for c in clips if c.label is not None]
    counts = Counter(classes[c.label] for c in labelled)
    return LabelStatistics(
        classes=classes,
        counts={name: counts[name] for name in classes},
        clips=len(clips),
        actors=len({c.actor for c in clips}),
        ties=sum(1 for c in clips if c.meta["tied"]),
        unlabelled=len(clips) - len(labelled),
        agree_with_intended=sum(1 for c in labelled if classes[c.label] == c.intended),
    )


def _plurality(counts: Sequence[int]) -> tuple[str, ...]:
    """The emotions with the most votes, in EMOTIONS_6 order (several on a tie)."""
    top = max(counts)
    return tuple(e for e, n in zip(EMOTIONS_6, counts) if n == top)


def _break_tie(top: tuple[str, ...], intended: str, ties: str) -> str | None:
    if len(top) == 1:
        return top[0]
    if ties == "intended" and intended in top:
        return intended
    return None


def _restrict(counts: Sequence[int], classes: Sequence[str]) -> tuple[int, ...]:
    return tuple(counts[EMOTIONS_6.index(c)] for c in classes)


def _parse_name(clip_id: str, path: Path) -> dict[str, str]:
    match = CLIP_NAME.match(clip_id)
    if match is None or match["emotion"] not in EMOTIONS_6:
        raise ValueError(
            f"{path}: clip name {clip_id!r} is not ActorID_Sentence_Emotion_Level "
            f"(e.g. 1001_DFA_ANG_XX, emotion one of {EMOTIONS_6})."
        )
    return match.groupdict()


def _integer(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{path}, line {line}: column {column!r} holds {value!r}, not an integer.") from None


def _check_against_summary(path: Path, votes: dict[str, dict[str, tuple[int, ...]]]) -> None:
    """Fail unless summaryTable.csv lists the same clips with the pluralities of the vote counts."""
    columns = {"voice": "VoiceVote", "face": "FaceVote", "av": "MultiModalVote"}
    rows = read_csv(path, ("FileName", *columns.values()), _REMEDY)
    listed = {row["FileName"] for row in rows}
    if listed != votes.keys():
        only_votes, only_summary = sorted(votes.keys() - listed), sorted(listed - votes.keys())
        raise ValueError(
            f"{path} and {path.parent / VOTES_FILE.name} list different clips "
            f"({len(only_votes)} only in the votes, e.g. {only_votes[:3]}; "
            f"{len(only_summary)} only in the summary, e.g. {only_summary[:3]}). {_REMEDY}"
        )
    for line, row in enumerate(rows, start=2):
        for modality, column in columns.items():
            letters = {VOTE_COLUMNS[EMOTIONS_6.index(e)] for e in _plurality(votes[row["FileName"]][modality])}
            if set(row[column].split(":")) != letters:
                raise ValueError(
                    f"{path}, line {line}: {column} of {row['FileName']} is {row[column]!r}, but the "
                    f"{modality} votes in {VOTES_FILE.name} give {':'.join(sorted(letters))}; one of the "
                    f"two files is damaged. {_REMEDY}"
                )


def _find_videos(root: Path, clip_ids: Iterable[str], require_video: bool) -> dict[str, Path]:
    """Video path per clip (an existing .flv or .mp4; else where the .flv would be).

    With require_video, a missing directory, missing files or Git LFS pointer files (what a plain
    clone of CREMA-D holds instead of videos) are errors that say how to get the videos.
    """
    folder = root / VIDEO_DIR
    found = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix in VIDEO_SUFFIXES} if folder.is_dir() else {}
    paths = {c: found.get(c, folder / f"{c}{VIDEO_SUFFIXES[0]}") for c in clip_ids}
    if not require_video:
        return paths
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no video directory; the labels were found in {root}. {_LFS_REMEDY}")
    missing = [c for c in paths if c not in found]
    if missing:
        raise FileNotFoundError(
            f"{folder}: {len(missing)} of {len(paths)} clips have no video ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}). {_LFS_REMEDY}"
        )
    pointers = [c for c, p in paths.items() if _is_lfs_pointer(p)]
    if pointers:
        raise ValueError(
            f"{folder}: {len(pointers)} videos are Git LFS pointer files, not videos "
            f"({', '.join(pointers[:5])}). {_LFS_REMEDY}"
        )
    return paths


def _is_lfs_pointer(path: Path) -> bool:
    # Pointers are ~130-byte text files; real clips are at least tens of kilobytes.
    if path.stat().st_size > 1024:
        return False
    with path.open("rb") as handle:
        return handle.read(40).startswith(b"version https://git-lfs")
