"""The memory profile as one self-contained HTML page: inline SVG charts and tables, no scripts, no network.

Charts: bytes live over the op sequence (layer-based vs the chosen schedule, with the budget and the
arena), the arena layout (each buffer a rectangle: x its lifetime in ops, y its offset range), and
flash (weights) by layer.
"""
from __future__ import annotations

import hashlib
import math
import re
from html import escape
from typing import Any

from mcuc.profile.text import peak_index

WIDTH = 1100
LABEL_CHAR_PX = 5.6  # width of one character of the 10 px labels (system-ui), for fitting them into boxes
LEFT, RIGHT, TOP, BOTTOM = 78, 16, 18, 40
CSS = """
body{font:13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px 20px;color:#1d2430;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 4px}
.sub{color:#556} .kv{border-collapse:collapse;margin:6px 0}
.kv td{padding:1px 14px 1px 0} .kv td:nth-child(2){text-align:right;font-variant-numeric:tabular-nums}
table.ops{border-collapse:collapse;font-size:11px;font-variant-numeric:tabular-nums}
table.ops th,table.ops td{padding:1px 6px;border-bottom:1px solid #e4e7ec;text-align:right;white-space:nowrap}
table.ops td.l,table.ops th.l{text-align:left}
tr.peak td{background:#fde2e1;font-weight:600} tr.stage td.i{color:#2f6fdf}
svg text{font:11px system-ui,sans-serif;fill:#334} .legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}
.wrap{overflow-x:auto;max-width:1100px} .ok{color:#127a3a;font-weight:600} .bad{color:#b42318;font-weight:600}
"""


def _nice_ticks(top: float, n: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from 0 to at least ``top`` (whole numbers only with ``integer``)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    return [k * step for k in range(int(math.ceil(top / step)) + 1)]


def _byte_ticks(top: float) -> list[float]:
    """Ticks on whole KiB or MiB values, so the axis labels read 8 KiB, 16 KiB, ... not 9.8 KiB."""
    for unit in (1024 * 1024, 1024):
        if top >= 2 * unit:
            return [t * unit for t in _nice_ticks(top / unit)]
    return _nice_ticks(top)


def _fmt_bytes(v: float) -> str:
    if v >= 1024 * 1024:
        return f"{v / 1048576:.1f} MiB"
    if v >= 1024:
        return f"{v / 1024:.0f} KiB" if v >= 10240 else f"{v / 1024:.1f} KiB"
    return f"{v:.0f} B"


_ABBREVIATIONS = {"BatchNormalization": "BatchNorm", "GlobalAveragePool": "GlobalAvgPool",
                  "LayerNormalization": "LayerNorm", "MatMul": "MatMul", "Convolution": "Conv"}


def short_label(name: str, limit: int) -> str:
    """A tensor name shortened to at most ``limit`` characters, readably: the op that made it (without ONNX's
    ``_output_0``, long op names abbreviated) with as much of its module path as fits, nearest module first
    ('/features/features.1/conv/conv.1/conv.1.1/BatchNormalization_output_0' -> 'features.1/conv.1.1/BatchNorm'
    or 'conv.1.1/BatchNorm'); a name that still does not fit ends in an ellipsis. The page shows the full
    name on hover."""
    segs = [x for x in name.split("/") if x] or [name]
    m = re.fullmatch(r"(.*?)(?:_output_\d+)?(@\w+)?", segs[-1])  # '@p0': the copy run for patch 0
    op = _ABBREVIATIONS.get(m.group(1), m.group(1)) + (m.group(2) or "") if m else segs[-1]
    # drop path segments that only repeat the next one's prefix ('features' before 'features.1')
    ctx = [x for i, x in enumerate(segs[:-1]) if not (i + 1 < len(segs) - 1 and segs[i + 1].startswith(x + "."))]
    for i in range(len(ctx) + 1):
        label = "/".join([*ctx[i:], op])
        if len(label) <= limit:
            return label
    return op[:max(limit - 1, 1)] + "…" if limit >= 2 else ""


def _color(name: str) -> str:
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16)
    return f"hsl({h % 360},{55 + (h >> 9) % 25}%,{58 + (h >> 17) % 14}%)"


