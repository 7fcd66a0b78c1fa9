"""How vethtrace creates every file it writes (recordings, diagrams, pcapng, its memo in
/run): vethtrace runs as root, often in directories other users can write, so no name it
writes may be redirected by a planted symlink or a predictable temporary name.

The rules, in one place:

* A new or regular file is written to a temporary file beside it, created with an
  unpredictable name and O_CREAT|O_EXCL|O_NOFOLLOW (tempfile.mkstemp), then renamed over
  the name: readers never see half a file, and a failed write leaves nothing behind.
* A symbolic link at the name is followed only when it belongs to the user running
  vethtrace or to root (as fs.protected_symlinks does for sticky directories); one that
  belongs to anybody else is refused with one line.
* A FIFO or character device (/dev/null, a terminal) is written into, never replaced; a
  directory, block device or socket is refused.
* `-` is standard output where the caller allows it, else refused with one line.
* Every failure is an OutputError whose message is one line naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator


class OutputError(OSError):
    """A file cannot be written; the message says which and why (`strerror`: why)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.strerror = reason or message


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race with threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _why(path: str, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT:
        reason = f"no such directory {os.path.dirname(os.path.abspath(path))}"
    return OutputError(f"cannot write {path}: {reason}", reason)


def resolve(path: str, stdout_ok: bool = False) -> tuple[str, os.stat_result | None]:
    """(the name to write, its lstat or None if it does not exist), after the rules
    above; raises OutputError for a name that must not be written."""
    if path == "-":
        if not stdout_ok:
            raise OutputError("'-' (standard output) is not possible here: name a file")
        return path, None
    if not path:
        raise OutputError("the output file name is empty")
    target = path
    for _ in range(40):  # SYMLOOP_MAX
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            parent = os.path.dirname(os.path.abspath(target))
            if not os.path.isdir(parent):
                raise OutputError(f"cannot write {path}: no such directory {parent}") from None
            return target, None
        except OSError as exc:
            raise _why(path, exc) from None
        if not stat.S_ISLNK(st.st_mode):
            break
        if st.st_uid not in (0, os.geteuid()):
            raise OutputError(f"{path} is a symbolic link owned by uid {st.st_uid}; vethtrace does not "
                              "follow other users' symlinks: remove it or name the real file")
        link = os.readlink(target)
        target = os.path.join(os.path.dirname(target), link)
    else:
        raise OutputError(f"cannot write {path}: too many levels of symbolic links")
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {path}: it is a directory")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        kind = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file"
        raise OutputError(f"{path} is {kind}; vethtrace writes only files, FIFOs and character devices")
    return target, st


def check(path: str, stdout_ok: bool = False) -> None:
    """Refuse early (before tracing or replaying) a name that cannot be written."""
    resolve(path, stdout_ok)


class Output:
    """A file being written: `write(bytes)` writes all or raises OutputError; `good` is
    how many bytes have been written whole (where a damaged write is cut back to)."""

    def __init__(self, path: str, fd: int, temp: str | None = None, target: str | None = None):
        self.path, self.fd, self.temp = path, fd, temp  # path: as the user named it
        self.target = target or path  # where the temporary file goes (a followed symlink's target)
        self.regular = temp is not None
        self.good = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as exc:
            raise _why(self.path, exc) from None
        self.good += len(data)

    def flush(self) -> None:
        """Writes are unbuffered: nothing waits in memory to fail later at close."""

    def cut_back(self) -> None:
        """After a failed write: drop the partial bytes so the file ends at a whole write."""
        if self.regular:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.good)

    def commit(self) -> None:
        """Put the file at its name (a temporary file is renamed over it)."""
        if self.temp is not None:
            try:
                os.fchmod(self.fd, 0o666 & ~_umask())
                os.rename(self.temp, self.target)
            except OSError as exc:
                raise _why(self.path, exc) from None
            self.temp = None

    def discard(self) -> None:
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None

    def close(self) -> None:
        self.discard()
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class _Stdout(Output):
    def __init__(self):
        super().__init__("standard output", -1)

    def write(self, data: bytes) -> None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _why(self.path, exc) from None
        self.good += len(data)

    def close(self) -> None:
        pass


def create(path: str, stdout_ok: bool = False) -> Output:
    """An Output for `path` after the rules above.  A regular file is written to a
    temporary file until `commit()`; `close()` without commit leaves nothing behind."""
    target, st = resolve(path, stdout_ok)
    if target == "-":
        return _Stdout()
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):
            # a FIFO or character device: written into, never replaced (O_NOFOLLOW: the
            # name may not have become a symlink since it was looked at)
            fd = os.open(target, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
            return Output(path, fd)
        directory, name = os.path.split(os.path.abspath(target))
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _why(path, exc) from None
    return Output(path, fd, temp, target)


@contextlib.contextmanager
def replacing(path: str, stdout_ok: bool = False) -> Iterator[Output]:
    """`with replacing(path) as out: out.write(...)`: the whole file appears at the end,
    or nothing (and an OutputError) if anything failed."""
    out = create(path, stdout_ok)
    try:
        yield out
        out.commit()
    finally:
        out.close()


def write_bytes(path: str, data: bytes, stdout_ok: bool = False) -> None:
    with replacing(path, stdout_ok) as out:
        out.write(data)
