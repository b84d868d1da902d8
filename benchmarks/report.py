"""Benchmark reports: JSON (the record), a table (console/markdown), a p50 bar chart, comparisons.

Only the standard library at import time; matplotlib is imported by :func:`write_plot` alone and
is optional (the CLI says so when it is missing).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

from styleforge.atomic import replacing, write_bytes
from styleforge.benchmarks.environment import summary_lines
from styleforge.benchmarks.lut_bench import LUT_HEADERS, format_lut_rows
from styleforge.benchmarks.recipe_bench import RECIPE_HEADERS, format_recipe_rows


def _num(value: Optional[float], fmt: str = "{:.2f}") -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else fmt.format(value)


def _lat(cell: dict[str, Any], key: str) -> str:
    return _num((cell.get("latency_ms") or {}).get(key))


def _size(cell: dict[str, Any]) -> str:
    size = cell.get("size")
    return f"{size[0]}x{size[1]}" if size else "?"


def _rss(cell: dict[str, Any]) -> str:
    peak, inc = cell.get("rss_peak_mb"), cell.get("rss_increase_mb")
    if peak is None and inc is None:
        return "n/a"
    if peak is None:
        return f"+{inc:.0f}"
    return f"{peak:.0f} (+{inc:.0f})" if inc is not None else f"{peak:.0f}"


def _psnr(cell: dict[str, Any]) -> str:
    fid = cell.get("fidelity")
    return "n/a" if not fid else _num(fid.get("psnr"), "{:.1f}")


# (header, function of a cell -> text); "n/a" marks what this backend cannot measure.
COLUMNS = (
    ("model", lambda c: str(c.get("model"))),
    ("artifact", lambda c: str(c.get("artifact"))),
    ("backend", lambda c: str(c.get("backend")) + ("" if c.get("device") in (None, "cpu") else f"/{c['device']}")
     + (" no-xnnpack" if c.get("xnnpack") is False else "")),
    ("threads", lambda c: str(c.get("threads") or "default")),
    ("size", _size),
    ("import ms", lambda c: _num(c.get("import_ms"))),
    ("load ms", lambda c: _num(c.get("load_ms"))),
    ("first ms", lambda c: _num(c.get("first_ms"))),
    ("min", lambda c: _lat(c, "min")),
    ("p50", lambda c: _lat(c, "p50")),
    ("p90", lambda c: _lat(c, "p90")),
    ("p99", lambda c: _lat(c, "p99")),
    ("mean±std", lambda c: f"{_lat(c, 'mean')}±{_lat(c, 'std')}"),
    ("img/s", lambda c: _num(c.get("ips"), "{:.1f}")),
    ("peak RSS MB (+runtime)", _rss),
    ("file MB", lambda c: _num((c.get("artifact_bytes") or 0) / 1e6, "{:.2f}")),
    ("GMAC/s", lambda c: _num(c.get("gmacs_per_s"), "{:.1f}")),
    ("PSNR dB", _psnr),
)


def _rows(cells: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for cell in cells:
        if cell.get("status") == "ok":
            rows.append([fn(cell) for _, fn in COLUMNS])
        else:  # skipped / error: say why in place of the numbers
            head = [fn(cell) for _, fn in COLUMNS[:5]]
            rows.append(head + [f"{cell.get('status')}: {cell.get('error')}"] + [""] * (len(COLUMNS) - 6))
    return rows


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width text table of all cells, latencies in ms (for the console)."""
    headers = [h for h, _ in COLUMNS]
    rows = _rows(result["cells"])
    ok_rows = [r for r, c in zip(rows, result["cells"]) if c.get("status") == "ok"]
    widths = [max([len(h)] + [len(r[i]) for r in ok_rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    for row, cell in zip(rows, result["cells"]):
        if cell.get("status") == "ok":
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)))
        else:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row[:5], widths)) + "  " + row[5])
    lut_rows = format_lut_rows(result["cells"])
    if lut_rows:
        widths = [max([len(h)] + [len(r[i]) for r in lut_rows]) for i, h in enumerate(LUT_HEADERS)]
        lines += ["", "LUT path (full resolution, no tiles; decode/encode excluded from p50, shown apart):"]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in [LUT_HEADERS, *lut_rows]]
    recipe_rows = format_recipe_rows(result["cells"])
    if recipe_rows:
        widths = [max([len(h)] + [len(r[i]) for r in recipe_rows]) for i, h in enumerate(RECIPE_HEADERS)]
        lines += ["", "Look recipe (full resolution in strips; Pillow filters = the same operators with Pillow, 1 thread):"]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in [RECIPE_HEADERS, *recipe_rows]]
    return "\n".join(lines)