class _Axes:
    """Maps data coordinates to an SVG plot area and draws the frame and ticks."""

    def __init__(self, height: int, xmax: float, ymax: float, bytes_axis: bool = True) -> None:
        self.h = height
        self.x1 = max(xmax, 1.0)
        self.yt = _byte_ticks(ymax) if bytes_axis else _nice_ticks(ymax)
        self.y1 = self.yt[-1]
        self.pw = WIDTH - LEFT - RIGHT
        self.ph = height - TOP - BOTTOM

    def x(self, v: float) -> float:
        return LEFT + self.pw * v / self.x1

    def y(self, v: float) -> float:
        return TOP + self.ph * (1 - v / self.y1)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        out = [f'<rect x="{LEFT}" y="{TOP}" width="{self.pw}" height="{self.ph}" fill="#fafbfc" stroke="#c9ced6"/>']
        for t in self.yt:
            y = self.y(t)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + self.pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6e9ee"/>')
            out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt_bytes(t)}</text>')
        for t in _nice_ticks(self.x1, 10, integer=True):
            if t > self.x1:
                break
            x = self.x(t)
            out.append(f'<text x="{x:.1f}" y="{TOP + self.ph + 14}" text-anchor="middle">{t:g}</text>')
        out.append(f'<text x="{LEFT + self.pw / 2}" y="{self.h - 6}" text-anchor="middle">{escape(xlabel)}</text>')
        out.append(f'<text transform="translate(14,{TOP + self.ph / 2}) rotate(-90)" text-anchor="middle">'
                   f'{escape(ylabel)}</text>')
        return out

    def svg(self, body: list[str]) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{self.h}" '
                f'viewBox="0 0 {WIDTH} {self.h}">' + "".join(body) + "</svg>")


def _step_path(ax: _Axes, xs: list[float], ys: list[float], x_end: float) -> str:
    """A step line: value ys[i] over [xs[i], xs[i+1])."""
    pts = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        nx = xs[i + 1] if i + 1 < len(xs) else x_end
        pts.append(f"{ax.x(x):.1f},{ax.y(y):.1f} {ax.x(nx):.1f},{ax.y(y):.1f}")
    return "M" + " L".join(pts)


def _layer_positions(rep: dict[str, Any]) -> list[float]:
    """Position of each schedule op on the layer-based op axis: patch-stage ops spread over the first
    split layers, the ops after the stage at their own layer index."""
    n = len(rep["ops"])
    stage = int(rep.get("stage_ops", 0))
    split = int(rep.get("schedule", {}).get("split_layer", 0) or 0)
    if not stage:
        return [float(i) for i in range(n)]
    return [i * split / stage if i < stage else float(split + i - stage) for i in range(n)]


def memory_chart(rep: dict[str, Any]) -> str:
    ops = rep["ops"]
    layer = rep.get("layer_live_bytes") or [o["live_bytes"] for o in ops]
    chosen = [o["live_bytes"] for o in ops]
    extent = [o.get("arena_extent_bytes", o["live_bytes"]) for o in ops]
    xs = _layer_positions(rep)
    xmax = float(len(layer))
    ymax = max([*layer, *extent, rep["arena_bytes"]], default=1) * 1.08
    budget = rep["sram_budget_bytes"] - rep.get("stack_bytes", rep["stack_estimate_bytes"]) - rep["scratch_bytes"]
    show_budget = budget <= ymax * 1.6
    if show_budget:
        ymax = max(ymax, budget * 1.05)
    ax = _Axes(330, xmax, ymax)
    body = ax.frame("op (layer-based op index; patch-stage ops spread over the stage's layers)", "bytes")
    is_patch = bool(rep.get("stage_ops"))
    if is_patch:
        body.append(f'<rect x="{LEFT}" y="{TOP}" width="{ax.x(xs[rep["stage_ops"]]) - LEFT:.1f}" '
                    f'height="{ax.ph}" fill="#dbe7fb" opacity="0.45"/>')
        body.append(f'<text x="{LEFT + 6}" y="{TOP + 14}" fill="#2f6fdf">patch stage</text>')
    dash = ' stroke-dasharray="5 3"' if is_patch else ""
    body.append(f'<path d="{_step_path(ax, [float(i) for i in range(len(layer))], layer, xmax)}" fill="none" '
                f'stroke="#98a2b3" stroke-width="2"{dash}/>')
    if is_patch:
        body.append(f'<path d="{_step_path(ax, xs, chosen, xmax)}" fill="none" stroke="#2f6fdf" stroke-width="2"/>')
    body.append(f'<path d="{_step_path(ax, xs, extent, xmax)}" fill="none" stroke="#f79009" stroke-width="1.5"/>')
    # the higher of the two lines is labelled above it, the lower one below, both at the right
    lines = [(rep["arena_bytes"], "#d92d20", f"arena {rep['arena_bytes']:,} B", LEFT + ax.pw - 4, "end")]
    if show_budget:
        lines.append((budget, "#12b76a", f"SRAM budget - stack - scratch = {budget:,} B", LEFT + ax.pw - 4, "end"))
    high = max(v for v, *_ in lines)
    for v, col, label, lx, anchor in lines:
        y = ax.y(v)
        ly = y - 4 if v == high else y + 13
        body.append(f'<line x1="{LEFT}" x2="{LEFT + ax.pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="{col}" '
                    f'stroke-dasharray="6 4"/><text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" '
                    f'fill="{col}">{label}</text>')
    p = peak_index(rep)
    if p >= 0:
        px, py = ax.x(xs[p]), ax.y(chosen[p])
        body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="#d92d20"/><text x="{px + 6:.1f}" '
                    f'y="{py + 16:.1f}">peak: op {p} ({chosen[p]:,} B)</text>')
    for i, o in enumerate(ops):  # invisible hover targets with the numbers of each op
        x0 = ax.x(xs[i])
        x1 = ax.x(xs[i + 1]) if i + 1 < len(xs) else ax.x(xmax)
        body.append(f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" height="{ax.ph}" fill="#000" '
                    f'fill-opacity="0"><title>op {i} {escape(o["name"])} ({o["op"]}): {o["live_bytes"]:,} B live, '
                    f'arena top {extent[i]:,} B</title></rect>')
    legend = [("#98a2b3", "layer-based: bytes live")]
    if is_patch:
        legend.append(("#2f6fdf", "chosen patch schedule: bytes live"))
    legend.append(("#f79009", "chosen schedule: highest arena byte in use"))
    leg = "".join(f'<span><i class="sw" style="background:{c}"></i>{escape(t)}</span>' for c, t in legend)
    return f'<div class="legend">{leg}</div>' + ax.svg(body)


