"""The report of `bench_comm.py`: communication.md and communication.png, redrawn from the merged
communication.json (the tables per part and a figure of bytes and accuracy per codec and payload)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedfer.config import CODECS, PAYLOADS
from fedfer.io import atomic_write_bytes, atomic_write_text

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
    """communication.md and communication.png from the merged results `out`."""
    lines = ["# Communication per round", ""]
    lines += [
        f"World `{out.get('world', '?')}`; bytes are per client per round, measured on Flower's serialized messages.",
        "",
    ]
    rows, scopes = codec_rows(out), scope_table(out)
    lines += codec_section(rows) + scope_section(scopes) + growth_section(out) + deploy_section(out)
    atomic_write_text(folder / "communication.md", "\n".join(lines) + "\n")
    plot(out, rows, scopes, folder / "communication.png")


def codec_section(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    reference = next((r for r in rows if r["codec"] == "float32"), None)
    lines = ["## Codecs (payload v, both ways)", ""]
    lines += [
        "| codec | up bytes | down bytes | × float32 | s/round | "
        + " | ".join(f"{label} macro / weighted F1" for _, label in MODELS)
        + " | Δ vs float32, same seeds: personalized / central after (macro; weighted) |",
        "|---" * (6 + len(MODELS)) + "|",
    ]
    for r in rows:
        ratio = r["bytes"][0] / reference["bytes"][0] if reference else float("nan")
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
        lines.append(
            f"| {r['codec']} | {r['bytes'][0]:,.0f} | {r['bytes'][1]:,.0f} | {ratio:.3f} | {r['seconds']:.1f} | "
            + " | ".join(cells)
            + f" | {delta_cell or '(reference)'} |"
        )
    return [*lines, "", f"F1 in percent, mean ± sample std over seeds {rows[0]['seeds']}.", ""]


def scope_section(scopes: dict) -> list[str]:
    if not scopes:
        return []
    lines = ["## Payload × codec (bytes per client per round)", ""]
    lines += ["| payload | codec | up bytes | down bytes | s/round | clients |", "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {c} | {up:,.0f} | {down:,.0f} | {s:.1f} | {n} |" for (p, c), (up, down, s, n) in scopes.items()]
    return [*lines, ""]


def growth_section(out: dict) -> list[str]:
    if not out.get("growth"):
        return []
    lines = ["## Growth (payload v, float32)", ""]
    lines += [
        "| clients | rounds | up bytes / client / round (min–max) | down bytes / client / round | s per round |",
        "|---|---|---|---|---|",
    ]
    for e in sorted(out["growth"].values(), key=lambda e: (e["num_rounds"], e["clients"])):
        up_lo, up_hi = min(r["up_min"] for r in e["rounds"]), max(r["up_max"] for r in e["rounds"])
        seconds = ", ".join(f"{r['seconds']:.1f}" for r in e["rounds"])
        up, down = per_round_bytes(e)
        lines.append(
            f"| {e['clients']:,} | {e['num_rounds']} | {up:,.0f} ({up_lo:,}–{up_hi:,}) | {down:,.0f} | {seconds} |"
        )
    return [*lines, ""]


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


def scope_table(out: dict) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """(payload, codec) → (up, down bytes per client per round, seconds per round, clients)."""
    table = {}
    for e in out.get("codecs", {}).values():
        if e["seed"] == min(x["seed"] for x in out["codecs"].values()):
            up, down = per_round_bytes(e)
            table[("v", e["codec"])] = (
                up,
                down,
                float(np.mean([r["seconds"] for r in e["rounds"]])),
                e["rounds"][0]["clients"],
            )
    for e in out.get("payloads", {}).values():
        up, down = per_round_bytes(e)
        table[(e["payload"], e["codec"])] = (
            up,
            down,
            float(np.mean([r["seconds"] for r in e["rounds"]])),
            e["clients"],
        )
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
