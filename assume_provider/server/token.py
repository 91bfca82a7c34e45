"""The server's token file: what a client must send in ``Authorization``.

botocore re-reads ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` on every refresh and sends its
text raw, refusing a CR or LF anywhere in it, so the file holds URL-safe text and no newline.
Whoever can read the file can use the role: it is created 0600 in a 0700 folder, and an
existing one is refused unless it is a regular file of ours that nobody else can read.
Checks run on the open descriptor (``O_NOFOLLOW``), so a swap after the check changes nothing.
"""

from __future__ import annotations

import os
import secrets
import stat

from ..errors import ConfigError

DEFAULT_TOKEN_FILE = os.path.join("~", ".aws", "assume-provider", "server-token")
TOKEN_BYTES = 32  # random bytes; token_urlsafe turns them into 43 characters
MIN_TOKEN_LENGTH = 32  # characters an existing file must hold at least


def _refuse(path: str, why: str) -> ConfigError:
    return ConfigError(f"--token-file {path}: {why}")


def load_or_create_token(path: str) -> str:
    """The token in ``path``, creating the file (and its folder) when it is missing."""
    path = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # makedirs applies the umask
    try:
        return _create(path)
    except FileExistsError:
        return _read_existing(path)


def _create(path: str) -> str:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return token


def _read_existing(path: str) -> str:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise _refuse(path, "is a symbolic link; give the file itself")
    try:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
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
    return token
