"""The report of `bench_comm.py`: communication.md, communication.png and published.json, redrawn from
the merged communication.json (the tables per part, a figure of bytes and accuracy per codec and
payload, and the docs' tables `codecs`, `payloads`, `growth` stamped: copy published.json to
docs/results/communication.json)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fedfer.config import CODECS, PAYLOADS
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published

MODELS = (
    ("central_before", "central before"),
    ("personalized", "personalized (r1)"),
    ("central_after", "central after"),
)
MB = 1e6


def per_round_bytes(entry: dict) -> tuple[float, float]:
    """Mean bytes per client per round, up and down, over the entry's rounds."""
    rounds = entry["rounds"]
    return float(np.mean([r["up_mean"] for r in rounds])), float(np.mean([r["down_mean"] for r in rounds]))


def codec_rows(out: dict) -> list[dict]:
    """One row per codec: bytes and the accuracy over seeds (mean, sample std)."""
    rows = []
    for codec in CODECS:
        entries = [e for e in out.get("codecs", {}).values() if e["codec"] == codec]
        if not entries:
            continue
        row = {"codec": codec, "seeds": sorted(e["seed"] for e in entries), "bytes": per_round_bytes(entries[0])}
        row["seconds"] = float(np.mean([r["seconds"] for e in entries for r in e["rounds"]]))
        for key, _ in MODELS:
            for metric in ("macro_f1", "weighted_f1"):
                values = 100 * np.array([e[key][metric] for e in entries])
                row[f"{key}/{metric}"] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
                if codec != "float32" and out["codecs"].get(f"float32/seed{entries[0]['seed']}"):
                    reference = [out["codecs"].get(f"float32/seed{e['seed']}") for e in entries]
                    diffs = [100 * (e[key][metric] - r[key][metric]) for e, r in zip(entries, reference) if r]
                    row[f"{key}/{metric}/delta"] = float(np.mean(diffs)) if diffs else None
        rows.append(row)
    return rows


def write_report(out: dict, folder: Path) -> None:
    """communication.md, communication.png and published.json (the docs' tables) from the merged results `out`."""
    lines = ["# Communication per round", ""]
    lines += [
        f"World `{out.get('world', '?')}`; bytes are per client per round, measured on Flower's serialized messages.",
        "",
    ]
    rows, scopes = codec_rows(out), scope_table(out)
    lines += codec_section(rows) + scope_section(scopes) + growth_section(out) + deploy_section(out)
    atomic_write_text(folder / "communication.md", "\n".join(lines) + "\n")
    plot(out, rows, scopes, folder / "communication.png")
    docs = published_tables(out, rows, scopes)
    if docs["tables"]:
        atomic_write_json(folder / "published.json", docs)


def codec_table(rows: list[dict]) -> dict:
    """Bytes, seconds and F1 per codec (docs table `communication/codecs`)."""
    reference = next((r for r in rows if r["codec"] == "float32"), None)
    columns = ["codec", "up bytes", "down bytes", "× float32", "s/round"]
    columns += [f"{label} macro / weighted F1" for _, label in MODELS]
    columns += ["Δ vs float32, same seeds: personalized / central after (macro; weighted)"]
    table = []
    for r in rows:
        ratio = f"{r['bytes'][0] / reference['bytes'][0]:.3f}" if reference else "–"
        cells = [
            f"{r[f'{k}/macro_f1'][0]:.1f} ± {r[f'{k}/macro_f1'][1]:.1f} / "
            f"{r[f'{k}/weighted_f1'][0]:.1f} ± {r[f'{k}/weighted_f1'][1]:.1f}"
            for k, _ in MODELS
        ]
        delta_cell = " / ".join(
            f"{r[f'{k}/macro_f1/delta']:+.2f}; {r[f'{k}/weighted_f1/delta']:+.2f}"
            for k in ("personalized", "central_after")
            if r.get(f"{k}/macro_f1/delta") is not None
        )
        delta_cell = delta_cell or ("(reference)" if r["codec"] == "float32" else "–")
        bytes_cells = [f"{r['bytes'][0]:,.0f}", f"{r['bytes'][1]:,.0f}", ratio, f"{r['seconds']:.1f}"]
        table.append([r["codec"], *bytes_cells, *cells, delta_cell])
    return {"columns": columns, "rows": table}


