"""Who may sign: an allowed-signers file in OpenSSH/git format (``man ssh-keygen``).

Each line is ``principals [options] keytype base64-key [comment]``:

* ``principals``: comma-separated patterns (``*`` and ``?`` wildcards, a leading ``!`` negates),
  optionally in double quotes;
* ``options``: comma-separated ``namespaces="pattern,..."``,
  ``valid-after="YYYYMMDD[HHMM[SS]][Z]"``, ``valid-before="..."`` (local time unless the time
  ends in ``Z``, as OpenSSH) and
  ``cert-authority`` (SSH certificates, refused here);
* blank lines and ``#`` comments are ignored, and kept verbatim when the file is rewritten.

The file is parsed like ``ssh-keygen -Y verify`` does, so both accept and reject the same
signatures. It is committed with the project.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from ..errors import IdentityError
from .sshsig import NAMESPACE, _blob_type, _is_ed25519, fingerprint, key_line

__all__ = ["AllowedSigner", "AllowedSigners", "add_signer", "remove_signer"]

_ADD_HINT = "add people with `mlops-jupyter keys init --principal NAME`"
_FORMAT = "`principals [options] ssh-ed25519 BASE64-KEY [comment]`"
_SPACE = " \t\r\n"
_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_CERT_SUFFIX = "-cert-v01@openssh.com"
_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:([0-9]{2})([0-9]{2})([0-9]{2})?)?")
_BAD_PRINCIPAL = re.compile(r"[\s,\"'*?!#\\]")

HEADER = (
    "# Allowed signers of mlops-jupyter registry statements, in OpenSSH's ALLOWED SIGNERS\n"
    "# format (see `man ssh-keygen`). Commit this file with the project: it says who may sign.\n"
    "#\n"
    "#   principal [options] ssh-ed25519 BASE64-KEY [comment]\n"
    '#   e.g. alice@example.com namespaces="mlops-jupyter" ssh-ed25519 AAAAC3Nz... laptop\n'
    "#\n"
    "# Add people with `mlops-jupyter keys init --principal NAME`. Check a signature by hand:\n"
    "#   ssh-keygen -Y verify -f THIS_FILE -I NAME -n mlops-jupyter -s SIG_FILE < MESSAGE_FILE\n"
)


# -- OpenSSH patterns (match.c) -------------------------------------------------------------


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _match_list(value: str, patterns: Iterable[str]) -> int:
    """OpenSSH ``match_pattern_list``: 1 if a pattern matches, -1 if a negated one does, else 0."""
    matched = 0
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _compile(pattern[1:] if negated else pattern).fullmatch(value):
            if negated:
                return -1
            matched = 1
    return matched


def _is_literal(principal: str) -> bool:
    return not principal.startswith("!") and "*" not in principal and "?" not in principal


# -- entries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedSigner:
    """One line of an allowed-signers file."""

    principals: tuple[str, ...]  # patterns, as written (a leading "!" negates)
    key_blob: bytes
    namespaces: tuple[str, ...] | None  # patterns; None: any namespace
    valid_after: float | None  # unix seconds
    valid_before: float | None
    line_no: int

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` of the key, as ``ssh-keygen -lf`` prints it."""
        return fingerprint(self.key_blob)

    @property
    def principal(self) -> str:
        """The first principal of the line."""
        return self.principals[0]

    def allows(self, namespace: str = NAMESPACE, at: float | None = None) -> bool:
        """Whether the line allows signatures in ``namespace`` at unix time ``at`` (None: skip)."""
        if self.namespaces is not None and _match_list(namespace, self.namespaces) != 1:
            return False
        if at is not None:
            if self.valid_after is not None and at < self.valid_after:
                return False
            if self.valid_before is not None and at > self.valid_before:
                return False
        return True


# -- parsing (sshsig.c: parse_principals_key_and_options, sshsigopt_parse) -------------------


class _LineError(ValueError):
    """A malformed line; the message is completed with ``path:line:``."""


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _word(text: str, pos: int) -> tuple[str, int]:
    """The whitespace-delimited word at ``pos`` (after any whitespace) and the position after."""
    pos = _skip_space(text, pos)
    end = pos
    while end < len(text) and text[end] not in _SPACE:
        end += 1
    return text[pos:end], end


