"""The grid's tables as the docs publish them: `simulations/grid.py` writes them with their stamp into
OUT/published.json, in the generic form of `fedfer.publish.result_tables` (stamped by
`fedfer.publish.study_settings.published`), so the docs' grid tables
are the study's own output (copy the file to docs/results/grid.json), never transcribed.

- `summary`: macro F1 of every model per table, mean ± 95% t-interval over seeds, beside the paper's;
- `paired`: each model's macro F1 minus the central model's on the same seed (bold where the interval
  excludes zero): a seed's split and central training move every model's level together, so this is
  the interval that says whether a model helps;
- `sweeps`: one setting varied at a time on the first seed of the sweep table.
"""

from __future__ import annotations

from collections.abc import Mapping

from fedfer.evaluation.stats import mean_ci
from fedfer.paper.figures import PAPER, paper_key
from fedfer.paper.tables import TableSpec

SUMMARY_MODELS = {
    "central": "central",
    "frame_mean_g": "frame-mean g()",
    "personalized": "personalized (round 1)",
    "local_only": "local only",
    "fedper": "FedPer",
    "after_fedavg": "after FedAvg (Table 6)",
    "oracle": "oracle",
}
PAIRED_MODELS = ("personalized", "local_only", "fedper", "after_fedavg", "oracle")


def protocol_text(spec: TableSpec) -> str:
    return spec.protocol + (", vote distributions" if spec.labels == "distribution" else "")


def paper_text(table: str) -> str:
    """The paper's macro F1 for the table: 'central → personalized / after FedAvg' where it gives them."""
    paper = PAPER.get(paper_key(table), {})
    if not paper:
        return "–"
    central, personalized, after = (paper.get(m, (None,))[0] for m in ("central", "personalized", "after_fedavg"))
    if personalized is None:
        return f"{central:.1f} → {after:.1f} (after FedAvg)"
    return f"{central:.1f} → {personalized:.1f}" + (f" / {after:.1f}" if after is not None else "")


def summary_table(results: Mapping[str, list[dict]], specs: Mapping[str, TableSpec]) -> dict:
    rows = []
    for table, seeds in results.items():
        cells = [
            mean_ci([s["pooled"][m]["macro_f1"] for s in seeds]).format() if m in seeds[0]["pooled"] else "–"
            for m in SUMMARY_MODELS
        ]
        rows.append([table, protocol_text(specs[table]), *cells, paper_text(table)])
    columns = ["table", "protocol", *SUMMARY_MODELS.values(), "paper: central → personalized / after FedAvg"]
    return {"columns": columns, "rows": rows}


def paired_cell(seeds: list[dict], model: str) -> str:
    if model not in seeds[0]["pooled"]:
        return "–"
    gain = mean_ci([s["pooled"][model]["macro_f1"] - s["pooled"]["central"]["macro_f1"] for s in seeds])
    text = gain.format(signed=True)
    clear = gain.n > 1 and abs(gain.mean) > gain.half_width
    return f"**{text}**" if clear else text


def paired_table(results: Mapping[str, list[dict]]) -> dict:
    rows = [[table, *(paired_cell(seeds, m) for m in PAIRED_MODELS)] for table, seeds in results.items()]
    return {"columns": ["table", *(f"{SUMMARY_MODELS[m]} − central" for m in PAIRED_MODELS)], "rows": rows}


def sweeps_table(sweeps: Mapping[str, list[dict]]) -> dict:
    columns = ["setting", "value", "central", "personalized", "after FedAvg", "pseudo precision", "selected"]
    rows = [
        [parameter, str(p["value"])]
        + [f"{100 * p[k]:.1f}" for k in ("central_macro_f1", "personalized_macro_f1", "after_fedavg_macro_f1")]
        + [f"{100 * p['pseudo_precision']:.1f}", p["selected"]]
        for parameter, points in sweeps.items()
        for p in points
    ]
    return {"columns": columns, "rows": rows}


def grid_tables(
    results: Mapping[str, list[dict]], sweeps: Mapping[str, list[dict]], specs: Mapping[str, TableSpec]
) -> dict[str, dict]:
    """The docs' tables of a grid run: summary, paired and (when swept) sweeps."""
    tables = {"summary": summary_table(results, specs), "paired": paired_table(results)}
    if sweeps:
        tables["sweeps"] = sweeps_table(sweeps)
    return tables