def codec_section(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    table = codec_table(rows)
    lines = ["## Codecs (payload v, both ways)", "", *markdown(table["columns"], table["rows"])]
    return [*lines, "", f"F1 in percent, mean ± sample std over seeds {rows[0]['seeds']}.", ""]


def payload_table(scopes: dict) -> dict:
    """Bytes per client per round of each payload and codec (docs table `communication/payloads`)."""
    columns = ["payload", "codec", "up bytes", "down bytes", "s/round", "clients"]
    rows = [[p, c, f"{up:,.0f}", f"{down:,.0f}", f"{s:.1f}", str(n)] for (p, c), (up, down, s, n, _) in scopes.items()]
    return {"columns": columns, "rows": rows}


def scope_section(scopes: dict) -> list[str]:
    if not scopes:
        return []
    table = payload_table(scopes)
    return ["## Payload × codec (bytes per client per round)", "", *markdown(table["columns"], table["rows"]), ""]


def growth_table(out: dict) -> dict:
    """Bytes and seconds per round against clients and rounds (docs table `communication/growth`)."""
    columns = ["clients", "rounds", "up bytes / client / round (min–max)", "down bytes / client / round"]
    rows = []
    for e in sorted(out["growth"].values(), key=lambda e: (e["num_rounds"], e["clients"])):
        up_lo, up_hi = min(r["up_min"] for r in e["rounds"]), max(r["up_max"] for r in e["rounds"])
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in e["rounds"])
        up, down = per_round_bytes(e)
        size = [f"{e['clients']:,}", str(e["num_rounds"])]
        rows.append([*size, f"{up:,.0f} ({up_lo:,}–{up_hi:,})", f"{down:,.0f}", seconds])
    return {"columns": [*columns, "s per round"], "rows": rows}


def growth_section(out: dict) -> list[str]:
    if not out.get("growth"):
        return []
    table = growth_table(out)
    return ["## Growth (payload v, float32)", "", *markdown(table["columns"], table["rows"]), ""]


def distinct(values: Iterable[Any]) -> str:
    """The different values, sorted: "0 1 2" for seeds, "31" when every run had 31 clients."""
    return " ".join(map(str, sorted(set(values))))


def by_payload(values: dict[str, Any]) -> str:
    """'31 (v), 4 (g+v, f+g+v)': each value with the payloads that had it (just the value when one)."""
    groups: dict[Any, list[str]] = {}
    for payload, value in values.items():
        groups.setdefault(value, []).append(payload)
    if len(groups) == 1:
        return str(next(iter(groups)))
    return ", ".join(f"{value} ({', '.join(payloads)})" for value, payloads in groups.items())


def published_tables(out: dict, rows: list[dict], scopes: dict) -> dict:
    """The docs' tables of the parts measured so far, stamped with the settings bench_comm.py recorded
    (`out["settings"]`) and, per table, the clients, rounds and seeds its runs had."""
    settings = out.get("settings", {"world": out.get("world")})
    codecs = list(out.get("codecs", {}).values())
    runs = {
        "clients": distinct(e["rounds"][0]["clients"] for e in codecs),
        "rounds": distinct(len(e["rounds"]) for e in codecs),
        "seeds": distinct(e["seed"] for e in codecs),
    }
    tables = {"codecs": codec_table(rows)} if rows else {}
    if scopes:
        sizes = {"clients": by_payload({p: s[3] for (p, _), s in scopes.items()})}
        sizes["rounds"] = by_payload({p: s[4] for (p, _), s in scopes.items()})
        tables["payloads"] = {**payload_table(scopes), "stamp": {"settings": {**settings, **sizes}}}
    if out.get("growth"):
        growth_settings = {**settings, "payload": "v", "codec": "float32"}
        tables["growth"] = {**growth_table(out), "stamp": {"settings": growth_settings}}
    return published(tables, {**settings, **(runs if codecs else {})})


