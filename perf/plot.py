#!/usr/bin/env python3
"""Plots from BenchmarkDotNet's CSV export, as self-contained SVG (no plotting library needed).

    python3 perf/plot.py [ARTIFACTS_DIR] [OUT_DIR]

ARTIFACTS_DIR defaults to BenchmarkDotNet.Artifacts (what `dotnet run --project perf/FastOverlay.Benchmarks`
writes); OUT_DIR defaults to perf/plots. Writes burst.svg (ns per packet against burst size), routes.svg (ns per
lookup against number of routes) and framesize.svg, for whichever CSVs exist. Medians are plotted.
"""
import csv
import glob
import math
import os
import sys

ART = sys.argv[1] if len(sys.argv) > 1 else "BenchmarkDotNet.Artifacts"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "plots")
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def ns(text):
    value, unit = text.replace(",", "").split()
    return float(value) * {"ns": 1, "μs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


def rows(name):
    files = glob.glob(os.path.join(ART, "results", f"*{name}-report.csv"))
    if not files:
        return []
    with open(files[0], newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def svg(path, title, xlabel, series, logx=False):
    """series: {label: [(x, y), ...]}"""
    w, h, left, right, top, bottom = 640, 400, 70, 170, 40, 50
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    if not xs:
        return False
    fx = (lambda x: math.log10(x)) if logx else (lambda x: x)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y1 = max(ys) * 1.15
    px = lambda x: left + (fx(x) - x0) / ((x1 - x0) or 1) * (w - left - right)
    py = lambda y: h - bottom - y / y1 * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2 - 60}" y="22" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{(left + w - right) / 2 - 40}" y="{h - 12}">{xlabel}</text>',
           f'<text x="14" y="{top - 10}">ns per packet</text>']
    for i in range(6):
        y = y1 * i / 5
        out.append(f'<line x1="{left - 4}" y1="{py(y):.1f}" x2="{w - right}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.0f}</text>')
    for x in sorted(set(xs)):
        out.append(f'<text x="{px(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x:,}</text>')
    for k, (label, pts) in enumerate(series.items()):
        c = COLORS[k % len(COLORS)]
        pts = sorted(pts)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)))
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        out.append(f'<rect x="{w - right + 12}" y="{top + 18 * k}" width="12" height="3" fill="{c}"/>')
        out.append(f'<text x="{w - right + 30}" y="{top + 18 * k + 5}">{label}</text>')
    out.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    print("wrote", path)
    return True


def main():
    burst = {}
    for r in rows("BurstScalingBenchmarks"):
        burst.setdefault(r["Path"], []).append((int(r["Burst"]), ns(r["Median"])))
    svg(os.path.join(OUT, "burst.svg"), "Cost per packet against burst size", "packets per burst (log)", burst, logx=True)

    routes = {}
    for r in rows("RouteLookupBenchmarks"):
        label = f'{r["Method"]} ({"clustered" if r["Clustered"] == "True" else "spread"})'
        routes.setdefault(label, []).append((int(r["Routes"].replace(",", "")), ns(r["Median"])))
    for r in rows("RouteScalingBenchmarks"):
        routes.setdefault("full encap path", []).append((int(r["Routes"].replace(",", "")), ns(r["Median"])))
    svg(os.path.join(OUT, "routes.svg"), "Route lookup against number of routes", "routes in the table (log)", routes, logx=True)

    size = {}
    for r in rows("FrameSizeScalingBenchmarks"):
        size.setdefault(r["Path"], []).append((int(r["FrameSize"]), ns(r["Median"])))
    svg(os.path.join(OUT, "framesize.svg"), "Cost per packet against frame size", "inner frame bytes", size)


if __name__ == "__main__":
    main()