def layout_chart(rep: dict[str, Any]) -> str:
    bufs = rep.get("buffers", [])
    n = len(rep["ops"])
    ax = _Axes(460, float(n), max(rep["arena_bytes"], 16))
    body = ax.frame("op (chosen schedule)", "arena offset")
    for b in bufs:
        if not b["size"]:
            continue
        x0, x1 = ax.x(b["first"]), ax.x(b["last"] + 1)
        y0, y1 = ax.y(b["offset"] + b["size"]), ax.y(b["offset"])
        # one group per buffer: its <title> (the full name and numbers) shows on hover over the box and its label
        body.append(f'<g class="buf"><title>{escape(b["name"])}: {b["size"]:,} B at offset {b["offset"]:,}, '
                    f'ops {b["first"]}..{b["last"]}</title>'
                    f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 0.8):.1f}" height="{max(y1 - y0, 0.8):.1f}" '
                    f'fill="{_color(b["name"])}" stroke="#1d2430" stroke-width="0.4" stroke-opacity="0.5"/>')
        label = short_label(b["name"], int((x1 - x0 - 6) / LABEL_CHAR_PX)) if y1 - y0 > 12 else ""
        if len(label) >= 3:
            body.append(f'<text x="{x0 + 3:.1f}" y="{y1 - 3:.1f}" font-size="10">{escape(label)}</text>')
        body.append("</g>")
    p = peak_index(rep)
    if p >= 0:
        x = ax.x(p + 0.5)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ax.ph}" stroke="#d92d20" '
                    'stroke-dasharray="4 3"/>')
    y = ax.y(rep["arena_bytes"])
    body.append(f'<line x1="{LEFT}" x2="{LEFT + ax.pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d92d20"/>')
    return ax.svg(body)


