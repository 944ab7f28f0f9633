"""Reading spec files and writing outputs: the only place chainrule touches the file system."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from chainrule.derive.documents import FORMATS, MAX_BYTES, format_of
from chainrule.derive.errors import ChainruleError, SpecError
from chainrule.derive.spec import Spec, parse_spec


def read_text(path: str, kind: str = "spec file") -> str:
    """The UTF-8 text of ``path`` (a ``kind``, for the messages), its size checked before it is read.

    Raises:
        ChainruleError: missing, unreadable, too large, or not UTF-8.
    """
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(status.st_mode):
            raise ChainruleError(path, "", f"is not a regular file (a pipe or a device?), expected a {kind}")
        size = status.st_size
        if size > MAX_BYTES:
            raise ChainruleError(path, "", f"expected at most {MAX_BYTES // 2**20} MiB, the file has {size:,} bytes")
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ChainruleError(path, "", "no such file") from None
    except IsADirectoryError:
        raise ChainruleError(path, "", f"is a directory, expected a {kind}") from None
    except OSError as error:
        raise ChainruleError(path, "", f"cannot be read: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ChainruleError(path, "", f"expected UTF-8 text, found byte 0x{raw[error.start]:02x} at offset {error.start}") from None


def load_spec(path: str) -> Spec:
    """Read and validate the spec file at ``path`` (YAML, TOML or JSON by its suffix).

    Raises:
        SpecError: the file cannot be read or the spec is invalid.
    """
    fmt = format_of(path)
    if fmt is None:
        raise SpecError(path, "", f"expected a spec file ending in {', '.join(FORMATS)}")
    try:
        text = read_text(path)
    except SpecError:
        raise
    except ChainruleError as error:
        raise SpecError(error.source, error.field, error.message) from None
    return parse_spec(text, path, fmt)


def _mode(path: Path) -> int:
    """The permissions of the file being replaced, or those a new file gets under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace ``path`` with ``content`` (text as UTF-8 with LF, or bytes) all at once: a
    temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if isinstance(content, bytes):
            with os.fdopen(fd, "wb") as binary:
                binary.write(content)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(content)
        os.chmod(temporary, _mode(path))  # mkstemp makes 0600; the file gets what open() would give it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