def to_markdown(result: dict[str, Any]) -> str:
    """A self-contained markdown report: environment, settings, the table and notes."""
    settings = result.get("settings", {})
    out = ["# styleforge benchmark", "", f"Created {result.get('created')} ({result.get('schema')}).", "",
           "## Environment", ""]
    out += [f"- {line}" for line in summary_lines(result.get("environment", {}))]
    out += ["", "## Settings", "",
            f"- warmup {settings.get('warmup')}, runs {settings.get('runs')}"
            + (f", duration {settings.get('duration_s')} s" if settings.get("duration_s") else "")
            + f", device {settings.get('device')}, delegate {settings.get('delegate') or 'none'}"
            + f", XNNPACK {'/'.join('on' if x else 'off' for x in settings.get('xnnpack', [True]))}",
            "- latencies in ms per image (batch 1), one fresh process per cell; import = the runtime"
            " library's import, load = model load and interpreter init, first = first inference; peak RSS is that process's"
            " maximum, (+runtime) its increase over the RSS before the runtime library was imported;"
            " PSNR (dB, uint8) is this backend's output against the bundle's PyTorch fp32 references"
            " (worst reference); n/a = not measurable for this cell.",
            "", "## Results", ""]
    headers = [h for h, _ in COLUMNS]
    out.append("| " + " | ".join(headers) + " |")
    out.append("|" + "|".join("---" for _ in headers) + "|")
    for row in _rows(result["cells"]):
        out.append("| " + " | ".join(v.replace("|", "/") for v in row) + " |")
    lut_rows = format_lut_rows(result["cells"])
    if lut_rows:
        out += ["", "### LUT path", "",
                "Full resolution, no tiles, strips over threads; p50 excludes JPEG decode/encode (shown apart); "
                "Pillow 1-thread = a bare `Image.filter(ImageFilter.Color3DLUT)` pass on the same pixels in the "
                "same process; PSNR vs tiled student = the LUT path against the bundle's conv artifact on the "
                "same photo (at most 1080p).", "",
                "| " + " | ".join(LUT_HEADERS) + " |", "|" + "|".join("---" for _ in LUT_HEADERS) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in lut_rows]
    recipe_rows = format_recipe_rows(result["cells"])
    if recipe_rows:
        out += ["", "### Look recipe", "",
                "Full resolution in horizontal strips over threads (runtime/look_strips.py); p50 excludes JPEG "
                "decode/encode; CPU ms = user + system time per run, all threads; Pillow filters = the same operators "
                "at full resolution with Pillow's filters in the same process (benchmarks/recipe_bench.py "
                "`pillow_recipe`), and how close that gets to the runtime's output.", "",
                "| " + " | ".join(RECIPE_HEADERS) + " |", "|" + "|".join("---" for _ in RECIPE_HEADERS) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in recipe_rows]
    xnn = [c for c in result["cells"] if "xnnpack_applied" in (c.get("backend_info") or {})]
    if xnn:
        out += ["", "XNNPACK applied (from the interpreter's log): "
                + ", ".join(f"{c['artifact']} t={c.get('threads') or 'default'} "
                            f"(requested {'off' if c.get('xnnpack') is False else 'on'}): "
                            f"{'yes' if c['backend_info']['xnnpack_applied'] else 'no'}" for c in xnn)]
    if result.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(out) + "\n"


def write_json(result: dict[str, Any], path: Path) -> Path:
    return write_bytes(path, (json.dumps(result, indent=2, allow_nan=False) + "\n").encode())


def write_markdown(result: dict[str, Any], path: Path) -> Path:
    return write_bytes(path, to_markdown(result).encode())


def load_result(path: Path) -> dict[str, Any]:
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read benchmark JSON ({err})") from None
    if not isinstance(result, dict) or not str(result.get("schema", "")).startswith("styleforge-bench/"):
        raise ValueError(f"{path}: not a styleforge bench result (no 'schema': 'styleforge-bench/...')")
    return result


