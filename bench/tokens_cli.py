"""`python -m app.tokens issue` start-up: wall and CPU seconds per run, next to the floor of what it
cannot avoid (the interpreter with PyJWT and the settings loaded), measured in the same run.

    python bench/tokens_cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "floor (python + PyJWT + settings)": [sys.executable, "-c", "import jwt, config.settings"],
    "python -m app.tokens issue": [sys.executable, "-m", "app.tokens", "issue", "--sub", "bench", "--role", "viewer"],
}


def run_once(command: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "JWT_SECRET": os.environ.get("JWT_SECRET", "bench-secret-" + "x" * 32)},
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {}
    for _ in range(args.runs):  # interleaved, so both see the same machine
        for name, command in COMMANDS.items():
            wall, cpu = run_once(command)
            results.setdefault(name, {"wall": [], "cpu": []})
            results[name]["wall"].append(wall)
            results[name]["cpu"].append(cpu)
    report = {
        name: {
            kind: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3), "max_s": round(max(v), 3)}
            for kind, v in samples.items()
        }
        for name, samples in results.items()
    }
    floor, cli = (results[name]["wall"] for name in COMMANDS)
    figures = [
        {
            "id": "tokens_cli_wall",
            "label": "`python -m app.tokens issue` start-up, wall",
            "unit": "s",
            "values": [round(v, 3) for v in cli],
            "floor": {"label": "python + PyJWT + settings", "values": [round(v, 3) for v in floor]},
            "target": None,
        }
    ]
    print(
        json.dumps(
            {"runs": args.runs, "load_average": os.getloadavg()[0], "results": report, "figures": figures}, indent=2
        )
    )


if __name__ == "__main__":
    main()