def deploy_section(out: dict) -> list[str]:
    if not out.get("deploy"):
        return []
    d = out["deploy"]
    lines = [f"## Simulation vs deployment (tiny world, {d['clients']} clients, {d['num_rounds']} rounds)", ""]
    lines += [
        "| mode | s per round | fedfer bytes / round (up + down, train) | SuperLink in / out per round "
        "| wire to / from SuperLink per round | framing in / out |",
        "|---|---|---|---|---|---|",
    ]
    for mode, m in d["modes"].items():
        fedfer_bytes = np.mean([r["up_total"] + r["down_total"] for r in m["rounds"]])
        t, w = m.get("superlink_traffic"), m.get("wire")
        link = (
            f"{t['inbound_bytes'] / d['num_rounds']:,.0f} / {t['outbound_bytes'] / d['num_rounds']:,.0f}"
            if t
            else "– (no network)"
        )
        on_wire = (
            f"{w['to_superlink'] / d['num_rounds']:,.0f} / {w['from_superlink'] / d['num_rounds']:,.0f} | "
            f"{w['overhead_in_percent']:+.1f}% / {w['overhead_out_percent']:+.1f}%"
            if w
            else "– | –"
        )
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in m["rounds"])
        lines.append(f"| {mode} | {seconds} | {fedfer_bytes:,.0f} | {link} | {on_wire} |")
    fab = next((m["wire"]["fab_bytes"] for m in d["modes"].values() if m.get("wire")), None)
    if fab:
        lines += [
            "",
            f"Wire: the SuperNodes' TCP connections through a counting relay, the whole run per round, with "
            f"one FAB download of {fab:,} bytes per SuperNode; framing: wire over SuperLink count − 1, FABs out.",
        ]
    imports = d.get("clientapp_import_seconds")
    if imports:
        lines += ["", f"A fresh Python importing the ClientApp: {', '.join(f'{s:.1f}' for s in imports)} s."]
    return [*lines, ""]


def seconds_per_round(entry: dict) -> float:
    return float(np.mean([r["seconds"] for r in entry["rounds"]]))


def scope_table(out: dict) -> dict[tuple[str, str], tuple[float, float, float, int, int]]:
    """(payload, codec) → (up, down bytes per client per round, seconds per round, clients, rounds)."""
    table = {}
    for e in out.get("codecs", {}).values():
        if e["seed"] == min(x["seed"] for x in out["codecs"].values()):
            up, down = per_round_bytes(e)
            table[("v", e["codec"])] = (up, down, seconds_per_round(e), e["rounds"][0]["clients"], len(e["rounds"]))
    for e in out.get("payloads", {}).values():
        up, down = per_round_bytes(e)
        table[(e["payload"], e["codec"])] = (up, down, seconds_per_round(e), e["clients"], len(e["rounds"]))
    return dict(sorted(table.items(), key=lambda kv: (PAYLOADS.index(kv[0][0]), CODECS.index(kv[0][1]))))


def plot(out: dict, rows: list[dict], scopes: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    ax = axes[0]
    width = 0.27
    for i, codec in enumerate(CODECS):
        xs = [j + (i - 1) * width for j, p in enumerate(PAYLOADS) if (p, codec) in scopes]
        ys = [scopes[(p, codec)][0] for p in PAYLOADS if (p, codec) in scopes]
        ax.bar(xs, ys, width, label=codec)
    ax.set_xticks(range(len(PAYLOADS)), PAYLOADS)
    if scopes:
        ax.set_yscale("log")
    ax.set_ylabel("bytes per client per round (uplink)")
    ax.set_title("What travels × codec")
    ax.legend()
    ax = axes[1]
    for key, label in MODELS:
        xs = [r["bytes"][0] for r in rows]
        ys = [r[f"{key}/macro_f1"][0] for r in rows]
        es = [r[f"{key}/macro_f1"][1] for r in rows]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
    for r in rows:
        ax.annotate(r["codec"], (r["bytes"][0], r["central_after/macro_f1"][0]), fontsize=8)
    if rows:
        ax.set_xscale("log")
    ax.set_xlabel("uplink bytes per client per round")
    ax.set_ylabel("macro F1 (%), mean ± std over seeds")
    ax.set_title("Accuracy against bytes (payload v)")
    ax.legend(fontsize=8)
    ax = axes[2]
    growth = [e for e in out.get("growth", {}).values() if e["num_rounds"] == 2]
    if growth:
        growth.sort(key=lambda e: e["clients"])
        n = [e["clients"] for e in growth]
        ax.plot(n, [per_round_bytes(e)[0] for e in growth], "o-", label="bytes / client / round (up)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("clients")
        ax.set_ylabel("bytes")
        twin = ax.twinx()
        twin.plot(n, [np.mean([r["seconds"] for r in e["rounds"]]) for e in growth], "s--", color="C3")
        twin.set_ylabel("seconds per round", color="C3")
        ax.set_title("Growth (v, float32, 2 rounds)")
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
