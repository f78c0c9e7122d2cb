"""The per-container supervisor of the ``process`` runtime (containerd-shim's job, in stdlib Python).

``python -I -S kubelet/shim.py SPEC.json`` — started by the kubelet in its own session, it

1. starts the container's command as the leader of a new process group (``kill(-pgid)`` reaches
   everything it forks), with the spec's environment and working directory, stdin on /dev/null,
   ``PR_SET_PDEATHSIG=SIGKILL`` (if the shim dies, the container dies with it — never an orphan) and
   the memory limit: a cgroup (v2 ``memory.max``, or v1 ``memory.limit_in_bytes``, with CPU quota
   too) when the kubelet could create one, else ``RLIMIT_AS``;
2. prints one JSON line ``{"pid", "startedAt"}`` (or ``{"error", "reason", "exitCode"}``) on stdout
   for the kubelet, then closes stdout;
3. copies the container's stdout/stderr into a CRI-format log file (``<RFC3339Nano> <stream> F|P
   <text>``, what ``kubectl logs --timestamps`` shows) rotated at ``log_max_bytes`` into
   ``.1 … .N`` — only this process writes it, so rotation needs no coordination;
4. when the command exits: SIGKILLs what is left of its process group (and cgroup), drains the
   pipes, and writes ``exit.json`` (exit code 128+signal for signals, as container runtimes report
   it; ``oomKilled`` from the cgroup) atomically, then exits.

It outlives the kubelet (own session, not in the kubelet's process group), which is what lets a
kubelet killed with ``-9`` find its containers still running, and their exit codes, when it comes
back. SIGTERM/SIGINT sent to the shim itself are forwarded to the container's process group.

Nothing here imports the rest of Pilothouse: startup must stay in the tens of milliseconds.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PARTIAL_MAX = 16 * 1024  # a line longer than this is split into P(artial) records, as containerd does


def rfc3339_nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class LogWriter:
    def __init__(self, path: str, max_bytes: int, max_files: int) -> None:
        self.path = path
        self.max_bytes = max(4096, max_bytes)
        self.max_files = max(1, max_files)
        self.f = open(path, "ab", buffering=0)
        self.size = self.f.tell()
        self.partial = {"stdout": b"", "stderr": b""}

    def _rotate(self) -> None:
        self.f.close()
        for i in range(self.max_files - 1, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i}")
        if self.max_files == 1:
            os.truncate(self.path, 0)
        self.f = open(self.path, "ab", buffering=0)
        self.size = 0

    def _record(self, stream: str, tag: str, text: bytes, ts: str = "") -> None:
        line = f"{ts or rfc3339_nano(time.time_ns())} {stream} {tag} ".encode() + text + b"\n"
        self.f.write(line)
        self.size += len(line)
        if self.size >= self.max_bytes:
            self._rotate()

    def record(self, stream: str, ts: str, text: bytes) -> None:
        """One complete line with its own timestamp (the docker runtime's log forwarder)."""
        self._record(stream, "F", text, ts)

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            while len(line) > PARTIAL_MAX:
                self._record(stream, "P", line[:PARTIAL_MAX])
                line = line[PARTIAL_MAX:]
            self._record(stream, "F", line)
        while len(buf) > PARTIAL_MAX:
            self._record(stream, "P", buf[:PARTIAL_MAX])
            buf = buf[PARTIAL_MAX:]
        self.partial[stream] = buf

    def flush(self) -> None:
        for stream, buf in self.partial.items():
            if buf:
                self._record(stream, "F", buf)
                self.partial[stream] = b""


def _write(path: str, text: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(text)
        return True
    except OSError:
        return False


def setup_cgroups(spec: dict) -> list[str]:
    """Create the container's cgroup directories and set limits; returns the dirs the child joins."""
    joined: list[str] = []
    for entry in spec.get("cgroups") or []:
        path, version = entry["path"], entry["version"]
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            continue
        mem = spec.get("memory_limit")
        cpu = spec.get("cpu_limit_milli")
        ok = True
        if version == 2:
            if mem:
                ok = _write(os.path.join(path, "memory.max"), str(mem)) and ok
                _write(os.path.join(path, "memory.swap.max"), "0")
            if cpu:
                _write(os.path.join(path, "cpu.max"), f"{max(1000, cpu * 100)} 100000")
        elif entry.get("controller") == "memory" and mem:
            ok = _write(os.path.join(path, "memory.limit_in_bytes"), str(mem))
            _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(mem))
        elif entry.get("controller") == "cpu" and cpu:
            _write(os.path.join(path, "cpu.cfs_period_us"), "100000")
            _write(os.path.join(path, "cpu.cfs_quota_us"), str(max(1000, cpu * 100)))
        if ok:
            joined.append(path)
    return joined


def oom_killed(spec: dict) -> bool:
    for entry in spec.get("cgroups") or []:
        name = "memory.events" if entry["version"] == 2 else "memory.oom_control"
        if entry["version"] == 1 and entry.get("controller") != "memory":
            continue
        try:
            with open(os.path.join(entry["path"], name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
        except (OSError, ValueError):
            pass
    return False


def kill_cgroups(spec: dict) -> None:
    for entry in spec.get("cgroups") or []:
        try:
            with open(os.path.join(entry["path"], "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def remove_cgroups(spec: dict) -> None:
    for entry in spec.get("cgroups") or []:
        for _ in range(20):
            try:
                os.rmdir(entry["path"])
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        spec = json.load(f)
    out = sys.stdout
    log = LogWriter(spec["log_path"], int(spec.get("log_max_bytes") or 10 * 1024 * 1024),
                    int(spec.get("log_max_files") or 5))
    cgroups = setup_cgroups(spec)
    mem_limit = spec.get("memory_limit")
    shim_pid = os.getpid()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    err_r, err_w = os.pipe()  # the child reports a failed exec here (closed on successful exec)
    os.set_inheritable(err_w, False)

    pid = os.fork()
    if pid == 0:  # ------------------------------------------------ the container
        try:
            os.setpgid(0, 0)
            os.close(r_out)
            os.close(r_err)
            os.close(err_r)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            try:
                import ctypes

                ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            except Exception:  # noqa: BLE001 - not on Linux: the shim still kills the group on exit
                pass
            if os.getppid() != shim_pid:
                os._exit(137)
            mine = str(os.getpid())
            for path in cgroups:
                _write(os.path.join(path, "cgroup.procs"), mine)
            if mem_limit and not cgroups:
                import resource

                resource.setrlimit(resource.RLIMIT_AS, (int(mem_limit), int(mem_limit)))
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            os.closerange(3, err_w)
            os.closerange(err_w + 1, 65536)
            cwd = spec.get("cwd")
            if cwd:
                os.chdir(cwd)
            argv_ = spec["argv"]
            env = spec.get("env") or {}
            os.execvpe(argv_[0], argv_, env)
        except BaseException as exc:  # noqa: BLE001 - report anything to the shim, then die
            code = 127 if isinstance(exc, FileNotFoundError) else 126 if isinstance(exc, PermissionError) else 128
            try:
                os.write(err_w, json.dumps({"error": str(exc), "code": code}).encode())
            finally:
                os._exit(code)

    # ---------------------------------------------------------------- the shim
    os.close(w_out)
    os.close(w_err)
    os.close(err_w)
    started_ns = time.time_ns()
    failure = b""
    while True:
        chunk = os.read(err_r, 65536)
        if not chunk:
            break
        failure += chunk
    os.close(err_r)
    if failure:
        os.waitpid(pid, 0)
        info = json.loads(failure.decode())
        what = ("executable file not found in $PATH" if info["code"] == 127 and "/" not in spec["argv"][0]
                else "no such file or directory" if info["code"] == 127
                else "permission denied" if info["code"] == 126 else info["error"])
        message = f'failed to start container process: exec: "{spec["argv"][0]}": {what}'
        log.feed("stderr", message.encode() + b"\n")
        log.flush()
        result = {"exitCode": 128, "reason": "StartError", "message": message, "startedAt": started_ns / 1e9,
                  "finishedAt": time.time(), "oomKilled": False}
        write_exit(spec["exit_path"], result)
        remove_cgroups(spec)
        out.write(json.dumps({"error": message, "reason": "StartError", "exitCode": 128}) + "\n")
        out.flush()
        return 0
    out.write(json.dumps({"pid": pid, "startedAt": started_ns / 1e9, "shimPid": shim_pid}) + "\n")
    out.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 0)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(pid, signum)
        except OSError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    fds = {r_out: "stdout", r_err: "stderr"}
    status: int | None = None
    drain_deadline: float | None = None
    while fds:
        timeout = 0.5 if status is None else max(0.0, (drain_deadline or 0) - time.monotonic())
        if status is not None and timeout <= 0:
            break
        try:
            ready, _, _ = select.select(list(fds), [], [], timeout)
        except InterruptedError:
            ready = []
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                data = b""
            if data:
                log.feed(fds[fd], data)
            else:
                os.close(fd)
                del fds[fd]
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                # Whatever the command left in its group dies with it, as a container's processes do.
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                kill_cgroups(spec)
                drain_deadline = time.monotonic() + 2.0
    if status is None:
        _, status = os.waitpid(pid, 0)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    log.flush()
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else 0
    exit_code = 128 + sig if sig else code
    oom = oom_killed(spec)
    reason = "OOMKilled" if oom else ("Completed" if exit_code == 0 else "Error")
    write_exit(spec["exit_path"], {"exitCode": exit_code, "signal": sig, "reason": reason,
                                   "startedAt": started_ns / 1e9, "finishedAt": time.time(), "oomKilled": oom})
    remove_cgroups(spec)
    return 0


def write_exit(path: str, result: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
