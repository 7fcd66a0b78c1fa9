"""Commands vethtrace runs while it traces (ping, `record -- CMD`, `tui -- CMD`).

Every child is started so that it dies with vethtrace: the kernel sends it SIGKILL when
the thread that started it ends (PR_SET_PDEATHSIG), so even a SIGKILL of vethtrace leaves
no ping running.  Start children from the main thread: the signal follows the thread.
"""
from __future__ import annotations

import ctypes
import os
import pty
import signal
import subprocess

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _dies_with(parent: int):
    def prepare() -> None:  # runs in the child, between fork and exec
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(137)
    return prepare


def start(argv: list[str], **popen) -> subprocess.Popen:
    """Popen(argv) that cannot outlive vethtrace."""
    return subprocess.Popen(argv, preexec_fn=_dies_with(os.getpid()), **popen)


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace: float = 3.0) -> int:
    """End a child we started: ask politely (sig), then insist.  Returns its status."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class PtyCommand:
    """A command whose output is read from a pty, so it is line-buffered and looks exactly
    as it does in a terminal.  `fd` is the reading end; `read()` returns b"" at the end."""

    def __init__(self, argv: list[str]):
        self.argv = list(argv)
        self.proc: subprocess.Popen | None = None
        self.fd = -1

    def start(self) -> "PtyCommand":
        master, slave = pty.openpty()
        try:
            self.proc = start(self.argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.fd = master
        return self

    def read(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except OSError:  # EIO: the other end is closed
            return b""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.running():
            self.proc.send_signal(sig)

    def wait(self) -> int:
        return self.proc.wait() if self.proc is not None else 0

    def close(self, sig: int = signal.SIGTERM, grace: float = 3.0) -> int:
        status = stop(self.proc, sig, grace)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        return status