def flash_by_layer(rep: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(layer name, op type, weight bytes) of every layer with weights; a patch-stage op's copies count once."""
    seen: dict[str, tuple[str, int]] = {}
    for o in rep["ops"]:
        w = int(o.get("weights_bytes", 0))
        if w:
            base = o["name"].split("@")[0]
            seen[base] = (o["op"], max(w, seen.get(base, ("", 0))[1]))
    return [(k, op, w) for k, (op, w) in seen.items()]


def flash_chart(rep: dict[str, Any]) -> str:
    layers = flash_by_layer(rep)
    if not layers:
        return "<p>No weights.</p>"
    ax = _Axes(300, float(len(layers)), max(w for *_, w in layers) * 1.1)
    body = ax.frame("layer with weights (in execution order)", "weight bytes (flash)")
    bw = ax.pw / len(layers)
    top = sorted(range(len(layers)), key=lambda i: -layers[i][2])[:3]
    for i, (name, op, w) in enumerate(layers):
        x, y = ax.x(i), ax.y(w)
        body.append(f'<rect x="{x + bw * 0.1:.1f}" y="{y:.1f}" width="{max(bw * 0.8, 0.6):.1f}" '
                    f'height="{TOP + ax.ph - y:.1f}" fill="#7a5af8"><title>{escape(name)} ({op}): {w:,} B'
                    '</title></rect>')
        if i in top:
            short = escape(name.rsplit("/", 2)[-2] if name.count("/") >= 2 else name)[:28]
            anchor = "end" if x + bw / 2 > LEFT + ax.pw - 80 else "start" if x + bw / 2 < LEFT + 80 else "middle"
            body.append(f'<text x="{x + bw / 2:.1f}" y="{y - 4:.1f}" text-anchor="{anchor}" font-size="10">'
                        f'{short} {_fmt_bytes(w)}</text>')
    return ax.svg(body)


def _summary(rep: dict[str, Any]) -> str:
    sched = rep.get("schedule", {"kind": "layer"})
    kind = sched.get("kind", "layer")
    if kind == "patch":
        kind = (f"patch: first {sched.get('split_layer')} layers on a {'x'.join(map(str, sched.get('grid', [])))} "
                f"grid ({sched.get('mac_overhead', 0):+.1%} MACs)")
    sim = rep.get("simulated", {})
    rows = [("board", rep["board"]), ("schedule", kind), ("planner", rep.get("planner", "")),
            ("SRAM budget", f"{rep['sram_budget_bytes']:,} B"),
            ("arena (planned)", f"{rep['arena_bytes']:,} B"),
            ("arena lower bound", f"{rep['arena_lower_bound_bytes']:,} B"),
            ("scratch", f"{rep['scratch_bytes']:,} B"),
            ("stack", f"{rep.get('stack_bytes', rep['stack_estimate_bytes']):,} B"),
            ("peak SRAM", f"{rep['peak_sram_bytes']:,} B "
                          f"({100 * rep['peak_sram_bytes'] / rep['sram_budget_bytes']:.1f} % of budget)"),
            ("weights (flash)", f"{rep['weights_bytes']:,} B"),
            ("predicted flash", f"{rep.get('predicted_flash_bytes', 0):,} B"),
            ("MACs", f"{rep['macs']:,}")]
    if sim:
        ok = not sim.get("problems")
        rows.append(("simulated replay", f'high-water {sim["high_water_bytes"]:,} B → arena {sim["arena_bytes"]:,} B, '
                     + ('<span class="ok">no overlaps</span>' if ok else '<span class="bad">PROBLEMS</span>')))
    m = rep.get("measured", {})
    if "flash_bytes" in m:
        rows.append((f"measured firmware ({m.get('board', '')})",
                     f"flash {m['flash_bytes']:,} B, RAM {m['ram_bytes']:,} B (arena {m['arena_bytes']:,} B)"))
    st = m.get("stack")
    if st:
        guards = '<span class="ok">intact</span>' if st["arena_guards_intact"] else '<span class="bad">CORRUPTED</span>'
        rows.append((f"measured stack ({st['board']})",
                     f"{st['stack_used_bytes']:,} B of {st['stack_reserved_bytes']:,} B reserved (one inference "
                     f"{st['invoke_stack_bytes']:,} B, estimate {rep['stack_estimate_bytes']:,} B); "
                     f"arena guards {guards}"))
    return '<table class="kv">' + "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _op_table(rep: dict[str, Any]) -> str:
    p = peak_index(rep)
    head = ("<tr><th>#</th><th class=l>name</th><th class=l>type</th><th class=l>output</th><th>MACs</th>"
            "<th>live B</th><th>arena top B</th><th>scratch B</th><th>weights B</th><th>live</th>"
            "<th class=l>live tensors</th></tr>")
    rows = []
    for i, o in enumerate(rep["ops"]):
        cls = " ".join(c for c, on in (("peak", i == p), ("stage", o.get("stage"))) if on)
        live = o.get("live_tensors", [])
        rows.append(f'<tr class="{cls}"><td class=i>{i}{"*" if i == p else ""}{" P" if o.get("stage") else ""}</td>'
                    f'<td class=l>{escape(o["name"])}</td><td class=l>{o["op"]}</td>'
                    f'<td class=l>{"x".join(map(str, o["output_shape"]))}</td><td>{o["macs"]:,}</td>'
                    f'<td>{o["live_bytes"]:,}</td><td>{o.get("arena_extent_bytes", 0):,}</td>'
                    f'<td>{o.get("scratch_bytes", 0):,}</td><td>{o.get("weights_bytes", 0):,}</td>'
                    f'<td>{len(live)}</td><td class=l>{escape(", ".join(live))}</td></tr>')
    return f'<div class="wrap"><table class="ops">{head}{"".join(rows)}</table></div>'


def render_html(rep: dict[str, Any]) -> str:
    """The whole page for ``rep`` (a report.json document)."""
    title = f"mcuc memory profile: {rep.get('model_file') or rep.get('model', '') or 'model'}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class=sub>{len(rep['ops'])} ops · every number below is checked against a "
        "byte-level replay of the schedule</div>"
        f"{_summary(rep)}"
        "<h2>Memory over the op sequence</h2>" + memory_chart(rep)
        + "<h2>Arena layout (each buffer: x = lifetime in ops, y = offset .. offset + size)</h2>" + layout_chart(rep)
        + "<h2>Flash by layer</h2>" + flash_chart(rep)
        + "<h2>Ops (* peak, P patch stage)</h2>" + _op_table(rep)
        + "</body></html>\n"
    )
