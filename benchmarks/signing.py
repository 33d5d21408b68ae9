"""Benchmark: signing registry actions and verifying a signed audit log, next to the unsigned chain.

    python benchmarks/signing.py            # writes the table into benchmarks/README.md
    python benchmarks/signing.py --quick    # small log, fewer repeats, prints only

Three questions, each against what the unsigned hash chain costs for the same work:

1. One signature: ``sshsig.sign`` of a real registry statement (its canonical JSON, as signed),
   next to the sha256 and the ``entry_hash`` the unsigned chain computes per entry.
2. One sign-off end to end: ``Registry.approve`` on a store whose log already holds 1,000
   entries (p50 of 21 approvals, each on its own pending request needing one sign-off, so each
   also signs the transition and rewrites the anchor), next to an unsigned
   ``audit_chain.append`` of the same entry in its own transaction. The difference is what a
   sign-off adds.
3. ``audit.verify`` of a 10,000-entry signed log (signed card-edit statements, with a few
   hundred real register/request/approve/transition statements made through the registry
   between them), next to recomputing only the hash chain of the same entries, and one
   ``ssh-keygen -Y verify`` (a subprocess per statement) for reference.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import cli_main, machine, median_ms, table  # noqa: E402

POLICY = "[tiers.low.production]\nsignoffs = 1\n"
MODEL = "churn"
REQUESTER, APPROVER = "ana@example.com", "bo@example.com"
SIGN_OFF_GOAL_MS = 5.0
VERIFY_GOAL = 5000  # entries/s


# ------------------------------------------------------------------------------ fixtures
def make_signers(directory: Path) -> dict[str, Any]:
    """Two fresh Ed25519 keys, ``REQUESTER`` and ``APPROVER``."""
    from mlops_jupyter.identity.keys import generate_key

    return {
        who: generate_key(directory / "keys" / who, comment=who) for who in (REQUESTER, APPROVER)
    }


def open_store(directory: Path, signers: dict[str, Any]) -> Any:
    """A store with the policy file and both principals in its allowed signers."""
    from mlops_jupyter.identity.allowed_signers import add_signer
    from mlops_jupyter.store import Store

    store = Store.open(directory / ".mlops")
    (store.directory / "policy.toml").write_text(POLICY, encoding="utf-8")
    for who, signer in signers.items():
        add_signer(store.directory / "allowed_signers", who, signer.key_blob)
    return store


def model_run(store: Any) -> str:
    run_id = store.record_run(
        "bench",
        name="model",
        params={"C": 1.0, "penalty": "l2"},
        metrics={"accuracy": 0.91, "auc": 0.95},
    )
    store.add_artifact(run_id, "model", pickle.dumps({"weights": list(range(100))}), kind="model")
    return str(run_id)


def card_edit_payload(principal: str, i: int) -> dict[str, Any]:
    """A signed card edit: ``append`` adds ``prev`` and ``time``; about 600 bytes signed."""
    return {
        "action": "card_edit",
        "principal": principal,
        "section": "intended_use",
        "revision": i + 1,
        "content": (
            f"Revision {i + 1}. Scores customers by their risk of churning in the next 30 days, "
            "for the retention team's weekly call list. Not for pricing or credit decisions; "
            "retrain when the monthly drift report shows PSI above 0.2 on any input feature, "
            "and review this section before each production promotion."
        ),
    }


def append_card_edits(store: Any, signer: Any, principal: str, count: int, start: int) -> None:
    from mlops_jupyter.identity import sshsig
    from mlops_jupyter.store import audit_chain

    def sign(data: bytes) -> str:
        return sshsig.sign(signer, data)

    done = 0
    while done < count:
        batch = min(500, count - done)
        with store.transaction() as conn:
            for i in range(start + done, start + done + batch):
                subject = f"run:{i % 50:032x}"
                payload = card_edit_payload(principal, i)
                audit_chain.append(conn, principal, "card_edit", subject, payload, sign=sign)
        done += batch


def promotion_cycle(requester: Any, approver: Any, run_id: str) -> float:
    """Register a new version, request production (one sign-off), approve; seconds in approve."""
    version = requester.register(run_id, MODEL, risk_tier="low").version
    request = requester.request_promotion(MODEL, version, "production", "weekly retrain")
    start = time.perf_counter()
    approved = approver.approve(request.id, "checked the card and the evaluation")
    elapsed = time.perf_counter() - start
    if approved.status != "applied":
        raise RuntimeError(f"approval of request #{request.id} did not apply: {approved!r}")
    return elapsed


def log_size(store: Any) -> int:
    from mlops_jupyter.store import audit_chain

    return audit_chain.last(store.conn)[0]


def statement(store: Any, action: str) -> tuple[str, str, str]:
    """(actor, payload, signature) of the newest signed ``action`` entry."""
    row = store._read(
        "SELECT actor, payload, signature FROM audit_log WHERE action = ? "
        "AND signature IS NOT NULL ORDER BY seq DESC LIMIT 1",
        (action,),
    )[0]
    return str(row[0]), str(row[1]), str(row[2])


# ------------------------------------------------------------------------------ timings
def per_call_us(fn: Callable[[], object], repeat: int, batch: int) -> float:
    """Median over ``repeat`` batches of ``batch`` calls, per call, in microseconds."""

    def calls() -> None:
        for _ in range(batch):
            fn()

    return median_ms(calls, repeat) / batch * 1000


def sign_off(directory: Path, signers: dict[str, Any], prefill: int, approvals: int) -> dict:
    """p50 of ``Registry.approve`` with ``prefill`` entries in the log, and the unsigned and
    signed appends of the same approve entry in a store of the same size."""
    from mlops_jupyter.identity import sshsig
    from mlops_jupyter.registry.registry import Registry
    from mlops_jupyter.store import audit_chain

    requester_key, approver_key = signers[REQUESTER], signers[APPROVER]
    with open_store(directory / "signoff", signers) as store:
        run_id = model_run(store)
        append_card_edits(store, requester_key, REQUESTER, prefill, 0)
        requester, approver = Registry(store, requester_key), Registry(store, approver_key)
        promotion_cycle(requester, approver, run_id)  # warm-up: imports, caches, first replay
        entries_before = log_size(store)
        times = [promotion_cycle(requester, approver, run_id) for _ in range(approvals)]
        approve_ms = statistics.median(times) * 1000
        actor, payload_text, _ = statement(store, "approve")
        request_statement = statement(store, "request")
    payload = json.loads(payload_text)
    for name in ("prev", "time"):  # append adds them to a signed payload
        payload.pop(name, None)
    subject = f"{payload['model']}:{payload['version']}"

    def sign(data: bytes) -> str:
        return sshsig.sign(approver_key, data)

    with open_store(directory / "unsigned", signers) as store:
        append_card_edits(store, requester_key, REQUESTER, entries_before, 0)

        def append(signed: bool) -> Callable[[], object]:
            def write() -> None:
                with store.transaction() as conn:
                    audit_chain.append(
                        conn, actor, "approve", subject, payload, sign=sign if signed else None
                    )

            return write

        repeat = max(approvals, 21)
        for _ in range(5):
            append(False)()
        unsigned_ms = median_ms(append(False), repeat * 5)
        signed_ms = median_ms(append(True), repeat * 5)
    return {
        "entries": entries_before,
        "approvals": approvals,
        "approve_ms": approve_ms,
        "unsigned_ms": unsigned_ms,
        "signed_ms": signed_ms,
        "approve_statement": (actor, payload_text),
        "request_statement": request_statement,
    }


def build_log(directory: Path, signers: dict[str, Any], entries: int, cycles: int) -> Any:
    """A store whose log holds exactly ``entries`` signed entries, ``4 * cycles + 1`` or so of
    them registry statements spread through signed card edits."""
    from mlops_jupyter.registry.registry import Registry

    requester_key, approver_key = signers[REQUESTER], signers[APPROVER]
    store = open_store(directory / "verify", signers)
    run_id = model_run(store)
    requester, approver = Registry(store, requester_key), Registry(store, approver_key)
    per_cycle = max(0, (entries - 4 * cycles) // max(1, cycles + 1))
    written = 0
    for _ in range(cycles):
        append_card_edits(store, requester_key, REQUESTER, per_cycle, written)
        written += per_cycle
        promotion_cycle(requester, approver, run_id)
    append_card_edits(store, requester_key, REQUESTER, entries - log_size(store), written)
    if log_size(store) != entries:
        raise RuntimeError(f"built a log of {log_size(store)} entries, not {entries}")
    return store


def hash_chain_only(store: Any) -> int:
    """Read every entry and recompute the unsigned hash chain (no signatures, no signers)."""
    from mlops_jupyter.store.audit_chain import GENESIS, entry_hash

    prev = GENESIS
    rows = store.audit_entries()
    for seq, ts, actor, action, subject, payload, prev_hash, digest, signature in rows:
        if (
            prev_hash != prev
            or entry_hash(prev_hash, seq, ts, actor, action, subject, payload, signature) != digest
        ):
            raise RuntimeError(f"hash chain broken at entry {seq}")
        prev = digest
    return len(rows)


def signatures_only(store: Any) -> int:
    """``sshsig.verify`` of every signed entry's payload (what verify adds to the chain)."""
    from mlops_jupyter.identity import sshsig

    rows = store._read("SELECT payload, signature FROM audit_log WHERE signature IS NOT NULL")
    for payload, signature in rows:
        sshsig.verify(signature, payload.encode("utf-8"))
    return len(rows)