def _options_word(text: str, pos: int) -> tuple[str, int]:
    """Like :func:`_word`, but whitespace inside double quotes does not end the word."""
    pos = _skip_space(text, pos)
    end, quoted = pos, False
    while end < len(text) and (quoted or text[end] not in _SPACE):
        if text[end] == "\\" and end + 1 < len(text) and text[end + 1] == '"':
            end += 2
            continue
        if text[end] == '"':
            quoted = not quoted
        end += 1
    if quoted:
        raise _LineError(f"expected a closing '\"' in the options, got {text[pos:]!r}")
    return text[pos:end], end


def _dequote(opts: str, pos: int, name: str) -> tuple[str, int]:
    """OpenSSH ``opt_dequote``: the double-quoted value at ``pos`` (``\\"`` escapes a quote)."""
    if pos >= len(opts) or opts[pos] != '"':
        raise _LineError(f'expected {name}="..." with the value in double quotes, got {opts!r}')
    out: list[str] = []
    pos += 1
    while pos < len(opts) and opts[pos] != '"':
        if opts[pos] == "\\" and pos + 1 < len(opts) and opts[pos + 1] == '"':
            pos += 1
        out.append(opts[pos])
        pos += 1
    if pos >= len(opts):
        raise _LineError(f"expected a closing '\"' after {name}=, got {opts!r}")
    return "".join(out), pos + 1


def parse_time(value: str) -> float | None:
    """Unix time of ``YYYYMMDD[HHMM[SS]]`` (local time) or with a ``Z``/``UTC`` suffix (UTC).

    Like OpenSSH's ``parse_absolute_time``: local times are converted with ``tm_isdst = 0``, so
    both agree on the same instant. None if malformed.
    """
    utc = False
    if len(value) > 1 and value[-1] in "Zz":
        utc, value = True, value[:-1]
    elif len(value) > 3 and value[-3:].upper() == "UTC":
        utc, value = True, value[:-3]
    match = _TIME.fullmatch(value)
    if match is None or len(value) not in (8, 12, 14):
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        dt.datetime(year, month, day, hour, minute, second)  # validates date and clock
        parts = (year, month, day, hour, minute, second, 0, 0, 0)  # tm_isdst = 0, as OpenSSH
        seconds = calendar.timegm(parts) if utc else time.mktime(parts)
    except (ValueError, OverflowError):
        return None
    return float(seconds) if seconds > 0 else None


def _parse_options(opts: str) -> tuple[tuple[str, ...] | None, float | None, float | None]:
    namespaces: tuple[str, ...] | None = None
    after: float | None = None
    before: float | None = None
    pos = 0
    while pos < len(opts):
        rest = opts[pos:].lower()
        if rest.startswith("cert-authority"):
            raise _LineError(
                "cert-authority lines (SSH certificates) are not supported; list each signer's "
                "own Ed25519 key instead"
            )
        name = next(
            (n for n in ("namespaces", "valid-after", "valid-before") if rest.startswith(n + "=")),
            None,
        )
        if name is None:
            got = opts[pos:].split(",")[0]
            raise _LineError(
                'expected an option namespaces="...", valid-after="..." or valid-before="...", '
                f"got {got!r}"
            )
        value, pos = _dequote(opts, pos + len(name) + 1, name)
        if name == "namespaces":
            if namespaces is not None:
                raise _LineError(f'expected one namespaces="..." option, got several in {opts!r}')
            namespaces = tuple(value.split(","))
        else:
            when = parse_time(value)
            if when is None:
                raise _LineError(f'expected {name}="YYYYMMDD[HHMM[SS]][Z]", got {name}={value!r}')
            if (after if name == "valid-after" else before) is not None:
                raise _LineError(f"expected one {name} option, got several in {opts!r}")
            if name == "valid-after":
                after = when
            else:
                before = when
        if pos == len(opts):
            break
        if opts[pos] != ",":
            raise _LineError(f"expected ',' between options, got {opts[pos:]!r}")
        pos += 1
        if pos == len(opts):
            raise _LineError(f"expected another option after the last ',', got {opts!r}")
    if after is not None and before is not None and before <= after:
        raise _LineError(f"expected valid-before later than valid-after, got {opts!r}")
    return namespaces, after, before


def _is_key_type(word: str) -> bool:
    return word in _KEY_TYPES or word.endswith(_CERT_SUFFIX)


