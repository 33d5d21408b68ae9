"""Signing identities against real OpenSSH: SSHSIG signatures, keys, ssh-agent, allowed signers."""

from __future__ import annotations

import base64
import calendar
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_or_fail
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlops_jupyter.errors import IdentityError, SignatureError
from mlops_jupyter.identity import agent, keys, sshsig
from mlops_jupyter.identity.allowed_signers import (
    AllowedSigners,
    add_signer,
    parse_time,
    remove_signer,
)
from mlops_jupyter.identity.keys import Signer, default_key_path, generate_key, load_signer
from mlops_jupyter.identity.sshsig import NAMESPACE, fingerprint, key_line, sign, verify

MESSAGE = b'{"statement": "approve", "model": "churn", "version": 3}\n'


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _str(data: bytes) -> bytes:
    return _u32(len(data)) + data


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    return f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----\n"


def _memory_signer() -> Signer:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Signer(_str(b"ssh-ed25519") + _str(raw), "memory", key.sign)


SIGNER = _memory_signer()
KEY = key_line(SIGNER.key_blob)
OTHER = _memory_signer()
RSA_BLOB = _str(b"ssh-rsa") + _str(b"\x01\x00\x01") + _str(b"\x00" + b"\xab" * 256)


# -- OpenSSH helpers -------------------------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} not found (install OpenSSH)")
        raise AssertionError  # unreachable: skip_or_fail raises
    return path


@pytest.fixture
def ssh_keygen() -> str:
    return _tool("ssh-keygen")