def ssh_keygen_ms(
    directory: Path, signers_file: Path, actor: str, payload: str, signature: str, repeat: int
) -> float | None:
    """Median ms of one ``ssh-keygen -Y verify`` of one statement (a subprocess each)."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        return None
    sig = directory / "statement.sig"
    sig.write_text(signature, encoding="utf-8")
    message = payload.encode("utf-8")
    command = [
        keygen,
        "-Y",
        "verify",
        "-f",
        str(signers_file),
        "-I",
        actor,
        "-n",
        "mlops-jupyter",
        "-s",
        str(sig),
    ]

    def check() -> None:
        result = subprocess.run(command, input=message, capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(f"ssh-keygen -Y verify failed: {result.stderr.decode().strip()}")

    check()
    return median_ms(check, repeat)


# ------------------------------------------------------------------------------ report
def run(quick: bool) -> str:
    from mlops_jupyter.identity import sshsig
    from mlops_jupyter.registry.audit import verify
    from mlops_jupyter.store.audit_chain import entry_hash

    prefill, approvals = (100, 5) if quick else (1000, 21)
    entries, cycles = (1000, 10) if quick else (10_000, 75)
    repeat, batch = (5, 20) if quick else (21, 200)
    verify_repeat, keygen_repeat = (1, 2) if quick else (3, 21)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        signers = make_signers(directory)
        approver_key = signers[APPROVER]

        off = sign_off(directory, signers, prefill, approvals)
        print(
            f"  Registry.approve p50 {off['approve_ms']:.2f} ms, unsigned append "
            f"{off['unsigned_ms']:.3f} ms",
            flush=True,
        )

        req_actor, req_payload, _ = off["request_statement"]
        actor, text = off["approve_statement"]
        message = text.encode("utf-8")
        signature = sshsig.sign(approver_key, message)
        fields = json.loads(text)
        sha_us = per_call_us(lambda: hashlib.sha256(message).hexdigest(), repeat, batch)
        entry_us = per_call_us(
            lambda: entry_hash(
                fields["prev"], 1000, fields["time"], actor, "approve", "churn:1", text, None
            ),
            repeat,
            batch,
        )
        sign_us = per_call_us(lambda: sshsig.sign(approver_key, message), repeat, batch)
        verify_us = per_call_us(lambda: sshsig.verify(signature, message), repeat, batch)
        print(f"  sshsig.sign {sign_us:.1f} us, sha256 {sha_us:.2f} us", flush=True)

        store = build_log(directory, signers, entries, cycles)
        with store:
            report = verify(store)
            if not report.ok or report.entries != entries:
                raise RuntimeError(f"the benchmark log does not verify:\n{report}")
            registry_statements = entries - sum(
                1 for r in store._read("SELECT action FROM audit_log") if r[0] == "card_edit"
            )
            read_ms = median_ms(store.audit_entries, verify_repeat)
            chain_ms = median_ms(lambda: hash_chain_only(store), verify_repeat)
            sigs_ms = median_ms(lambda: signatures_only(store), verify_repeat)
            verify_ms = median_ms(lambda: verify(store), verify_repeat)
            keygen_ms = ssh_keygen_ms(
                directory,
                store.directory / "allowed_signers",
                actor,
                text,
                signature,
                keygen_repeat,
            )
        print(f"  verify {entries / verify_ms * 1000:,.0f} entries/s", flush=True)

    def us(value: float) -> str:
        return f"{value:,.2f} µs" if value < 10 else f"{value:,.1f} µs"

    def rate(per_second: float, unit: str = "/s") -> str:
        return f"{per_second:,.0f} {unit}"

    adds = off["approve_ms"] - off["unsigned_ms"]
    n = f"{entries:,}"
    rows = [
        [f"sha256 of the statement ({len(message)} bytes; the unsigned chain's hash)",
         us(sha_us), rate(1e6 / sha_us), "1.0x", "baseline"],
        ["`entry_hash` of its entry (canonical JSON + sha256, per unsigned entry)",
         us(entry_us), rate(1e6 / entry_us), f"{entry_us / sha_us:.1f}x", ""],
        ["**`sshsig.sign`** of the statement (Ed25519, SSHSIG armor)",
         us(sign_us), rate(1e6 / sign_us), f"{sign_us / sha_us:.0f}x", ""],
        ["`sshsig.verify` of the statement",
         us(verify_us), rate(1e6 / verify_us), f"{verify_us / sha_us:.0f}x", ""],
        [f"unsigned `audit_chain.append` of the approve entry, own transaction, "
         f"{off['entries']:,} entries in the log",
         f"{off['unsigned_ms']:.3f} ms", "", "1.0x", "baseline"],
        ["signed `audit_chain.append` of the same entry",
         f"{off['signed_ms']:.3f} ms", "", f"{off['signed_ms'] / off['unsigned_ms']:.1f}x",
         f"+{off['signed_ms'] - off['unsigned_ms']:.3f} ms"],
        [f"**`Registry.approve`**, p50 of {off['approvals']} (checks, gates, signs approve + "
         "transition, anchor)",
         f"{off['approve_ms']:.2f} ms", "", f"{off['approve_ms'] / off['unsigned_ms']:.0f}x",
         f"sign-off adds {adds:.2f} ms (goal < {SIGN_OFF_GOAL_MS:g} ms)"],
        [f"read the {n} entries (`store.audit_entries`)",
         f"{read_ms:.1f} ms", rate(entries / read_ms * 1000, "entries/s"),
         f"{read_ms / chain_ms:.2f}x", ""],
        [f"hash chain only: read + `entry_hash` + links of the {n} entries",
         f"{chain_ms:.1f} ms", rate(entries / chain_ms * 1000, "entries/s"), "1.0x", "baseline"],
        [f"`sshsig.verify` of every signed entry ({n})",
         f"{sigs_ms:.1f} ms", rate(entries / sigs_ms * 1000, "entries/s"),
         f"{sigs_ms / chain_ms:.1f}x", "signatures alone"],
        [f"**`audit.verify`** of the {n}-entry log (chain + signatures + signers + rows)",
         f"{verify_ms:.1f} ms", rate(entries / verify_ms * 1000, "entries/s"),
         f"{verify_ms / chain_ms:.1f}x", f"goal >= {VERIFY_GOAL:,} entries/s"],
    ]  # fmt: skip
    if keygen_ms is not None:
        rows.append(
            ["`ssh-keygen -Y verify` of one statement (a subprocess)",
             f"{keygen_ms:.2f} ms", rate(1000 / keygen_ms, "entries/s"),
             f"{keygen_ms / (verify_ms / entries):.0f}x per entry", "reference"]
        )  # fmt: skip
    else:
        print("  ssh-keygen: not found, reference row skipped")
    keygen = ""
    if keygen_ms is not None:
        version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
        keygen = f", {version.split(',')[0]}" if version else ""
    from cryptography import __version__ as cryptography_version

    return (
        f"Machine: {machine()}, cryptography {cryptography_version}{keygen}.\n\n"
        f"One statement: the canonical JSON of a real `approve` statement ({len(message)} bytes; "
        f"a `request` one is {len(req_payload.encode())}). Per-call figures: median of {repeat} "
        f"batches of {batch}; appends median of {max(approvals, 21) * 5}; the verify rows median "
        f"of {verify_repeat}, on a log of {n} signed entries ({registry_statements} of them "
        f"register/request/approve/transition statements made through `Registry`, the rest "
        "signed card edits). Each ratio is against the row marked baseline above it.\n\n"
        + table(["what", "time", "rate", "vs baseline", "note"], rows)
    )


def main() -> None:
    cli_main(__doc__, "signing", run, quick_help="a 1,000-entry log, fewer repeats, print only")


if __name__ == "__main__":
    main()
