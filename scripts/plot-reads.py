#!/usr/bin/env python3
"""Where the leaderboard reads went, over time: an SVG from the CSV files of
`leaderboard --csv FILE` (make run ARGS="--csv FILE"). One panel per file: the shares of the
reads served by the master, the replicas and the router's cache (stacked, 0-100 %), and the
leaderboard reads per second (line, log scale on the right).

    scripts/plot-reads.py OUT.svg "title one" one.csv ["title two" two.csv ...]

Python 3 standard library only.
"""

import csv
import math
import sys

W, PANEL_H, TOP, LEFT, RIGHT, GAP = 760, 200, 30, 60, 70, 60
COLORS = {"master": "#d1495b", "replicas": "#2e86ab", "cache": "#66a182"}


def read(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def panel(rows, title, y0):
    out = []
    x1, x2 = LEFT, W - RIGHT
    t_max = max(r["seconds"] for r in rows)

    def x(t):
        return x1 + (x2 - x1) * t / t_max

    def y(share):
        return y0 + PANEL_H * (1 - share)

    out.append(f'<text x="{x1}" y="{y0 - 10}" font-weight="bold">{title}</text>')
    # Each row is the second ending at its time: a step from t-1 to t.
    base = [0.0] * len(rows)
    for name in ("master", "replicas", "cache"):
        upper = [b + r[name] for b, r in zip(base, rows, strict=True)]
        pts = []
        for r, u in zip(rows, upper, strict=True):
            pts += [(x(max(r["seconds"] - 1, 0)), y(u)), (x(r["seconds"]), y(u))]
        for r, b in reversed(list(zip(rows, base, strict=True))):
            pts += [(x(r["seconds"]), y(b)), (x(max(r["seconds"] - 1, 0)), y(b))]
        d = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        out.append(f'<polygon points="{d}" fill="{COLORS[name]}" fill-opacity="0.85"/>')
        base = upper
    # Reads per second, log scale on the right axis.
    peak = max(r["reads_per_sec"] for r in rows)
    decades = range(0, max(1, math.ceil(math.log10(max(peak, 10)))) + 1)
    top_decade = decades[-1]

    def ly(v):
        return y0 + PANEL_H * (1 - math.log10(max(v, 1)) / top_decade)

    line = " ".join(
        f"{x(r['seconds'] - 0.5):.1f},{ly(r['reads_per_sec']):.1f}"
        for r in rows
        if r["seconds"] >= 1
    )
    out.append(f'<polyline points="{line}" fill="none" stroke="black" stroke-width="1.5"/>')
    for d in decades:
        out.append(f'<text x="{x2 + 6}" y="{ly(10**d) + 4:.1f}" font-size="11">{10**d:,}</text>')
    out.append(f'<text x="{x2 + 6}" y="{y0 - 10}" font-size="11">reads/s</text>')
    # Axes: shares on the left, time below, the detection as a dashed line.
    for share in (0, 0.5, 1):
        out.append(
            f'<text x="{x1 - 8}" y="{y(share) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{share:.0%}</text>"
        )
    for t in range(0, int(t_max) + 1, 5):
        out.append(
            f'<text x="{x(t):.1f}" y="{y0 + PANEL_H + 15}" font-size="11" '
            f'text-anchor="middle">{t} s</text>'
        )
    hot = next((r["seconds"] for r in rows if r["hot"] >= 1), None)
    if hot is not None:
        out.append(
            f'<line x1="{x(hot - 1):.1f}" x2="{x(hot - 1):.1f}" y1="{y0}" y2="{y0 + PANEL_H}" '
            'stroke="black" stroke-dasharray="4,3"/>'
        )
        out.append(f'<text x="{x(hot - 1) + 4:.1f}" y="{y0 + 14}" font-size="11">hot</text>')
    out.append(
        f'<rect x="{x1}" y="{y0}" width="{x2 - x1}" height="{PANEL_H}" fill="none" stroke="#444"/>'
    )
    return out


def main(argv):
    if len(argv) < 4 or len(argv) % 2 != 0:
        sys.exit(__doc__)
    out_path, pairs = argv[1], list(zip(argv[2::2], argv[3::2], strict=True))
    height = TOP + len(pairs) * (PANEL_H + GAP) + 20
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
    ]
    legend_x = LEFT
    for name, color in COLORS.items():
        svg.append(f'<rect x="{legend_x}" y="8" width="12" height="12" fill="{color}"/>')
        svg.append(f'<text x="{legend_x + 16}" y="18" font-size="12">{name}</text>')
        legend_x += 90
    svg.append(f'<line x1="{legend_x}" x2="{legend_x + 20}" y1="14" y2="14" stroke="black"/>')
    svg.append(f'<text x="{legend_x + 24}" y="18" font-size="12">reads/s (right, log)</text>')
    for i, (title, path) in enumerate(pairs):
        svg += panel(read(path), title, TOP + 20 + i * (PANEL_H + GAP))
    svg.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main(sys.argv)