def keygen(ssh_keygen: str, path: Path, key_type: str = "ed25519", passphrase: str = "") -> bytes:
    """A key made by ssh-keygen; returns the blob of its .pub file."""
    extra = ["-b", "2048"] if key_type == "rsa" else []
    subprocess.run(
        [ssh_keygen, "-q", "-t", key_type, *extra, "-N", passphrase, "-C", "test key"]
        + ["-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return base64.b64decode(Path(f"{path}.pub").read_text().split()[1])


def ssh_sign(
    ssh_keygen: str, key: Path, message: bytes, namespace: str = NAMESPACE, *opts: str
) -> str:
    out = subprocess.run(
        [ssh_keygen, "-Y", "sign", "-f", str(key), "-n", namespace, *opts],
        input=message,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode()


def ssh_verify(
    ssh_keygen: str,
    allowed: Path,
    principal: str,
    armored: str,
    message: bytes,
    namespace: str = NAMESPACE,
    verify_time: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    sig = allowed.parent / "message.sig"
    sig.write_text(armored)
    cmd = [ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", namespace]
    cmd += ["-s", str(sig)] + ([f"-Overify-time={verify_time}"] if verify_time else [])
    return subprocess.run(cmd, input=message, capture_output=True)


@pytest.fixture
def ssh_agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent for this test, with SSH_AUTH_SOCK pointing at it."""
    binary = _tool("ssh-agent")
    _tool("ssh-add")
    # AF_UNIX paths are limited to ~100 bytes: pytest's tmp_path can be longer
    directory = tempfile.mkdtemp(prefix="mj-agent-", dir="/tmp" if os.path.isdir("/tmp") else None)
    sock = os.path.join(directory, "agent.sock")
    proc = subprocess.Popen(
        [binary, "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("ssh-agent did not start")
            time.sleep(0.01)
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def ssh_add(path: Path) -> None:
    subprocess.run(
        [_tool("ssh-add"), str(path)], check=True, capture_output=True, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def cet_timezone() -> Iterator[None]:
    """Local time with summer time (CET/CEST), for OpenSSH's local-time rules."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "CET-1CEST,M3.5.0,M10.5.0/3"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# -- SSHSIG against ssh-keygen ---------------------------------------------------------------------


def test_our_signature_verifies_with_ssh_keygen(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key)
    signer = load_signer(key)
    armored = sign(signer, MESSAGE)
    allowed = tmp_path / "allowed_signers"
    assert add_signer(allowed, "alice@example.com", signer.key_blob, "laptop") is True

    good = ssh_verify(ssh_keygen, allowed, "alice@example.com", armored, MESSAGE)
    assert good.returncode == 0, good.stderr
    assert good.stdout.decode() == (
        f'Good "mlops-jupyter" signature for alice@example.com with ED25519 key '
        f"{signer.fingerprint}\n"
    )
    changed = ssh_verify(ssh_keygen, allowed, "alice@example.com", armored, MESSAGE + b" ")
    assert changed.returncode != 0
    assert ssh_verify(ssh_keygen, allowed, "bob@example.com", armored, MESSAGE).returncode != 0


@pytest.mark.parametrize("message", [MESSAGE, b"", bytes(range(256)) * 300])
def test_signature_is_byte_identical_to_ssh_keygen(
    ssh_keygen: str, tmp_path: Path, message: bytes
) -> None:
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key)
    ours = sign(load_signer(key), message)
    assert ours == ssh_sign(ssh_keygen, key, message)  # Ed25519 is deterministic
    assert ours.startswith("-----BEGIN SSH SIGNATURE-----\n")
    assert ours.endswith("\n-----END SSH SIGNATURE-----\n")
    assert {len(line) for line in ours.splitlines()[1:-2]} == {70}


def test_ssh_keygen_signature_verifies_here(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    blob = keygen(ssh_keygen, key)
    theirs = ssh_sign(ssh_keygen, key, MESSAGE)
    assert verify(theirs, MESSAGE) == blob
    assert sshsig.signature_key(theirs) == blob

    sha256 = ssh_sign(ssh_keygen, key, MESSAGE, NAMESPACE, "-O", "hashalg=sha256")
    assert b"sha256" in base64.b64decode("".join(sha256.splitlines()[1:-1]))
    assert verify(sha256, MESSAGE) == blob

    with pytest.raises(SignatureError, match="bad signature") as bad:
        verify(theirs, MESSAGE.replace(b"3", b"4"))
    assert fingerprint(blob) in str(bad.value)


def test_wrong_namespace_is_rejected_naming_both(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key)
    git_signature = ssh_sign(ssh_keygen, key, MESSAGE, "git")
    with pytest.raises(SignatureError) as error:
        verify(git_signature, MESSAGE)
    assert "namespace 'git', not 'mlops-jupyter'" in str(error.value)
    assert verify(git_signature, MESSAGE, namespace="git") == sshsig.signature_key(git_signature)


def test_tampered_signature_is_rejected(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key)
    theirs = ssh_sign(ssh_keygen, key, MESSAGE)
    blob = bytearray(base64.b64decode("".join(theirs.splitlines()[1:-1])))
    blob[-5] ^= 0x01  # inside the 64 signature bytes
    tampered = _armor(bytes(blob))
    with pytest.raises(SignatureError, match="bad signature by SHA256:"):
        verify(tampered, MESSAGE)


def test_rsa_signature_from_ssh_keygen_is_refused(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_rsa"
    keygen(ssh_keygen, key, "rsa")
    with pytest.raises(SignatureError, match="unsupported signing key type 'ssh-rsa'"):
        verify(ssh_sign(ssh_keygen, key, MESSAGE), MESSAGE)


def _reblob(
    armored: str,
    *,
    magic: bytes = b"SSHSIG",
    version: int = 1,
    key: bytes | None = None,
    namespace: bytes | None = None,
    hash_alg: bytes | None = None,
    sig: bytes | None = None,
    tail: bytes = b"",
    cut: int = 0,
) -> str:
    """``armored`` rebuilt with some fields replaced."""
    k, ns, h, s = sshsig._parse(armored)
    blob = magic + _u32(version) + _str(key or k) + _str(namespace or ns) + _str(b"")
    blob += _str(hash_alg or h) + _str(sig or s) + tail
    blob = blob[: len(blob) - cut]
    return _armor(blob)


GOOD = sign(SIGNER, MESSAGE)


@pytest.mark.parametrize(
    ("armored", "reason"),
    [
        ("hello", "does not start with '-----BEGIN SSH SIGNATURE-----'"),
        (GOOD.replace("-----END SSH SIGNATURE-----", ""), "does not end with"),
        (GOOD.replace("\n", "\n!!", 1), "not valid base64"),
        (_reblob(GOOD, magic=b"SSHSIH"), "does not start with 'SSHSIG'"),
        (_reblob(GOOD, version=2), "unsupported SSH signature version 2"),
        (_reblob(GOOD, cut=10), "truncated"),
        (_reblob(GOOD, tail=b"\0\0"), "2 unexpected bytes after the signature"),
        (_reblob(GOOD, namespace=b"file"), "namespace 'file', not 'mlops-jupyter'"),
        (_reblob(GOOD, hash_alg=b"md5"), "unsupported signature hash algorithm 'md5'"),
        (_reblob(GOOD, key=RSA_BLOB), "unsupported signing key type 'ssh-rsa'"),
        (_reblob(GOOD, sig=_str(b"ssh-rsa") + _str(b"x" * 64)), "got a 'ssh-rsa' one"),
        (_reblob(GOOD, key=OTHER.key_blob), f"bad signature by {OTHER.fingerprint}"),
    ],
)
def test_verify_says_why_a_signature_is_refused(armored: str, reason: str) -> None:
    assert verify(GOOD, MESSAGE) == SIGNER.key_blob  # the unaltered one is fine
    with pytest.raises(SignatureError) as error:
        verify(armored, MESSAGE)
    assert reason in str(error.value)


def test_verify_accepts_crlf_and_surrounding_whitespace() -> None:
    assert verify("\n  " + GOOD.replace("\n", "\r\n") + "\n", MESSAGE) == SIGNER.key_blob


# -- fingerprints and key lines --------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_fingerprint_equals_ssh_keygen_lf(ssh_keygen: str, tmp_path: Path, key_type: str) -> None:
    key = tmp_path / "key"
    blob = keygen(ssh_keygen, key, key_type)
    out = subprocess.run(
        [ssh_keygen, "-lf", f"{key}.pub"], capture_output=True, text=True, check=True
    )
    assert fingerprint(blob) == out.stdout.split()[1]
    assert fingerprint(blob).startswith("SHA256:") and not fingerprint(blob).endswith("=")


def test_key_line_and_parse_key_line(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "key"
    blob = keygen(ssh_keygen, key)
    pub = Path(f"{key}.pub").read_text()
    assert key_line(blob) == " ".join(pub.split()[:2])
    assert sshsig.parse_key_line(pub) == blob  # with its comment
    assert sshsig.parse_key_line(key_line(blob)) == blob


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "expected a public key line"),
        ("ssh-rsa AAAAB3NzaC1yc2E= me", "ssh-rsa keys are not supported, only ssh-ed25519"),
        ("ssh-ed25519 !!!", "is not valid base64"),
        (f"ssh-ed25519 {base64.b64encode(RSA_BLOB).decode()}", "its data is a 'ssh-rsa' blob"),
    ],
)
def test_parse_key_line_refuses(line: str, reason: str) -> None:
    with pytest.raises(IdentityError) as error:
        sshsig.parse_key_line(line)
    assert reason in str(error.value)


# -- loading keys ----------------------------------------------------------------------------------


def test_load_signer_reads_ssh_keygen_and_pem_keys(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    blob = keygen(ssh_keygen, key)
    signer = load_signer(key)
    assert (signer.key_blob, signer.source) == (blob, str(key))
    assert signer.fingerprint == fingerprint(blob)
    assert verify(sign(signer, MESSAGE), MESSAGE) == blob
    assert "_sign=" not in repr(signer)

    loaded = serialization.load_ssh_private_key(key.read_bytes(), password=None)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert load_signer(pem).key_blob == blob
    with pytest.raises(IdentityError, match=r"is a public key: give the private key"):
        load_signer(f"{key}.pub")


def test_missing_key_file_says_keys_init(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(IdentityError) as error:
        load_signer(missing)
    assert f"no private key at {missing}" in str(error.value)
    assert "`mlops-jupyter keys init`" in str(error.value)


@pytest.mark.parametrize(("passphrase", "named"), [("", "RSA (ssh-rsa)"), ("x", "ssh-rsa")])
def test_rsa_key_is_refused_naming_its_type(
    ssh_keygen: str, tmp_path: Path, passphrase: str, named: str
) -> None:
    key = tmp_path / "id_rsa"
    keygen(ssh_keygen, key, "rsa", passphrase)
    with pytest.raises(IdentityError) as error:
        load_signer(key)
    message = str(error.value)
    assert f"{key} holds a key of type {named}, but only Ed25519 keys are supported" in message
    assert "`mlops-jupyter keys init`" in message


def test_passphrase_key_without_agent_says_ssh_add(
    ssh_keygen: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key, passphrase="secret")
    with pytest.raises(IdentityError) as error:
        load_signer(key)
    assert f"{key} is passphrase-protected: add it to ssh-agent with `ssh-add {key}`" in str(
        error.value
    )
    assert "SSH_AUTH_SOCK is not set" in str(error.value)


def test_passphrase_key_signs_through_ssh_agent(
    ssh_keygen: str, ssh_agent: str, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    blob = keygen(ssh_keygen, key)
    ssh_add(key)
    subprocess.run(
        [ssh_keygen, "-q", "-p", "-P", "", "-N", "secret", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(TypeError, match="password"):  # really encrypted now
        serialization.load_ssh_private_key(key.read_bytes(), password=None)

    signer = load_signer(key)
    assert (signer.key_blob, signer.source) == (blob, "ssh-agent")
    armored = sign(signer, MESSAGE)
    allowed = tmp_path / "allowed_signers"
    add_signer(allowed, "alice", blob)
    result = ssh_verify(ssh_keygen, allowed, "alice", armored, MESSAGE)
    assert result.returncode == 0, result.stderr
    assert verify(armored, MESSAGE) == blob

    Path(f"{key}.pub").unlink()  # the public key is read from the private key's header
    assert load_signer(key).key_blob == blob


def test_passphrase_key_not_in_agent_says_ssh_add(
    ssh_keygen: str, ssh_agent: str, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    keygen(ssh_keygen, key, passphrase="secret")
    with pytest.raises(IdentityError) as error:
        load_signer(key)
    assert str(error.value) == (
        f"{key} is passphrase-protected: add it to ssh-agent with `ssh-add {key}` "
        "(the running ssh-agent does not hold it)"
    )


def test_default_signer_is_the_agents_first_ed25519_key(
    ssh_keygen: str, ssh_agent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert default_key_path() == keys.DEFAULT_KEY == home / ".ssh" / "id_ed25519"

    rsa_key, ed_key = tmp_path / "id_rsa", tmp_path / "id_ed25519"
    rsa_blob = keygen(ssh_keygen, rsa_key, "rsa")
    ed_blob = keygen(ssh_keygen, ed_key)
    ssh_add(rsa_key)
    with pytest.raises(IdentityError, match=r"holds no Ed25519 key \(1 of other types\)"):
        load_signer()
    ssh_add(ed_key)
    assert agent.available()
    assert agent.identities() == [(rsa_blob, "test key"), (ed_blob, "test key")]

    signer = load_signer()
    assert (signer.key_blob, signer.source) == (ed_blob, "ssh-agent")
    assert verify(sign(signer, MESSAGE), MESSAGE) == ed_blob


def test_default_signer_prefers_the_home_key_file(
    ssh_keygen: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    (tmp_path / ".ssh").mkdir()
    blob = keygen(ssh_keygen, tmp_path / ".ssh" / "id_ed25519")
    signer = load_signer()
    assert (signer.key_blob, signer.source) == (blob, str(tmp_path / ".ssh" / "id_ed25519"))


@pytest.mark.parametrize("sock", [None, "/nonexistent/agent.sock"])
def test_no_key_and_no_agent_says_keys_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sock: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if sock is None:
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    else:
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    assert not agent.available()
    with pytest.raises(IdentityError) as error:
        load_signer()
    message = str(error.value)
    assert message.startswith(f"no signing key: there is no {tmp_path}/.ssh/id_ed25519 and ")
    assert "run `mlops-jupyter keys init`" in message
    assert (
        "SSH_AUTH_SOCK is not set" if sock is None else f"cannot reach ssh-agent at {sock}"
    ) in (message)


def test_agent_signs_only_with_its_keys(ssh_agent: str, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    signer = generate_key(key)
    ssh_add(key)
    raw = agent.sign(signer.key_blob, b"data")
    assert raw == signer.sign_raw(b"data")  # deterministic: the agent used this very key
    with pytest.raises(IdentityError) as error:
        agent.sign(OTHER.key_blob, b"data")
    assert f"ssh-agent refused to sign with {OTHER.fingerprint}" in str(error.value)
    assert "`ssh-add PATH`" in str(error.value)


# -- generating keys -------------------------------------------------------------------------------


def test_generate_key_writes_an_openssh_key_pair(ssh_keygen: str, tmp_path: Path) -> None:
    key = tmp_path / "new" / "dir" / "id_ed25519"
    signer = generate_key(key, "alice@laptop")
    assert signer.source == str(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700
    pub = Path(f"{key}.pub")
    assert pub.read_text() == f"{key_line(signer.key_blob)} alice@laptop\n"

    derived = subprocess.run(
        [ssh_keygen, "-y", "-f", str(key)], capture_output=True, text=True, check=True
    )
    assert " ".join(derived.stdout.split()[:2]) == key_line(signer.key_blob)
    assert ssh_sign(ssh_keygen, key, MESSAGE) == sign(signer, MESSAGE)
    assert load_signer(key).key_blob == signer.key_blob

    before = key.read_bytes()
    with pytest.raises(IdentityError, match="already exists: not overwriting it"):
        generate_key(key)
    assert key.read_bytes() == before

    lone_pub = tmp_path / "other"
    Path(f"{lone_pub}.pub").write_text("ssh-ed25519 AAAA\n")
    with pytest.raises(IdentityError, match=r"other\.pub already exists"):
        generate_key(lone_pub)
    assert not lone_pub.exists()


# -- allowed signers: parsing ----------------------------------------------------------------------


def _local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return time.mktime((y, m, d, hh, mm, ss, 0, 0, 0))  # tm_isdst=0, as OpenSSH


def _utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return float(calendar.timegm((y, m, d, hh, mm, ss, 0, 0, 0)))


@pytest.mark.parametrize(
    ("line", "principals", "namespaces", "after", "before"),
    [
        (f"alice@example.com {KEY}", ("alice@example.com",), None, None, None),
        (
            f"  alice,bob@*.example.com,!mallory@example.com\t{KEY} comment with  spaces",
            ("alice", "bob@*.example.com", "!mallory@example.com"),
            None,
            None,
            None,
        ),
        (f'"alice@example.com" {KEY}', ("alice@example.com",), None, None, None),
        (
            f'alice namespaces="mlops-jupyter,git" {KEY}',
            ("alice",),
            ("mlops-jupyter", "git"),
            None,
            None,
        ),
        (
            f'alice NAMESPACES="a, b c",valid-after="20240101",Valid-Before="20250101Z" {KEY} x',
            ("alice",),
            ("a", " b c"),
            _local(2024, 1, 1),
            _utc(2025, 1, 1),
        ),
        (
            f'alice valid-after="202401021530",valid-before="20240102153045UTC" {KEY}',
            ("alice",),
            None,
            _local(2024, 1, 2, 15, 30),
            _utc(2024, 1, 2, 15, 30, 45),
        ),
        (f'alice namespaces="say \\"hi\\"" {KEY}', ("alice",), ('say "hi"',), None, None),
    ],
)
def test_allowed_signers_lines(
    line: str,
    principals: tuple[str, ...],
    namespaces: tuple[str, ...] | None,
    after: float | None,
    before: float | None,
) -> None:
    signers = AllowedSigners.parse(f"# team\n\n{line}\n")
    [entry] = signers.entries
    assert (entry.principals, entry.key_blob, entry.namespaces) == (
        principals,
        SIGNER.key_blob,
        namespaces,
    )
    assert (entry.valid_after, entry.valid_before, entry.line_no) == (after, before, 3)
    assert entry.principal == principals[0]
    assert entry.fingerprint == SIGNER.fingerprint


def test_parse_keeps_text_and_accepts_other_key_types() -> None:
    rsa = f"carol ssh-rsa {base64.b64encode(RSA_BLOB).decode()} from git"
    text = f"# comment\n\n   \n  # indented comment\nalice {KEY}\r\n{rsa}\n"
    signers = AllowedSigners.parse(text, "team/allowed_signers")
    assert [(e.principal, e.line_no) for e in signers.entries] == [("alice", 5), ("carol", 6)]
    assert signers.path == Path("team/allowed_signers")
    assert signers.text() == text
    assert [e.principal for e in signers.for_key(RSA_BLOB)] == ["carol"]
    assert signers.principals_for(RSA_BLOB) == ["carol"]  # a line lists keys, not signatures


MALFORMED = [
    ("alice", "expected `principals [options] ssh-ed25519 BASE64-KEY [comment]`, got only 'alice'"),
    (f"alice cert-authority {KEY}", "cert-authority lines (SSH certificates) are not supported"),
    (f'alice namespaces="x",cert-authority {KEY}', "cert-authority lines"),
    ("alice ssh-ed25519-cert-v01@openssh.com AAAA", "certificates are not supported"),
    (
        f"alice foo=bar {KEY}",
        'valid-after="..." or valid-before="...", got \'foo=bar\'',
    ),
    (
        f"alice namespaces=mlops-jupyter {KEY}",
        'expected namespaces="..." with the value in double quotes',
    ),
    (f'alice namespaces="mlops-jupyter {KEY}', "expected a closing '\"' in the options"),
    (
        f'alice valid-after="2024" {KEY}',
        "expected valid-after=\"YYYYMMDD[HHMM[SS]][Z]\", got valid-after='2024'",
    ),
    (f'alice valid-before="20241301" {KEY}', "got valid-before='20241301'"),
    (
        f'alice valid-after="20250101",valid-before="20240101" {KEY}',
        "expected valid-before later than valid-after",
    ),
    (f'alice namespaces="a",namespaces="b" {KEY}', 'expected one namespaces="..." option'),
    (f'alice namespaces="a", {KEY}', "expected another option after the last ','"),
    (f'alice namespaces="a"x {KEY}', "expected ',' between options, got 'x'"),
    (
        "alice ssh-ed25519 !!!notbase64",
        "expected the base64 data of a ssh-ed25519 key, got '!!!notbase64'",
    ),
    ("alice ssh-ed25519", "expected the base64 data of a ssh-ed25519 key, got ''"),
    (
        f"alice ssh-ed25519 {base64.b64encode(RSA_BLOB).decode()}",
        "expected the base64 data of a ssh-ed25519 key",
    ),
    ('alice namespaces="x"', "expected a key after the options"),
    ('alice namespaces="x" rsa-foo AAAA', "expected a key type such as ssh-ed25519, got 'rsa-foo'"),
    (f'"alice {KEY}', "expected a closing '\"' after the principals"),
]


@pytest.mark.parametrize(("line", "reason"), MALFORMED)
def test_malformed_lines_name_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(IdentityError) as error:
        AllowedSigners.parse(f"# team\n{line}\n", "team/allowed_signers")
    message = str(error.value)
    assert message.startswith("team/allowed_signers:2: ")
    assert reason in message


def test_malformed_lines_are_refused_by_ssh_keygen_too(ssh_keygen: str, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice {KEY}\n")
    assert ssh_verify(ssh_keygen, allowed, "alice", GOOD, MESSAGE).returncode == 0
    for line, _ in MALFORMED:
        allowed.write_text(line + "\n")
        assert ssh_verify(ssh_keygen, allowed, "alice", GOOD, MESSAGE).returncode != 0, line


def test_load_missing_file_says_how_to_add_people(tmp_path: Path) -> None:
    path = tmp_path / "allowed_signers"
    with pytest.raises(IdentityError) as error:
        AllowedSigners.load(path)
    assert str(error.value).startswith(f"no allowed-signers file at {path}: ")
    assert "`mlops-jupyter keys init --principal NAME`" in str(error.value)


def test_parse_time_like_openssh(cet_timezone: None) -> None:
    assert parse_time("20240701Z") == _utc(2024, 7, 1)
    assert parse_time("20240701") == _utc(2024, 6, 30, 23)  # tm_isdst=0: CET, even in summer
    assert parse_time("20240101") == _utc(2023, 12, 31, 23)
    assert parse_time("20240101120000utc") == _utc(2024, 1, 1, 12)
    for bad in ["", "2024", "2024010", "20240101Z1", "20240230", "202401011260", "19700101Z"]:
        assert parse_time(bad) is None, bad


# -- allowed signers: who may sign -----------------------------------------------------------------


PRINCIPAL_LINES = [
    f"p_any {KEY}",
    f'p_ns namespaces="mlops-jupyter" {KEY}',
    f'p_git namespaces="git" {KEY}',
    f'p_pat namespaces="mlops-*,!mlops-jupyter-test" {KEY}',
    f'p_neg namespaces="*,!mlops-jupyter" {KEY}',
    f'p_win valid-after="20240701",valid-before="20240801Z" {KEY}',
    f'p_old valid-before="20240101" {KEY}',
    f"team,*@example.com,!eve@example.com {KEY}",
    f"p_other {key_line(OTHER.key_blob)}",
]
ALL_PRINCIPALS = ["p_any", "p_ns", "p_git", "p_pat", "p_neg", "p_win", "p_old", "team", "p_other"]


@pytest.mark.parametrize(
    ("namespace", "verify_time", "expected"),
    [
        (NAMESPACE, "20240715Z", ["p_any", "p_ns", "p_pat", "p_win", "team"]),
        (NAMESPACE, "20240630223000Z", ["p_any", "p_ns", "p_pat", "team"]),  # before 23:00Z
        (NAMESPACE, "20240630233000Z", ["p_any", "p_ns", "p_pat", "p_win", "team"]),
        (NAMESPACE, "20240801000000Z", ["p_any", "p_ns", "p_pat", "p_win", "team"]),  # inclusive
        (NAMESPACE, "20240801000001Z", ["p_any", "p_ns", "p_pat", "team"]),
        (NAMESPACE, "20231231225959Z", ["p_any", "p_ns", "p_pat", "p_old", "team"]),
        ("mlops-jupyter-test", "20240715Z", ["p_any", "p_neg", "p_win", "team"]),
        ("git", "20240715Z", ["p_any", "p_git", "p_neg", "p_win", "team"]),
    ],
)
def test_principals_for_agrees_with_ssh_keygen(
    ssh_keygen: str,
    tmp_path: Path,
    cet_timezone: None,
    namespace: str,
    verify_time: str,
    expected: list[str],
) -> None:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("\n".join(PRINCIPAL_LINES) + "\n")
    signers = AllowedSigners.load(allowed)
    at = float(
        calendar.timegm(time.strptime(verify_time.rstrip("Z").ljust(14, "0"), "%Y%m%d%H%M%S"))
    )
    assert signers.principals_for(SIGNER.key_blob, namespace, at) == expected

    armored = sign(SIGNER, MESSAGE, namespace)
    accepted = [
        p
        for p in ALL_PRINCIPALS
        if ssh_verify(ssh_keygen, allowed, p, armored, MESSAGE, namespace, verify_time).returncode
        == 0
    ]
    assert accepted == expected


def test_for_key_for_principal_and_allows() -> None:
    signers = AllowedSigners.parse("\n".join(PRINCIPAL_LINES) + "\n")
    assert len(signers.for_key(SIGNER.key_blob)) == 8
    assert [e.principal for e in signers.for_key(OTHER.key_blob)] == ["p_other"]
    assert signers.for_key(RSA_BLOB) == []
    assert [e.line_no for e in signers.for_principal("bob@example.com")] == [8]
    assert signers.for_principal("eve@example.com") == []  # negated
    assert [e.line_no for e in signers.for_principal("p_git")] == [3]
    assert signers.principals_for(SIGNER.key_blob, at=None) == [
        "p_any",
        "p_ns",
        "p_pat",
        "p_win",
        "p_old",
        "team",
    ]
    win = signers.for_principal("p_win")[0]
    assert win.allows(NAMESPACE) and win.allows(NAMESPACE, at=win.valid_after)
    assert not win.allows(NAMESPACE, at=win.valid_after - 1)  # type: ignore[operator]


# -- allowed signers: editing ----------------------------------------------------------------------


def test_add_signer_creates_a_file_ssh_keygen_accepts(ssh_keygen: str, tmp_path: Path) -> None:
    path = tmp_path / "project" / "allowed_signers"
    assert add_signer(path, "alice@example.com", SIGNER.key_blob, "alice's laptop") is True
    text = path.read_text()
    header, last = text.rstrip("\n").rsplit("\n", 1)
    assert all(line.startswith("#") for line in header.split("\n"))
    assert "Commit this file with the project" in header
    assert last == f'alice@example.com namespaces="mlops-jupyter" {KEY} alice\'s laptop'
    [entry] = AllowedSigners.load(path).entries
    assert (entry.principals, entry.namespaces) == (("alice@example.com",), (NAMESPACE,))
    result = ssh_verify(ssh_keygen, path, "alice@example.com", GOOD, MESSAGE)
    assert result.returncode == 0, result.stderr
    assert add_signer(path, "alice@example.com", SIGNER.key_blob) is False
    assert path.read_text() == text
    assert sorted(p.name for p in path.parent.iterdir()) == ["allowed_signers", "message.sig"]


def test_add_and_remove_keep_other_lines_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "allowed_signers"
    original = (
        "# our team\n"
        f'alice,bob  namespaces="mlops-jupyter,git"   {KEY}   shared key\n'
        "\n"
        f"dave ssh-rsa {base64.b64encode(RSA_BLOB).decode()}\n"
        f'alice namespaces="git" {key_line(OTHER.key_blob)}\n'
    )
    path.write_text(original)
    path.chmod(0o640)

    assert add_signer(path, "alice", SIGNER.key_blob) is False  # already there (shared line)
    assert add_signer(path, "alice", OTHER.key_blob) is True  # the existing line is git-only
    assert add_signer(path, "carol", OTHER.key_blob, "carol") is True
    added = (
        f'alice namespaces="mlops-jupyter" {key_line(OTHER.key_blob)}\n'
        f'carol namespaces="mlops-jupyter" {key_line(OTHER.key_blob)} carol\n'
    )
    assert path.read_text() == original + added
    assert stat.S_IMODE(path.stat().st_mode) == 0o640

    removed = remove_signer(path, "bob")
    assert [(e.principals, e.key_blob, e.line_no) for e in removed] == [
        (("bob",), SIGNER.key_blob, 2)
    ]
    assert path.read_text() == (original + added).replace("alice,bob  ", "alice  ")

    removed = remove_signer(path, OTHER.fingerprint)
    assert [e.principal for e in removed] == ["alice", "alice", "carol"]
    assert path.read_text() == (
        "# our team\n"
        f'alice  namespaces="mlops-jupyter,git"   {KEY}   shared key\n'
        "\n"
        f"dave ssh-rsa {base64.b64encode(RSA_BLOB).decode()}\n"
    )

    before = path.read_text()
    assert remove_signer(path, "nobody") == []
    assert remove_signer(path, "SHA256:nothing") == []
    assert path.read_text() == before

    assert [e.principal for e in remove_signer(path, "alice")] == ["alice"]
    assert AllowedSigners.load(path).principals_for(SIGNER.key_blob) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize(
    "principal", ["", "a b", "a,b", 'a"b', "a'b", "a*", "a?", "!a", "#a", "a\tb", "a\\b", "a\nb"]
)
def test_add_signer_refuses_unsafe_principals(tmp_path: Path, principal: str) -> None:
    path = tmp_path / "allowed_signers"
    with pytest.raises(IdentityError, match="invalid principal"):
        add_signer(path, principal, SIGNER.key_blob)
    assert not path.exists()


def test_add_signer_refuses_non_ed25519_keys(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="cannot add a 'ssh-rsa' key"):
        add_signer(tmp_path / "allowed_signers", "alice", RSA_BLOB)


# -- layering --------------------------------------------------------------------------------------


def test_identity_is_plain_python_and_not_imported_by_the_package() -> None:
    code = (
        "import json, sys, mlops_jupyter\n"
        "before = sorted(sys.modules)\n"
        "import mlops_jupyter.identity\n"
        "print(json.dumps([before, sorted(sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    assert "mlops_jupyter.identity" not in before and "cryptography" not in before
    assert "mlops_jupyter.identity.allowed_signers" in after
    loaded = {name.split(".")[0] for name in after}
    assert not loaded & {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "tornado"}
