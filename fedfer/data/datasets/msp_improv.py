"""MSP-IMPROV → `Clip` records for the 4-class task (ANG, HAP, NEU, SAD).

MSP-IMPROV is licensed and its exact file formats are not documented everywhere; this reader
assumes what public tools that read the release rely on, and fedfer's synthetic writer follows
the same assumptions:

* Videos: `root/Video/session<k>/S<nn><T>/<C>/MSP-IMPROV-S<nn><T>-<G><kk>-<C>-<P><tt>.avi` (found
  anywhere under `root/Video/` by file name; .avi or .mp4). Fields: sentence <nn>, target emotion
  <T> (A, H, N, S), speaking actor <G><kk> (gender F/M, session 01-06), condition <C> (R read,
  T target improvisation, P other improvisation, S natural interaction), dyad <P>, turn <tt>.
* Labels: `root/Evalution.txt` (spelled so in the release; `Evaluation.txt` is accepted too).
  A clip line is `UTD-IMPROV-<fields>.avi; <label>; A:<a>; V:<v>; D:<d>;` with the consensus
  label A, H, S, N (O other, X no agreement: no label); lines after it that name an emotion in their
  second field (`<rater>; Angry; ...`) are individual ratings and give the vote counts.
* Actors: 12, one female and one male per session; fedfer names them `S<kk><G>` (e.g. S01F), the
  gender read from the id.
"""

from __future__ import annotations

import re
from pathlib import Path

from fedfer.data.datasets import EMOTIONS_4, Clip

LABEL_FILES: tuple[str, ...] = ("Evalution.txt", "Evaluation.txt")
LETTERS = {"A": "ANG", "H": "HAP", "N": "NEU", "S": "SAD"}
WORDS = {
    "angry": "ANG",
    "anger": "ANG",
    "happy": "HAP",
    "happiness": "HAP",
    "neutral": "NEU",
    "sad": "SAD",
    "sadness": "SAD",
}
VIDEO_SUFFIXES: tuple[str, ...] = (".avi", ".mp4")
_NAME = re.compile(
    r"^(?:MSP|UTD)-IMPROV-S(?P<sentence>\d{2})(?P<target>[AHNS])-(?P<gender>[FM])(?P<session>\d{2})-(?P<condition>[A-Z])-(?P<turn>[A-Z]{1,2}\d{2,3})$"
)
_REMEDY = (
    "MSP-IMPROV is distributed by the MSP lab (UT Dallas) under licence; "
    "or render fedfer's MSP-IMPROV-shaped corpus with `fedfer synth`."
)


def actor_id(session: int, gender: str) -> str:
    """fedfer's name for an MSP-IMPROV actor: S<session><gender>, e.g. S01F."""
    return f"S{session:02d}{gender}"


def gender_of(actor: str) -> str:
    """'F' or 'M' from an actor id such as S01F."""
    if not re.fullmatch(r"S\d{2}[FM]", actor):
        raise ValueError(f"not an MSP-IMPROV actor id: {actor!r} (expected e.g. S01F)")
    return actor[-1]


def _label_file(root: Path) -> Path:
    for name in LABEL_FILES:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{root}: no label file ({' or '.join(LABEL_FILES)}) found. {_REMEDY}")


def read_evaluation(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{clip name (MSP-IMPROV-...): (consensus letter, votes per EMOTIONS_4 class)} from the label file."""
    out: dict[str, tuple[str, list[int]]] = {}
    current: str | None = None
    for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        fields = [f.strip() for f in line.split(";")]
        if len(fields) < 2 or not fields[0]:
            continue
        if fields[0].lower().endswith(VIDEO_SUFFIXES):
            stem = fields[0].rsplit(".", 1)[0]
            if not _NAME.match(stem):
                raise ValueError(
                    f"{path}, line {line_no}: clip name {fields[0]!r} does not follow MSP-IMPROV's naming "
                    "(e.g. UTD-IMPROV-S01A-F01-R-FM01.avi)"
                )
            current = "MSP-IMPROV-" + stem.split("-IMPROV-", 1)[1]
            out[current] = (fields[1].upper(), [0] * len(EMOTIONS_4))
        elif current is not None and fields[1].lower() in WORDS:
            out[current][1][EMOTIONS_4.index(WORDS[fields[1].lower()])] += 1
    if not out:
        raise ValueError(
            f"{path}: no clip lines found "
            f"(expected lines like 'UTD-IMPROV-S01A-F01-R-FM01.avi; A; A:..; V:..; D:..;'). {_REMEDY}"
        )
    return {k: (label, tuple(votes)) for k, (label, votes) in out.items()}


def load_msp_improv(root: str | Path, require_video: bool = True) -> list[Clip]:
    """Every labelled clip as a `Clip` (label None for O / X); votes in EMOTIONS_4 order."""
    root = Path(root)
    labels = read_evaluation(_label_file(root))
    videos = (
        {p.stem: p for p in (root / "Video").rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES}
        if (root / "Video").is_dir()
        else {}
    )
    missing = [name for name in labels if name not in videos]
    if require_video and missing:
        raise FileNotFoundError(
            f"{root / 'Video'}: {len(missing)} of {len(labels)} labelled videos not found, e.g. {missing[0]}.avi; "
            f"put the videos under Video/, or pass require_video=False to read labels only. {_REMEDY}"
        )
    clips = []
    for name, (letter, votes) in labels.items():
        m = _NAME.match(name)
        assert m is not None  # checked by read_evaluation
        emotion = LETTERS.get(letter)
        clips.append(
            Clip(
                clip_id=name,
                actor=actor_id(int(m["session"]), m["gender"]),
                path=videos.get(name, root / "Video" / f"{name}.avi"),
                label=EMOTIONS_4.index(emotion) if emotion else None,
                votes=votes if sum(votes) else None,
                intended=LETTERS[m["target"]],
                meta={
                    "session": int(m["session"]),
                    "gender": m["gender"],
                    "condition": m["condition"],
                    "sentence": m["sentence"],
                },
            )
        )
    return clips
