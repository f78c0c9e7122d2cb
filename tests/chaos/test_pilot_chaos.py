"""`pilot chaos` against a `pilot up` cluster: random kill -9/SIGSTOP, then the invariants hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def pilot(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pilot", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_pilot_chaos_reports_no_lost_writes(tmp_path: Path) -> None:
    up = pilot("up", "--detach", "--api-port", "0", "--store-port", "0", cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        result = pilot("chaos", "--duration", "20", "--seed", "7", cwd=tmp_path)
        report = json.loads(result.stdout[result.stdout.index("{"):])
        assert result.returncode == 0, result.stdout + result.stderr
        assert report["ok"] is True and report["lost_writes"] == [] and report["watch_violations"] == []
        assert report["faults"] and report["acked_writes"] > 0
        assert all(f["recovered_after_s"] is not None for f in report["faults"])
    finally:
        pilot("down", "--purge", cwd=tmp_path)