def _parse_line(line: str, line_no: int) -> AllowedSigner | None:
    """The entry of one line, None for blank and comment lines; :class:`_LineError` if bad."""
    pos = _skip_space(line, 0)
    if pos == len(line) or line[pos] == "#":
        return None
    if line[pos] == '"':
        end = line.find('"', pos + 1)
        if end < 0:
            raise _LineError(f"expected a closing '\"' after the principals, got {line[pos:]!r}")
        principals, pos = line[pos + 1 : end], end + 1
    else:
        principals, pos = _word(line, pos)
        if '"' in principals:
            raise _LineError(f"expected principals without quotes inside, got {principals!r}")
    word, pos = _options_word(line, pos)
    if not word:
        raise _LineError(f"expected {_FORMAT}, got only {line.strip()!r}")
    options = ""
    if not _is_key_type(word):
        options = word
        word, pos = _word(line, pos)
        if not word:
            raise _LineError(f"expected a key after the options, got only {line.strip()!r}")
        if not _is_key_type(word):
            raise _LineError(f"expected a key type such as ssh-ed25519, got {word!r}")
    namespaces, after, before = _parse_options(options)
    if word.endswith(_CERT_SUFFIX):
        raise _LineError(
            f"{word} certificates are not supported; list each signer's own Ed25519 key instead"
        )
    b64, pos = _word(line, pos)
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        blob = b""
    if not blob or _blob_type(blob) != word or (word == "ssh-ed25519" and not _is_ed25519(blob)):
        shown = b64 if len(b64) <= 24 else b64[:20] + "..."
        raise _LineError(f"expected the base64 data of a {word} key, got {shown!r}")
    return AllowedSigner(
        principals=tuple(principals.split(",")),
        key_blob=blob,
        namespaces=namespaces,
        valid_after=after,
        valid_before=before,
        line_no=line_no,
    )


# -- the file -------------------------------------------------------------------------------


