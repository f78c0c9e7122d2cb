"""The per-container supervisor of the ``process`` runtime (containerd-shim's job, in stdlib Python).

``python -I -S kubelet/shim.py SPEC.json`` — started by the kubelet in its own session, it

1. starts the container's command as the leader of a new process group (``kill(-pgid)`` reaches
   everything it forks), with the spec's environment and working directory, stdin on /dev/null
   (``stdin: true``: a pipe the shim keeps; ``tty: true``: a pty, the command in its own session
   with the pty as controlling terminal and as stdin, stdout and stderr — see *attach* below),
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

Attach (``stdin: true``): the shim listens on ``attach.sock`` in the container's state directory
(beside ``spec.json``; a unix socket, so a kubelet restarted after ``kill -9`` connects again like
the first one did). Each connection is one attach session; what it sends is framed
``<type:1><length:4 big-endian><payload>``: type 0 bytes for the container's stdin, 1 the client's
stdin ended, 2 (tty only) "send me the output": from then on the shim writes what the pty prints
to that connection as it comes, unframed (a prompt shows before its newline, which the line-based
log cannot do), and closes it when the container has exited; 4 a terminal size (``<cols:2><rows:2>``
big-endian, applied to the pty). Otherwise the shim answers nothing. ``stdinOnce: true``: the
container's stdin is closed (it reads EOF; on a pty, ^D) when the first session's client ends its
stdin or the session ends; then the socket is removed and later sessions cannot connect. Without it
the stdin stays open across sessions and a client's EOF only ends what that client sends.

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

TYPE_CHECKING = False  # typing is not imported: it would add to every container's start
if TYPE_CHECKING:
    import socket

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
    tty = bool(spec.get("tty"))
    want_stdin = bool(spec.get("stdin"))
    pty_master = pty_slave = r_in = w_in = -1
    if tty:
        pty_master, pty_slave = os.openpty()
    elif want_stdin:
        r_in, w_in = os.pipe()

    pid = os.fork()
    if pid == 0:  # ------------------------------------------------ the container
        try:
            os.close(r_out)
            os.close(r_err)
            os.close(err_r)
            if tty:
                import fcntl
                import termios

                os.setsid()  # a session (and process group) of its own, the pty its controlling terminal
                os.close(pty_master)
                fcntl.ioctl(pty_slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(pty_slave, fd)
            else:
                os.setpgid(0, 0)
                if want_stdin:
                    os.close(w_in)
                    os.dup2(r_in, 0)
                else:
                    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
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
            if tty:
                env = {"TERM": "xterm", **env}
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
    if r_in >= 0:
        os.close(r_in)
    if pty_slave >= 0:
        os.close(pty_slave)  # EIO on the master once the container's side is closed everywhere
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
    # listening before the pid is reported: once the kubelet knows the container, it can attach
    attach = Attach(spec, pty_master if tty else w_in) if want_stdin else None
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

    if tty:  # every byte comes through the pty: the write ends of the pipes were closed, nothing reads them
        os.close(r_out)
        os.close(r_err)
        fds = {pty_master: "stdout"}
    else:
        fds = {r_out: "stdout", r_err: "stderr"}
    status: int | None = None
    drain_deadline: float | None = None
    while fds:
        timeout = 0.5 if status is None else max(0.0, (drain_deadline or 0) - time.monotonic())
        if status is not None and timeout <= 0:
            break
        watched = list(fds) + (attach.fds() if attach is not None and status is None else [])
        writable = attach.wfds() if attach is not None and status is None else []
        try:
            ready, can_write, _ = select.select(watched, writable, [], timeout)
        except InterruptedError:
            ready, can_write = [], []
        for fd in can_write:
            attach.writable(fd)  # type: ignore[union-attr]
        for fd in ready:
            if fd not in fds:
                if attach is not None:
                    attach.ready(fd)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                data = b""
            if data:
                log.feed(fds[fd], data)
                if attach is not None and attach.tty and fd == attach.stdin_fd:
                    attach.output(data)
            else:
                if attach is not None and fd == attach.stdin_fd:
                    attach.pty_gone()
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
    if attach is not None:
        attach.shutdown()
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


class Session:
    """One connection to ``attach.sock``: its unparsed frames, and (type 2, a tty's) output not yet sent."""

    OUT_MAX = 1 << 20

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = bytearray()
        self.out: bytearray | None = None

    def send(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while self.out:
            try:
                n = self.conn.send(self.out)
            except InterruptedError:
                continue
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                select.select([], [self.conn], [], left)
                continue
            except OSError:
                self.out.clear()
                return
            del self.out[:n]


class Attach:
    """The container's stdin, served on ``attach.sock`` to attach sessions (see the module docstring).

    What sessions send is queued and written as the container's stdin takes it (select for
    writability: a container that does not read never stalls the log copying); past ``PENDING_MAX``
    queued bytes the sessions are not read, so their senders wait instead of the shim growing.
    """

    PENDING_MAX = 1 << 20

    def __init__(self, spec: dict, stdin_fd: int) -> None:
        import socket

        self.stdin_fd = stdin_fd  # the pipe's write end, or the pty master
        self.tty = bool(spec.get("tty"))
        self.once = bool(spec.get("stdin_once"))
        self.path = spec["attach_socket"]
        self.sessions: dict[int, Session] = {}
        self.pending = bytearray()
        self.accepting = True  # input is still taken (False once stdinOnce closed it)
        self.fd_open = True  # stdin_fd may be written (False once closed, or the pty is gone)
        self.close_when_flushed = False
        # bind by a relative name: a unix socket path is limited to 107 bytes, a state dir can be longer
        # (the kubelet connects through /proc/self/fd/<dir fd>/attach.sock for the same reason)
        here = os.getcwd()
        os.chdir(os.path.dirname(self.path) or ".")
        try:
            try:
                os.unlink(os.path.basename(self.path))
            except FileNotFoundError:
                pass
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(os.path.basename(self.path))
            os.chmod(os.path.basename(self.path), 0o600)
        finally:
            os.chdir(here)
        self.listener.listen(16)
        self.listener.setblocking(False)
        os.set_blocking(stdin_fd, False)

    def fds(self) -> list[int]:
        out = [fd for fd in self.sessions] if len(self.pending) < self.PENDING_MAX else []
        if self.listener is not None:
            out.append(self.listener.fileno())
        return out

    def wfds(self) -> list[int]:
        out = [fd for fd, s in self.sessions.items() if s.out]
        return out + [self.stdin_fd] if self.pending and self.fd_open else out

    def writable(self, fd: int) -> None:
        if fd == self.stdin_fd:
            self.flush()
        elif fd in self.sessions:
            self.sessions[fd].send()

    def output(self, data: bytes) -> None:
        """What the pty printed, to the sessions that asked for it (type 2): prompts arrive before their newline."""
        for session in self.sessions.values():
            if session.out is not None:
                session.out += data[:max(0, Session.OUT_MAX - len(session.out))]  # a stalled reader loses output
                session.send()

    def ready(self, fd: int) -> None:
        if self.listener is not None and fd == self.listener.fileno():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.setblocking(False)
            self.sessions[conn.fileno()] = Session(conn)
            return
        if fd not in self.sessions:
            return
        session = self.sessions[fd]
        conn, buf = session.conn, session.buf
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end(fd)
            return
        buf += data
        while len(buf) >= 5:
            kind, size = buf[0], int.from_bytes(buf[1:5], "big")
            if len(buf) < 5 + size:
                break
            payload = bytes(buf[5:5 + size])
            del buf[:5 + size]
            if kind == 0:
                self._write(payload)
            elif kind == 1 and self.once:
                self._close_stdin()
            elif kind == 2 and self.tty:
                session.out = bytearray()
            elif kind == 4 and self.tty and len(payload) == 4 and self.fd_open:
                import fcntl
                import struct
                import termios

                cols, rows = int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")
                try:
                    fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                except OSError:
                    pass

    def _write(self, data: bytes) -> None:
        if self.accepting and self.fd_open:
            self.pending += data
            self.flush()

    def flush(self) -> None:
        while self.pending and self.fd_open:
            try:
                n = os.write(self.stdin_fd, self.pending)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            except OSError:  # the container closed its stdin (EPIPE) or is gone: drop what is queued
                self.pending.clear()
                break
            del self.pending[:n]
        if not self.pending and self.close_when_flushed and self.fd_open and not self.tty:
            self.fd_open = False
            try:
                os.close(self.stdin_fd)
            except OSError:
                pass

    def _close_stdin(self) -> None:
        if not self.accepting:
            return
        if self.tty:
            self._write(b"\x04")  # ^D: end of input on a terminal (the master also carries the output)
        self.accepting = False
        self.close_when_flushed = True
        self.flush()
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None  # type: ignore[assignment]
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _end(self, fd: int) -> None:
        self.sessions.pop(fd).conn.close()
        if self.once:
            self._close_stdin()

    def pty_gone(self) -> None:
        """The pty reported EOF: its fd is closed by the caller, and must not be written to again."""
        self.fd_open = False
        self.pending.clear()
        self.shutdown()

    def shutdown(self) -> None:
        for fd in list(self.sessions):
            session = self.sessions.pop(fd)
            session.send(wait=1.0)  # the container's last words, then EOF: the attach is over
            session.conn.close()
        self._stop_listening()


def write_exit(path: str, result: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
