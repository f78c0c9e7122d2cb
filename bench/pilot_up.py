#!/usr/bin/env python3
"""``pilot up --detach`` start time: fresh state dirs and restarts on an existing one.

Each run starts a whole local cluster (3 store members, 2 API servers, 2 schedulers,
2 controller-managers, 2 kubelets + proxies, DNS, ingress) with ``pilot up --detach --api-port 0
--store-port 0`` in a new temporary state dir, timed from the moment the command is started until it
exits (it exits once every component answers its health check and every node is Ready in the API);
``pilot status`` then checks that independently (its exit code is 0 only if every component is
healthy). ``pilot down`` stops it, and ``pilot up --detach`` on the same state dir is timed as a
restart (the store replays its journal, the API servers reconcile their bootstrap objects, the
nodes already exist). ``pilot down --purge`` ends the run.

Output: JSON lines on stdout, one per measurement
``{"bench": "pilot_up", "case": "fresh"|"restart", "run", "metric": "ready", "value", "unit": "s",
"status_ok", "components": {name: seconds until healthy}, "nodes_ready", "host_busy"}``
(``components`` and ``nodes_ready`` are what ``pilot up`` printed, counted from its own start, i.e.
after the interpreter and CLI imports; ``host_busy`` is the fraction of the machine's CPU time that
was busy during the run, everything included, so a run disturbed by other work shows), then one
``"metric": "ready_summary"`` line per case with min/median/max. Progress goes to stderr.

Usage: python3 bench/pilot_up.py [--runs 3] [--restarts 1] [--timeout 90] [--keep-dir]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^\s+(\S+)\s+(healthy|Ready)\s+([\d.]+)s\s*$")


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def pilot(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pilot", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def timed_up(case: str, run: int, state: Path, args: list[str], timeout: float) -> dict[str, Any]:
    busy0, total0 = cpu_times()
    t0 = time.monotonic()
    up = pilot("up", "--detach", "--state-dir", str(state), "--timeout", str(timeout), *args, cwd=state.parent,
               timeout=timeout + 30)
    elapsed = time.monotonic() - t0
    busy1, total1 = cpu_times()
    if up.returncode != 0:
        raise SystemExit(f"pilot up ({case}, run {run}) failed: {up.returncode}\n{up.stdout}\n{up.stderr}")
    components: dict[str, float] = {}
    nodes_ready = None
    for line in up.stdout.splitlines():
        m = LINE.match(line)
        if m and m.group(2) == "healthy":
            components[m.group(1)] = float(m.group(3))
        elif m:
            nodes_ready = float(m.group(3))
    status = pilot("status", "--state-dir", str(state), cwd=state.parent, timeout=60)
    return {"bench": "pilot_up", "case": case, "run": run, "metric": "ready", "value": round(elapsed, 3),
            "unit": "s", "status_ok": status.returncode == 0, "components": components, "nodes_ready": nodes_ready,
            "host_busy": round((busy1 - busy0) / max(1, total1 - total0), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="fresh state dirs")
    p.add_argument("--restarts", type=int, default=1, help="restarts on the state dir of each fresh run")
    p.add_argument("--timeout", type=float, default=90.0, help="pilot up --timeout")
    p.add_argument("--keep-dir", action="store_true", help="keep the state dirs (printed on stderr)")
    args = p.parse_args()
    results: dict[str, list[float]] = {"fresh": [], "restart": []}
    for run in range(1, args.runs + 1):
        base = Path(tempfile.mkdtemp(prefix="pilot-up-bench-"))
        state = base / ".pilot"
        try:
            for case, restart in [("fresh", 0)] + [("restart", i) for i in range(1, args.restarts + 1)]:
                if case == "restart":
                    down = pilot("down", "--state-dir", str(state), cwd=base, timeout=60)
                    if down.returncode != 0:
                        raise SystemExit(f"pilot down failed: {down.stdout}\n{down.stderr}")
                extra = ["--api-port", "0", "--store-port", "0"] if case == "fresh" else []
                line = timed_up(case, run, state, extra, args.timeout)
                if case == "restart":
                    line["restart"] = restart
                results[case].append(line["value"])
                print(json.dumps(line), flush=True)
                print(f"{case} run {run}: ready in {line['value']:.2f}s (status ok: {line['status_ok']})",
                      file=sys.stderr, flush=True)
        finally:
            pilot("down", "--state-dir", str(state), *([] if args.keep_dir else ["--purge"]), cwd=base, timeout=60)
            if args.keep_dir:
                print(f"state dir kept: {state}", file=sys.stderr)
            else:
                shutil.rmtree(base, ignore_errors=True)
    for case, values in results.items():
        if values:
            print(json.dumps({"bench": "pilot_up", "case": case, "metric": "ready_summary", "unit": "s",
                              "runs": len(values), "min": min(values), "median": round(statistics.median(values), 3),
                              "max": max(values)}), flush=True)


if __name__ == "__main__":
    main()