class AllowedSigners:
    """The parsed lines of an allowed-signers file (original text kept for rewriting)."""

    def __init__(
        self, path: Path, entries: list[AllowedSigner], lines: list[str] | None = None
    ) -> None:
        self.path = path
        self.entries = entries
        self._lines = lines
        self._by_key: dict[bytes, list[AllowedSigner]] = {}
        for entry in entries:
            self._by_key.setdefault(entry.key_blob, []).append(entry)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AllowedSigners:
        """Read and parse the file; :class:`IdentityError` if it is missing or malformed."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IdentityError(
                f"no allowed-signers file at {path}: {_ADD_HINT} (the file is committed with the "
                "project)"
            ) from None
        except UnicodeDecodeError:
            raise IdentityError(
                f"{path} is not UTF-8 text: expected an allowed-signers file, one {_FORMAT} "
                "per line"
            ) from None
        except OSError as exc:
            raise IdentityError(
                f"cannot read the allowed-signers file {path}: {exc.strerror or exc}"
            ) from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike[str] = "<allowed signers>") -> AllowedSigners:
        """Parse allowed-signers text; ``path`` is only used in error messages and ``.path``."""
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        entries: list[AllowedSigner] = []
        for number, line in enumerate(lines, start=1):
            try:
                entry = _parse_line(line, number)
            except _LineError as exc:
                raise IdentityError(f"{path}:{number}: {exc}") from None
            if entry is not None:
                entries.append(entry)
        return cls(Path(path), entries, lines)

    def for_key(self, key_blob: bytes) -> list[AllowedSigner]:
        """Every line with this key, whatever its namespaces and validity."""
        return list(self._by_key.get(key_blob, ()))

    def principals_for(
        self, key_blob: bytes, namespace: str = NAMESPACE, at: float | None = None
    ) -> list[str]:
        """Literal (non-pattern) principals of lines with this key allowing namespace at time."""
        found: list[str] = []
        for entry in self._by_key.get(key_blob, ()):
            if entry.allows(namespace, at):
                found.extend(p for p in entry.principals if _is_literal(p) and p not in found)
        return found

    def for_principal(self, principal: str) -> list[AllowedSigner]:
        """Lines whose principal patterns match ``principal`` (as ``ssh-keygen -Y verify -I``)."""
        return [e for e in self.entries if _match_list(principal, e.principals) == 1]

    def text(self) -> str:
        """The file content: the original lines when parsed, else one line per entry."""
        if self._lines is None:
            lines = [
                _format_line(
                    e.principals,
                    e.key_blob,
                    e.namespaces,
                    valid_after=e.valid_after,
                    valid_before=e.valid_before,
                )
                for e in self.entries
            ]
        else:
            lines = self._lines
        return "".join(line + "\n" for line in lines)


def _format_time(seconds: float) -> str:
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(seconds))


def _format_line(
    principals: Iterable[str],
    key_blob: bytes,
    namespaces: Iterable[str] | None,
    comment: str = "",
    valid_after: float | None = None,
    valid_before: float | None = None,
) -> str:
    options = [] if namespaces is None else [f'namespaces="{",".join(namespaces)}"']
    if valid_after is not None:
        options.append(f'valid-after="{_format_time(valid_after)}"')
    if valid_before is not None:
        options.append(f'valid-before="{_format_time(valid_before)}"')
    fields = [",".join(principals), *([",".join(options)] if options else []), key_line(key_blob)]
    return " ".join(fields) + (f" {comment}" if comment else "")


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (temp file + rename), keeping its mode."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_principal(principal: str) -> None:
    if not principal or _BAD_PRINCIPAL.search(principal) or not principal.isprintable():
        raise IdentityError(
            f"invalid principal {principal!r}: use a plain name such as alice@example.com, "
            "without whitespace, commas, quotes, '#', '!' or the pattern characters '*' and '?'"
        )


def add_signer(
    path: str | os.PathLike[str], principal: str, key_blob: bytes, comment: str = ""
) -> bool:
    """Allow ``principal`` to sign with ``key_blob`` in the mlops-jupyter namespace.

    Appends ``principal namespaces="mlops-jupyter" ssh-ed25519 AAAA... comment`` (creating the
    file with an explanatory header). Returns False, changing nothing, if a line already gives
    that principal that key for this namespace. The file is rewritten atomically.
    """
    _check_principal(principal)
    if not _is_ed25519(key_blob):
        raise IdentityError(
            f"cannot add a {_blob_type(key_blob)!r} key: only ssh-ed25519 keys can sign; create "
            "one with `mlops-jupyter keys init`"
        )
    if "\n" in comment or "\r" in comment:
        raise IdentityError("a signer comment must be a single line: remove the line breaks")
    path = Path(path)
    if path.exists():
        signers = AllowedSigners.load(path)
        lines = list(signers._lines or [])
        for entry in signers.for_key(key_blob):
            if principal in entry.principals and entry.allows(NAMESPACE):
                return False
    else:
        lines = HEADER.rstrip("\n").split("\n")
    lines.append(_format_line([principal], key_blob, [NAMESPACE], comment))
    _atomic_write(path, "".join(line + "\n" for line in lines))
    return True


_PRINCIPALS_FIELD = re.compile(r'[ \t]*("[^"]*"|[^ \t\r\n]+)')


def remove_signer(path: str | os.PathLike[str], who: str) -> list[AllowedSigner]:
    """Remove principal ``who``, or the key whose fingerprint is ``who`` (``SHA256:...``).

    A line naming other principals too keeps them (only ``who`` is dropped from it). Returns
    what was removed (entries with ``principals=(who,)`` for such lines; empty if nothing
    matched). Other lines and comments are kept verbatim; the write is atomic.
    """
    path = Path(path)
    signers = AllowedSigners.load(path)
    lines: list[str | None] = list(signers._lines or [])
    removed: list[AllowedSigner] = []
    by_fingerprint = who.startswith("SHA256:")
    for entry in signers.entries:
        index = entry.line_no - 1
        if by_fingerprint:
            if entry.fingerprint == who:
                lines[index] = None
                removed.append(entry)
            continue
        if who not in entry.principals:
            continue
        others = [p for p in entry.principals if p != who]
        line = lines[index]
        match = _PRINCIPALS_FIELD.match(line or "")
        if not others or match is None:
            lines[index] = None
            removed.append(entry)
            continue
        field = ",".join(others)
        if match.group(1).startswith('"'):
            field = f'"{field}"'
        assert line is not None
        lines[index] = line[: match.start(1)] + field + line[match.end(1) :]
        removed.append(replace(entry, principals=(who,)))
    if removed:
        _atomic_write(path, "".join(line + "\n" for line in lines if line is not None))
    return removed
