"""Who owns a per-process lab: a marker "owner=PID/PIDNS/START" (the process id, the inode
of its PID namespace, its start time in clock ticks since boot), so a later vethtrace can
tell for certain that the owner is gone before removing the lab.

A pid alone is not enough: seen from another PID namespace (a container, `unshare -p`)
the same number is a different process or none, and pids are reused.  So a lab is
provably stale only when its marker names this PID namespace and that pid either does not
run or runs with another start time (a reused pid).  Anything else is left alone.
"""
from __future__ import annotations

import os
import re

_TAG_RE = re.compile(r"\bowner=(\d+)/(\d+)/(\d+)\b")


def pid_namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def start_time(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), None if it does not run
    (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[19])


def tag(pid: int | None = None) -> str:
    """The marker for `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return f"owner={pid}/{pid_namespace()}/{start_time(pid) or 0}"


def provably_gone(text: str) -> bool:
    """Does `text` hold a marker whose owner is certainly gone?"""
    m = _TAG_RE.search(text or "")
    if m is None:
        return False
    pid, ns, start = (int(x) for x in m.groups())
    try:
        if ns != pid_namespace():
            return False
    except OSError:
        return False
    now = start_time(pid)
    return now is None or now != start
