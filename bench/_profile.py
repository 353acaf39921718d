"""Where a benchmark's time goes: py-spy samples every process of a bench run, and this prints each
process's share of the samples and its hottest functions (self time, idle waits left out).

    python bench/_profile.py [--seconds 20] [--top 8] -- bench/orders.py --repeat 1 --requests 100

Runs the given bench script under `py-spy record --subprocesses --idle`, for at most `--seconds`
(the script's own counts should end it sooner). py-spy needs ptrace rights over its children (root,
or kernel.yama.ptrace_scope=0). Loopback only, like the benches it runs.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Frames where a thread waits rather than works: left out of the hottest functions.
IDLE = re.compile(
    r"\b(select|poll|epoll_wait|_run_once|wait|sleep|recv|recv_into|accept|read|BRPOP|blpop|"
    r"acquire|get|_worker)\b \("
)
PROCESS = re.compile(r'^process (\d+):"([^"]*)"')


def profile(command: list[str], seconds: float) -> Path:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = Path(tempfile.mkdtemp(prefix="spotgate-profile-")) / "stacks.txt"
    subprocess.run(
        [
            spy,
            "record",
            "--subprocesses",
            "--idle",
            "--nonblocking",
            "--rate",
            "200",
            "--format",
            "raw",
            "--duration",
            str(int(seconds)),
            "--output",
            str(out),
            "--",
            sys.executable,
            *command,
        ],
        cwd=ROOT,
        check=False,
    )
    return out


def summarize(stacks: Path, top: int) -> str:
    by_process: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    samples: collections.Counter = collections.Counter()
    busy: collections.Counter = collections.Counter()
    for line in stacks.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        match = PROCESS.match(frames[0])
        name = f"{match.group(1)} {match.group(2)[:90]}" if match else "?"
        samples[name] += int(count)
        leaf = next((f for f in reversed(frames) if not f.startswith(("process ", "thread "))), "")
        if IDLE.search(leaf):
            continue
        busy[name] += int(count)
        by_process[name][leaf] += int(count)
    total = sum(busy.values()) or 1
    lines = []
    for name, n in busy.most_common():
        lines.append(f"{100 * n / total:5.1f}% of busy samples  {name}")
        for leaf, c in by_process[name].most_common(top):
            lines.append(f"        {100 * c / n:5.1f}%  {leaf[:140]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- bench/<script>.py [its options]")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name the bench script to profile after --")
    print(summarize(profile(command, min(args.seconds, 120.0)), args.top))


if __name__ == "__main__":
    main()
