"""`make bench`: run every bench/ script, write bench/results.json and README's benchmark table.

    python bench/report.py [--only orders,rest] [--readme-only] [--output FILE]

Each script (bench/*.py but this one and the _helpers) runs once, in its own process, and prints one
JSON object; scripts that measure a figure print `figures`: each repetition's value beside its floor
measured in the same run, and a target, either a ratio to the floor (`{"op": "<=", "ratio": 1.25}`) or
an absolute bound (`{"op": "<=", "value": 100}`). This script takes the median of the repetitions, with
min and max, and the ratio figure/floor of each repetition (its median decides a ratio target).

`--only` runs some scripts and prints their figures, writing nothing (unless `--output FILE`).
`--readme-only` rewrites README's table from the existing results.json (no benchmark runs).
Exits 1 if a script failed; a missed target is reported, not a failure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start (written by bench/report.py) -->", "<!-- bench-table:end -->"
SCRIPT_TIMEOUT = 600  # seconds; every script bounds its own counts and durations well below this
# The order the table lists them in; scripts not named here follow, alphabetically.
ORDER = ("orders", "rest", "ws_fanout", "paper_exchange", "paper_streams", "tokens_cli", "dashboard")


def scripts(only: set[str] | None) -> list[Path]:
    found = sorted(
        (p for p in HERE.glob("[!_]*.py") if p.name != "report.py"),
        key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem),
    )
    return [p for p in found if only is None or p.stem in only]


def machine() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(script: Path) -> dict:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"== {script.relative_to(ROOT)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=SCRIPT_TIMEOUT
        )
        code, out = done.returncode, done.stdout
    except subprocess.TimeoutExpired as exc:
        code, out = "timeout", exc.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
    result = {
        "seconds": round(time.monotonic() - started, 1),
        "exit": code,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    try:
        result["output"] = json.loads(out[out.index("{") :]) if code == 0 else None
    except ValueError:
        result["output"], result["exit"] = None, "no JSON output"
    if result["output"] is None:
        result["stdout_tail"] = out[-2000:]
    return result


def spread(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def judge(figure: dict) -> dict:
    """A figure's median/min/max, its floor's, the ratio of each repetition, the target and whether it is met."""
    values = figure["values"]
    floor = figure.get("floor") or None
    out = {"id": figure["id"], "label": figure["label"], "unit": figure["unit"], **spread(values)}
    out["floor"] = {"label": floor["label"], **(spread(floor["values"]) or {})} if floor else None
    ratios = None
    if floor and len(floor["values"]) == len(values):
        ratios = [v / f for v, f in zip(values, floor["values"], strict=True) if v is not None and f]
    out["ratio"] = spread(ratios) if ratios else None
    target = figure.get("target")
    out["target"] = target
    met = None
    if target is not None:
        if "ratio" in target:
            actual, bound = (out["ratio"] or {}).get("median"), target["ratio"]
        else:
            actual, bound = out["median"], target["value"]
        met = actual is not None and (actual <= bound if target["op"] == "<=" else actual >= bound)
        if figure.get("valid") is False:
            met = False
            out["invalid"] = "not every message or job arrived: the figure does not count"
    out["met"] = met
    for key in figure:
        if key not in ("id", "label", "unit", "values", "floor", "target", "valid"):
            out[key] = figure[key]
    return out


def report(only: set[str] | None) -> dict:
    started = time.time()
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scripts": {},
        "figures": [],
    }
    for script in scripts(only):
        result = run(script)
        results["scripts"][script.stem] = result
        for figure in (result.get("output") or {}).get("figures") or []:
            results["figures"].append({"script": script.stem, **judge(figure)})
    results["seconds"] = round(time.time() - started, 1)
    return results


def number(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(s: dict | None, unit: str = "") -> str:
    if not s or "median" not in s:
        return "—"
    suffix = f" {unit}" if unit else ""
    return f"{number(s['median'])}{suffix} ({number(s['min'])}–{number(s['max'])})"


def target_text(target: dict | None, unit: str) -> str:
    if target is None:
        return "—"
    op = "≤" if target["op"] == "<=" else "≥"
    return f"{op} {target['ratio']} × floor" if "ratio" in target else f"{op} {number(target['value'])} {unit}"


def table(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} on {m['cores']} cores ({m['cpu_model']}), Python {m['python']}; "
        f"`make bench` took {results['seconds'] / 60:.1f} min. Each figure: median of its repetitions "
        "(min–max), beside its floor measured in the same run; the ratio is taken per repetition.",
        "",
        "| figure | median (min–max) | floor, same run | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in results["figures"]:
        floor = f["floor"]
        floor_text = f"{cell(floor, f['unit'])}: {floor['label']}" if floor and "median" in floor else "—"
        met = {True: "yes", False: "**no**", None: "—"}[f["met"]]
        if f.get("invalid"):
            met += " (incomplete run)"
        lines.append(
            f"| {f['label']} | {cell(f, f['unit'])} | {floor_text} | {cell(f['ratio'])} | "
            f"{target_text(f['target'], f['unit'])} | {met} |"
        )
    failed = [name for name, s in results["scripts"].items() if s["exit"] != 0]
    if failed:
        lines += [
            "",
            "Failed in this run: "
            + ", ".join(f"`bench/{n}.py` ({results['scripts'][n]['exit']})" for n in failed)
            + ".",
        ]
    return "\n".join(lines)


def rewrite_readme(results: dict) -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} … {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table(results)}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated script names (e.g. orders,rest); the default is all")
    parser.add_argument("--readme-only", action="store_true", help="rewrite README from bench/results.json")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.readme_only:
        rewrite_readme(json.loads(args.output.read_text()))
        return
    results = report(set(args.only.split(",")) if args.only else None)
    if args.only and args.output == RESULTS:
        # a partial run never replaces the full one's results or README table
        print(json.dumps(results["figures"], indent=2))
    else:
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        if args.output == RESULTS:
            rewrite_readme(results)
    print(table(results))
    if any(s["exit"] != 0 for s in results["scripts"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
