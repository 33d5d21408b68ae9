"""Signing identities: who signed a registry statement, and whether they were allowed to.

Three parts, all plain Python over :mod:`cryptography` and OpenSSH formats, so the usual tools
can check everything by hand:

* :mod:`.keys` finds the Ed25519 SSH key to sign with (a key file, ``~/.ssh/id_ed25519`` or
  ssh-agent, via :mod:`.agent`) and generates new ones;
* :mod:`.sshsig` makes and checks SSHSIG signatures (namespace ``mlops-jupyter``), the format
  of ``ssh-keygen -Y sign`` and git's SSH commit signing;
* :mod:`.allowed_signers` reads and edits the allowed-signers file (OpenSSH/git format,
  committed with the project) that maps principals to keys.

``import mlops_jupyter`` does not import this package.
"""

from __future__ import annotations

from .allowed_signers import AllowedSigner, AllowedSigners
from .keys import Signer, generate_key, load_signer
from .sshsig import NAMESPACE, fingerprint, sign, verify

__all__ = [
    "NAMESPACE",
    "AllowedSigner",
    "AllowedSigners",
    "Signer",
    "fingerprint",
    "generate_key",
    "load_signer",
    "sign",
    "verify",
]