def write_plot(result: dict[str, Any], path: Path) -> Path:
    """Horizontal bars of p50 latency per ok cell, whiskers from p10 to p90 (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in result["cells"] if c.get("status") == "ok"]
    labels = [f"{c['model']}/{c['artifact']} {COLUMNS[2][1](c)} t={c.get('threads') or 'def'} {_size(c)}" for c in cells]
    p50 = [c["latency_ms"]["p50"] if c["latency_ms"].get("p50") is not None else c["latency_ms"]["mean"] for c in cells]
    lo = [max(0.0, m - (c["latency_ms"].get("p10") or m)) for m, c in zip(p50, cells)]
    hi = [max(0.0, (c["latency_ms"].get("p90") or m) - m) for m, c in zip(p50, cells)]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(cells) + 1.5))
    ax.barh(range(len(cells)), p50, xerr=[lo, hi], color="#4c72b0", ecolor="#333333", capsize=3)
    ax.set_yticks(range(len(cells)), labels, fontsize=8)
    ax.invert_yaxis()
    for i, (value, up) in enumerate(zip(p50, hi)):
        ax.annotate(f" {value:.3g} ms", (value + up, i), va="center", fontsize=7)
    scale = ""
    if p50 and max(p50) / max(min(p50), 1e-9) > 20:  # one slow cell would flatten all the others
        ax.set_xscale("log")
        scale = ", log scale"
    ax.set_xlabel(f"latency per image, ms (bar: p50, whiskers: p10-p90{scale})")
    cpu = (result.get("environment", {}).get("cpu") or {}).get("model", "")
    ax.set_title(f"styleforge bench — {cpu}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def cell_key(cell: dict[str, Any]) -> tuple:
    """What makes two cells the same measurement across runs (not the path: bundles move)."""
    return (cell.get("model"), cell.get("artifact"), cell.get("backend"), cell.get("threads"),
            tuple(cell.get("size") or ()), cell.get("device"), cell.get("delegate"), cell.get("xnnpack"))


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-cell B/A ratios for latency and throughput, B-A differences for memory and fidelity.

    Returns ``{"rows": [...], "only_a": [...], "only_b": [...]}``; a ratio below 1 means B is faster.
    """
    cells_a = {cell_key(c): c for c in a["cells"] if c.get("status") == "ok"}
    cells_b = {cell_key(c): c for c in b["cells"] if c.get("status") == "ok"}

    def ratio(x, y):
        return y / x if x and y is not None else None

    def diff(x, y):
        return y - x if x is not None and y is not None else None

    rows = []
    for key, ca in cells_a.items():
        cb = cells_b.get(key)
        if cb is None:
            continue
        la, lb = ca.get("latency_ms") or {}, cb.get("latency_ms") or {}
        fa, fb = ca.get("fidelity") or {}, cb.get("fidelity") or {}
        rows.append({
            "key": list(key),
            "p50_ratio": ratio(la.get("p50"), lb.get("p50")),
            "p90_ratio": ratio(la.get("p90"), lb.get("p90")),
            "mean_ratio": ratio(la.get("mean"), lb.get("mean")),
            "load_ratio": ratio(ca.get("load_ms"), cb.get("load_ms")),
            "ips_ratio": ratio(ca.get("ips"), cb.get("ips")),
            "rss_peak_diff_mb": diff(ca.get("rss_peak_mb"), cb.get("rss_peak_mb")),
            "psnr_diff_db": diff(fa.get("psnr"), fb.get("psnr")),
        })
    return {
        "rows": rows,
        "only_a": [list(k) for k in cells_a if k not in cells_b],
        "only_b": [list(k) for k in cells_b if k not in cells_a],
    }


def format_compare(comparison: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """The comparison as a text table (ratios B/A: below 1.00 = B faster; diffs B-A)."""
    headers = ["model", "artifact", "backend", "threads", "size", f"p50 {name_b}/{name_a}", "p90 ratio",
               "mean ratio", "load ratio", "img/s ratio", "peak RSS diff MB", "PSNR diff dB"]
    rows = []
    for r in comparison["rows"]:
        model, artifact, backend, threads, size, device, _, xnn = r["key"]
        backend += ("" if device in (None, "cpu") else f"/{device}") + (" no-xnnpack" if xnn is False else "")
        rows.append([str(model), str(artifact), backend,
                     str(threads or "default"), "x".join(map(str, size)) or "?",
                     _num(r["p50_ratio"], "{:.2f}x"), _num(r["p90_ratio"], "{:.2f}x"),
                     _num(r["mean_ratio"], "{:.2f}x"), _num(r["load_ratio"], "{:.2f}x"),
                     _num(r["ips_ratio"], "{:.2f}x"), _num(r["rss_peak_diff_mb"], "{:+.1f}"),
                     _num(r["psnr_diff_db"], "{:+.2f}")])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    for label, keys in ((f"only in {name_a}", comparison["only_a"]), (f"only in {name_b}", comparison["only_b"])):
        for key in keys:
            lines.append(f"{label}: {key[0]}/{key[1]} {key[2]} threads={key[3] or 'default'}")
    if not rows:
        lines.append("no cell appears in both results (matched on model, artifact, backend, threads, size, device, delegate)")
    return "\n".join(lines)
