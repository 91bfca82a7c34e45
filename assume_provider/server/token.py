"""The server's token file: what a client must send in ``Authorization``.

botocore re-reads ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` on every refresh and sends its
text raw, refusing a CR or LF anywhere in it, so the file holds URL-safe text and no newline.
Whoever can read the file can use the role: it is created 0600 in a 0700 folder, and an
existing one is refused unless it is a regular file of ours that nobody else can read.
Checks run on the open descriptor (``O_NOFOLLOW``), so a swap after the check changes nothing.

A token is never written in place: it goes to a new temporary file in the same folder
(``O_EXCL``, 0600, fsync'd), which then takes the file's name in one step, by ``rename``
(a new token replacing the old) or ``link`` (a token for a path that has none, where a
concurrent writer's token wins if it got there first). A reader therefore sees the old
token or the new one, never a part; a crash leaves at most a stray temporary file, never
an empty token file.

The server follows the file (``TokenFile``): the token it accepts is the one the file
holds now. So when two servers share a file and both write a new token at start, the one
written last is the token both accept, and it is the one every client reads.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from typing import Optional, Union

from ..errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_FILE = os.path.join("~", ".aws", "assume-provider", "server-token")
TOKEN_BYTES = 32  # random bytes; token_urlsafe turns them into 43 characters
MIN_TOKEN_LENGTH = 32  # characters an existing file must hold at least
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: What tells that the file changed: a new token is a new file (a new inode).
Signature = tuple[int, int, int, int]


def _signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _refuse(path: str, why: str) -> ConfigError:
    return ConfigError(f"--token-file {path}: {why}")


def check_token_file(path: str) -> Optional[str]:
    """The token an existing file holds, after every check (ConfigError naming what is
    wrong), or None when there is no file: run before the server binds, so a file it must
    refuse stops the start with nothing changed."""
    try:
        return _read_existing(path)[0]
    except FileNotFoundError:
        return None


def new_token_file(path: str) -> TokenFile:
    """A new token in ``path``, replacing the one there (every start that binds its own
    socket: a token collected while the port was free is refused from now on)."""
    _make_folder(path)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    signature = _publish(path, token, replace=True)
    assert signature is not None  # a rename always publishes
    return TokenFile(path, token, signature)


def kept_token_file(path: str) -> TokenFile:
    """The token in ``path``, kept as it is; a new one only when there is none (a server on
    an inherited socket: the port was never free, so the token was never exposed). Two
    starts creating it together agree on the first one published."""
    path = os.path.abspath(os.path.expanduser(path))
    try:
        return TokenFile(path, *_read_existing(path))
    except FileNotFoundError:
        pass
    _make_folder(path)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    signature = _publish(path, token, replace=False)
    if signature is not None:
        return TokenFile(path, token, signature)
    return TokenFile(path, *_read_existing(path))  # another start published first


def write_new_token(path: str) -> str:
    """``new_token_file``'s token, as text."""
    return new_token_file(path).value


def load_or_create_token(path: str) -> str:
    """``kept_token_file``'s token, as text (a server built in-process, in the tests)."""
    return kept_token_file(path).value


def _make_folder(path: str) -> None:
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # makedirs applies the umask


def _publish(path: str, token: str, *, replace: bool) -> Optional[Signature]:
    """Write ``token`` to a temporary file beside ``path`` and give it that name in one
    step; the signature of the file written (what ``TokenFile`` compares), or None when
    ``replace`` is off and ``path`` exists already."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            data = token.encode("ascii")
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)  # the content is on disk before the name points at it
            signature = _signature(os.fstat(fd))
        finally:
            os.close(fd)
        if replace:
            os.rename(temporary, path)
            published: Optional[Signature] = signature
        else:
            try:
                os.link(temporary, path)
                published = signature
            except FileExistsError:
                published = None
    finally:
        try:
            os.unlink(temporary)  # gone after a rename; the spare name after a link
        except FileNotFoundError:
            pass
    _sync_folder(folder)  # the new name survives a power loss
    return published


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


class TokenFile:
    """The token a server accepts: the one its file holds now, re-read when the file
    changes (another start wrote a new one, or the operator did). One ``stat`` per request
    tells; a file that is missing or fails a check changes nothing (the last good token
    stays, and one warning says why)."""

    def __init__(self, path: str, token: str, signature: Signature) -> None:
        # ``signature``: of the file this token was read from or written to, not of what
        # the path names now (another start may have replaced it since: then the first
        # request reads that one).
        self.path = path
        self._token = token.encode("ascii")
        self._signature = signature
        self._refused: Optional[Signature] = None

    @property
    def value(self) -> str:
        return self._token.decode("ascii")

    def _stat(self) -> Optional[Signature]:
        try:
            return _signature(os.stat(self.path, follow_symlinks=False))
        except OSError:
            return None

    def current(self) -> bytes:
        signature = self._stat()
        if signature is None or signature == self._signature or signature == self._refused:
            return self._token
        try:
            token, read_signature = _read_existing(self.path)
        except (ConfigError, OSError) as exc:
            self._refused = signature
            logger.warning("token file not followed, the previous token stays: %s", exc)
            return self._token
        self._token, self._signature = token.encode("ascii"), read_signature
        return self._token


class FixedToken:
    """A token given as a value (tests, embedding): never changes."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("ascii")

    def current(self) -> bytes:
        return self._token


TokenSource = Union[TokenFile, FixedToken]


def _read_existing(path: str) -> tuple[str, Signature]:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise _refuse(path, "is a symbolic link; give the file itself")
    try:
        flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except OSError as exc:
        raise _refuse(path, f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "is not a regular file")
        if info.st_uid != os.geteuid():
            raise _refuse(path, f"belongs to user id {info.st_uid}, not to this user")
        if info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise _refuse(path, f"has mode {mode:04o}: others may read it; chmod 600 it")
        data = os.read(fd, 4096)
        signature = _signature(info)
    finally:
        os.close(fd)
    try:
        token = data.decode("ascii")
    except UnicodeDecodeError:
        raise _refuse(path, "is not ASCII text") from None
    if "\r" in token or "\n" in token:
        raise _refuse(path, "contains a line break, which botocore refuses to send")
    if len(token) < MIN_TOKEN_LENGTH or not token.isprintable() or " " in token:
        raise _refuse(
            path, f"must hold at least {MIN_TOKEN_LENGTH} printable characters without spaces"
        )
    return token, signature
