"""The benchmark's picture: throughput and p99 latency against the number of
connections (50, 1,000, 10,000) for shardid's snowflake and long next-id and
the nginx baseline, as one self-contained SVG (no plotting library)."""
import html
import math
import statistics

SERIES = (("sf", "shardid next-id snowflake", "#1f77b4"),
          ("long", "shardid next-id long", "#2ca02c"),
          ("nginx", "nginx, same body", "#d62728"))
W, H = 920, 380                 # the whole picture
PW, PH = 360, 250               # one panel's plot area
LEFT, TOP = 80, 50


def _median(runs, key):
    xs = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(xs) if xs else None


def points(ab):
    """{series: [(connections, req/s, p99 ms), ...]} from the bench's A/B runs."""
    out = {}
    for key, _, _ in SERIES:
        pts = []
        for level in sorted(ab, key=int):
            runs = ab[level].get(key) or []
            rps, p99 = _median(runs, "rps"), _median(runs, "p99_us")
            if rps is not None and p99 is not None:
                pts.append((int(level), rps, p99 / 1000.0))
        out[key] = pts
    return out


def _nice_max(v):
    """A round axis maximum at or above v."""
    if v <= 0:
        return 1.0
    step = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= v:
            return m * step
    return 10 * step


def _panel(x0, title, unit, pts, idx, levels, log=False):
    """One chart: linear from 0, or (log) by decades, as latencies span three."""
    vals = [p[idx] for s in pts.values() for p in s if p[idx] > 0] or [1.0]
    if log:
        lo = 10.0 ** math.floor(math.log10(min(vals)))
        hi = 10.0 ** math.ceil(math.log10(max(vals) * 1.01))
        ticks = [lo * 10 ** i for i in range(round(math.log10(hi / lo)) + 1)]

        def ypos(v):
            return TOP + PH - PH * math.log10(max(v, lo) / lo) / math.log10(hi / lo)
    else:
        hi = _nice_max(max(vals) * 1.05)
        ticks = [hi * i / 5 for i in range(6)]

        def ypos(v):
            return TOP + PH - PH * v / hi
    out = [f'<text x="{x0 + PW / 2}" y="{TOP - 18}" text-anchor="middle" font-size="15">{title}</text>',
           f'<rect x="{x0}" y="{TOP}" width="{PW}" height="{PH}" fill="none" stroke="#999"/>']
    for v in ticks:   # horizontal grid and y labels
        y = ypos(v)
        label = f"{v / 1000:.0f}k" if unit == "req/s" and hi >= 10000 else f"{v:g}"
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PW}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    out.append(f'<text x="{x0 - 55}" y="{TOP + PH / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 55} {TOP + PH / 2})">{unit}</text>')

    def xpos(level):   # the levels, evenly spaced (they are a log scale apart)
        return x0 + PW * (levels.index(level) + 0.5) / len(levels)

    for level in levels:
        out.append(f'<text x="{xpos(level):.1f}" y="{TOP + PH + 18}" text-anchor="middle" '
                   f'font-size="11">{level:,}</text>')
    out.append(f'<text x="{x0 + PW / 2}" y="{TOP + PH + 36}" text-anchor="middle" '
               f'font-size="12">connections</text>')
    for key, _, color in SERIES:
        xy = [(xpos(p[0]), ypos(p[idx])) for p in pts.get(key, [])]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y), p in zip(xy, pts.get(key, [])):
            value = f"{p[idx]:,.0f}" if idx == 1 else f"{p[idx]:.2f}"
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                       f'<title>{value} {unit}</title></circle>')
    return out


def svg(ab, caption):
    """The SVG text for the bench's A/B results `ab` ({level: {series: [runs]}})."""
    pts = points(ab)
    levels = sorted({p[0] for s in pts.values() for p in s})
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
             f'<rect width="{W}" height="{H}" fill="white"/>']
    if not levels:
        parts.append('<text x="20" y="40">no A/B runs</text></svg>')
        return "\n".join(parts) + "\n"
    parts += _panel(LEFT, "Throughput (higher is better)", "req/s", pts, 1, levels)
    parts += _panel(LEFT + PW + 110, "p99 latency (lower is better, log scale)", "ms", pts, 2, levels,
                    log=True)
    for i, (_, name, color) in enumerate(SERIES):   # the legend, below the panels
        x = LEFT + i * 260
        parts.append(f'<rect x="{x}" y="{H - 22}" width="14" height="4" fill="{color}"/>')
        parts.append(f'<text x="{x + 20}" y="{H - 16}" font-size="12">{name}</text>')
    parts.append(f'<text x="{W - 10}" y="{TOP - 36}" text-anchor="end" font-size="10" '
                 f'fill="#666">{html.escape(caption)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
