"""Exceptions raised by mlops-jupyter.

Every error the package raises on purpose derives from :class:`MLOpsError`, so an adapter
(magic, CLI, REST handler) can translate all of them in one place::

    MLOpsError
    ├── StoreError
    │   ├── StoreNotFoundError       no store at the path (and creating one was not asked for)
    │   ├── CorruptStoreError        the file at the store path is not a usable SQLite store
    │   ├── StoreVersionError        the store was written by a newer mlops-jupyter
    │   ├── StorePermissionError     the store directory or file cannot be written
    │   ├── StoreFullError           the disk holding the store is full (nothing was written)
    │   ├── BlobIntegrityError       a blob's content does not match its name
    │   ├── StoreBusyError           another process held the write lock past the busy timeout
    │   └── ImmutableArtifactError   replacing the model artifact of a registered version
    ├── IdentityError                no usable signing key, or a bad allowed-signers file
    ├── SignatureError               a signature that does not verify
    ├── RunNotFoundError (KeyError)  no run with that id (or id prefix)
    └── AmbiguousRunError (KeyError) an id prefix that matches several runs
"""

from __future__ import annotations


class MLOpsError(Exception):
    """Base class of every error mlops-jupyter raises on purpose."""


class StoreError(MLOpsError):
    """A problem with the store on disk."""


class StoreNotFoundError(StoreError):
    """No store exists where one was expected, and creating one was not requested."""


class CorruptStoreError(StoreError):
    """The file at the store path is not a readable mlops-jupyter SQLite store."""


class StoreVersionError(StoreError):
    """The store's schema is newer than this version of mlops-jupyter understands."""


class StorePermissionError(StoreError):
    """The store cannot be created or written at its location."""


class StoreFullError(StoreError):
    """The disk (or quota) holding the store is full; the write was rolled back."""


class BlobIntegrityError(StoreError):
    """A content-addressed blob's bytes do not hash to its name."""


class StoreBusyError(StoreError):
    """Another process held the store's write lock for longer than the busy timeout."""


class ImmutableArtifactError(StoreError):
    """A registered model version's artifact cannot be replaced or removed."""


class IdentityError(MLOpsError):
    """No usable signing key, or an allowed-signers file that cannot be used (says how to fix)."""


class SignatureError(MLOpsError):
    """A signature is malformed, does not verify, or is for another namespace or message."""


class RunNotFoundError(MLOpsError, KeyError):
    """No run matches the given id."""

    def __init__(self, run_id: str, detail: str = "") -> None:
        self.run_id = run_id
        msg = f"no run with id {run_id!r} in this store"
        super().__init__(msg + (f" ({detail})" if detail else ""))

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MetricNotFoundError(MLOpsError, KeyError):
    """A run has no metric of the given name."""

    def __init__(self, run_id: str, key: str, known: list[str]) -> None:
        self.run_id, self.key = run_id, key
        names = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        super().__init__(
            f"run {run_id} has no metric {key!r}" + (f" (it has: {names})" if known else "")
        )

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousRunError(RunNotFoundError):
    """A run id prefix matches more than one run."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.run_id = prefix
        self.matches = matches
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        KeyError.__init__(
            self,
            f"run id prefix {prefix!r} matches {len(matches)} runs ({shown}); give more characters",
        )
