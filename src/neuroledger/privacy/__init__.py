"""Private data: age-encrypted assets, grants on chain, an access gateway, compute-to-data.

``neuroledger.privacy.age`` is the file format; :class:`PrivateData` protects,
grants, revokes, approves and records consent; the HTTP gateway lives in
``neuroledger.privacy.gateway`` (it imports FastAPI) and its client in
``neuroledger.privacy._client``. docs/privacy.md walks through all of it.

Data is encrypted in the age format, so the standard ``age`` tool opens it too, and
an access request is EIP-712 typed data bound to one chain and one grants contract:

>>> import io, os
>>> key = os.urandom(32)  # an X25519 private key, as an identity publishes in its DID
>>> sealed = io.BytesIO()
>>> _ = age.encrypt_stream(io.BytesIO(b"patient records"), sealed, [age.x25519_public(key)])
>>> sealed.getvalue().startswith(b"age-encryption.org/v1")
True
>>> plain = io.BytesIO()
>>> _ = age.decrypt_stream(io.BytesIO(sealed.getvalue()), plain, key)
>>> plain.getvalue()
b'patient records'
>>> domain = Domain(chain_id=20044, contract="0x" + "11" * 20)
>>> domain.to_json()["name"], len(domain.separator)
('NeuroLedger Gateway', 32)
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.privacy import age
    from neuroledger.privacy._audit import AuditSink
    from neuroledger.privacy._client import GatewayClient
    from neuroledger.privacy._grants import MODES, GrantsClient, GrantView, utc
    from neuroledger.privacy._jobs import Job, Jobs
    from neuroledger.privacy._requests import AccessRequest, Domain, new_request, sign_request
    from neuroledger.privacy._sandbox import (
        JobLimits,
        SandboxResult,
        check_isolation,
        run_sandboxed,
    )
    from neuroledger.privacy._service import GrantReceipt, PrivateData, parse_duration
    from neuroledger.privacy._submitted import SubmittedJobs
    from neuroledger.privacy._vault import Vault, VaultEntry

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "MODES",
    "AccessRequest",
    "AuditSink",
    "Domain",
    "GatewayClient",
    "GrantReceipt",
    "GrantView",
    "GrantsClient",
    "Job",
    "JobLimits",
    "Jobs",
    "PrivateData",
    "SandboxResult",
    "SubmittedJobs",
    "Vault",
    "VaultEntry",
    "age",
    "check_isolation",
    "new_request",
    "parse_duration",
    "run_sandboxed",
    "sign_request",
    "utc",
]
