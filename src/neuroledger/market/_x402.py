"""x402 on the wire: payment requirements, the payment headers, and the spec's error codes.

Version 2 carries the requirements in a ``PAYMENT-REQUIRED`` header and the payment in
``PAYMENT-SIGNATURE``, each base64 of a JSON object; the server answers with
``PAYMENT-RESPONSE``. Version 1 clients send ``X-PAYMENT`` and read ``X-PAYMENT-RESPONSE``.
Only the ``exact`` scheme on EVM (an EIP-3009 authorization) is spoken here. Every header is
bounded in size and nesting before it is parsed; a bad one raises :class:`X402Error` with the
spec's error code.

>>> req = Requirements(network="eip155:31337", asset="0x" + "11" * 20, amount=250000,
...                    pay_to="0x" + "22" * 20, name="NeuroLedger Credits", version="1",
...                    resource="http://127.0.0.1:8080/predict")
>>> decode_header(encode_header(payment_required(req)))["accepts"][0]["amount"]
'250000'
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from eth_utils.address import is_address, to_checksum_address

from neuroledger._json import loads_bounded
from neuroledger.errors import PaymentError, X402Error
from neuroledger.market._credits import Authorization

__all__ = ["HEADERS", "MAX_HEADER", "Payment", "Requirements", "X402Error", "decode_header",
           "encode_header", "parse_payment", "parse_payment_object", "payment_required"]  # fmt: skip

#: Header names of both versions.
HEADERS = {
    "required": "PAYMENT-REQUIRED",
    "payment": "PAYMENT-SIGNATURE",
    "response": "PAYMENT-RESPONSE",
    "payment_v1": "X-PAYMENT",
    "response_v1": "X-PAYMENT-RESPONSE",
}
#: The longest payment header taken (a payment is about 700 bytes of base64).
MAX_HEADER = 8 * 1024
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Requirements:
    """What one resource costs: ``amount`` atomic units of ``asset`` paid to ``pay_to``."""

    network: str  # CAIP-2, eip155:<chainId>
    asset: str
    amount: int
    pay_to: str
    name: str  # the token's EIP-712 name and version, for the client's signature
    version: str
    resource: str
    description: str = ""
    mime_type: str = "application/json"
    max_timeout_seconds: int = 300
    scheme: str = "exact"

    def to_json(self) -> dict[str, Any]:
        """The v2 ``PaymentRequirements`` object."""
        return {
            "scheme": self.scheme, "network": self.network, "asset": self.asset,
            "amount": str(self.amount), "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {"name": self.name, "version": self.version},
        }  # fmt: skip

    def to_v1(self) -> dict[str, Any]:
        """The v1 ``PaymentRequirements`` object (``maxAmountRequired``, resource inline)."""
        return {
            "scheme": self.scheme, "network": self.network, "maxAmountRequired": str(self.amount),
            "resource": self.resource, "description": self.description,
            "mimeType": self.mime_type, "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds, "asset": self.asset,
            "extra": {"name": self.name, "version": self.version},
        }  # fmt: skip

    def matches(self, accepted: dict[str, Any]) -> bool:
        """Whether a client's ``accepted`` object asks to pay exactly these requirements."""
        try:
            return (
                accepted.get("scheme") == self.scheme
                and accepted.get("network") == self.network
                and str(accepted.get("asset", "")).lower() == self.asset.lower()
                and str(accepted.get("amount")) == str(self.amount)
                and str(accepted.get("payTo", "")).lower() == self.pay_to.lower()
            )
        except (AttributeError, TypeError):
            return False

    @classmethod
    def from_json(cls, obj: Any, resource: str = "") -> Requirements:
        """Requirements a server sent (v2, or v1 with ``maxAmountRequired``), checked."""
        if not isinstance(obj, dict):
            raise X402Error(
                "invalid_payment_requirements", "a payment requirement is not an object"
            )
        extra: dict[str, Any] = obj["extra"] if isinstance(obj.get("extra"), dict) else {}
        amount = obj.get("amount", obj.get("maxAmountRequired"))
        fields = (obj.get("scheme"), obj.get("network"), obj.get("asset"), amount,
                  obj.get("payTo"), extra.get("name"), extra.get("version"))  # fmt: skip
        if not all(isinstance(f, str) and 0 < len(f) <= 200 for f in fields):
            raise X402Error("invalid_payment_requirements",
                            "a payment requirement lacks scheme, network, asset, amount, "
                            "payTo or extra.name/version")  # fmt: skip
        if (
            not str(amount).isdigit()
            or not is_address(obj["asset"])
            or not is_address(obj["payTo"])
        ):
            raise X402Error("invalid_payment_requirements",
                            "a payment requirement's amount or address is malformed")  # fmt: skip
        timeout = obj.get("maxTimeoutSeconds", 300)
        return cls(
            scheme=obj["scheme"], network=obj["network"],
            asset=to_checksum_address(obj["asset"]), amount=int(str(amount)),
            pay_to=to_checksum_address(obj["payTo"]), name=extra["name"],
            version=extra["version"], resource=str(obj.get("resource", resource))[:2048],
            description=str(obj.get("description", ""))[:500],
            max_timeout_seconds=timeout if isinstance(timeout, int) and timeout > 0 else 300,
        )  # fmt: skip


def payment_required(req: Requirements, error: str = "payment required") -> dict[str, Any]:
    """The v2 ``PaymentRequired`` object of one resource."""
    return {
        "x402Version": 2,
        "error": error,
        "resource": {
            "url": req.resource,
            "description": req.description,
            "mimeType": req.mime_type,
        },
        "accepts": [req.to_json()],
    }


def encode_header(obj: dict[str, Any]) -> str:
    """Base64 of compact JSON, the form of every x402 header."""
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode("ascii")


def decode_header(value: str) -> Any:
    """The JSON object in an x402 header, after its size, encoding and depth are checked."""
    if len(value) > MAX_HEADER:
        raise X402Error("invalid_payload", f"the payment header is over {MAX_HEADER} bytes")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise X402Error("invalid_payload", "the payment header is not base64") from None
    try:
        obj = loads_bounded(raw, max_bytes=MAX_HEADER, max_depth=_MAX_DEPTH)
    except ValueError as exc:
        raise X402Error("invalid_payload", f"the payment header is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise X402Error("invalid_payload", "the payment header is not a JSON object")
    return obj


@dataclass(frozen=True)
class Payment:
    """A decoded payment header: the authorization, the version and what it says it pays."""

    authorization: Authorization
    version: int
    accepted: dict[str, Any] | None  # v2: the requirements the client chose
    resource: str | None  # v2: the resource URL the client says it pays for


def parse_payment(value: str, *, version: int, network: str) -> Payment:
    """A ``PAYMENT-SIGNATURE`` (``version`` 2) or ``X-PAYMENT`` (1) header, checked for form."""
    return parse_payment_object(decode_header(value), version=version, network=network)


def parse_payment_object(obj: Any, *, version: int, network: str) -> Payment:
    """A payment payload object (a decoded header, or a facilitator request's), checked."""
    if not isinstance(obj, dict):
        raise X402Error("invalid_payload", "the payment payload is not a JSON object")
    if obj.get("x402Version") != version:
        raise X402Error("invalid_x402_version",
                        f"the {'PAYMENT-SIGNATURE' if version == 2 else 'X-PAYMENT'} header must "
                        f"say x402Version {version}")  # fmt: skip
    accepted = obj.get("accepted") if version == 2 else None
    if version == 2 and not isinstance(accepted, dict):
        raise X402Error("invalid_payload", "a v2 payment must name the requirements it `accepted`")
    scheme = accepted.get("scheme") if accepted else obj.get("scheme")
    chosen = accepted.get("network") if accepted else obj.get("network")
    if scheme != "exact":
        raise X402Error("unsupported_scheme", f"scheme {str(scheme)[:40]!r} is not offered; "
                        "pay with the `exact` scheme")  # fmt: skip
    if chosen != network:
        raise X402Error("invalid_network", f"network {str(chosen)[:40]!r} is not this "
                        f"server's {network}")  # fmt: skip
    try:
        auth = Authorization.from_x402(obj.get("payload"))
    except PaymentError as exc:
        raise X402Error("invalid_payload", str(exc)) from None
    resource = obj.get("resource")
    url = resource.get("url") if isinstance(resource, dict) else None
    return Payment(auth, version, accepted, url if isinstance(url, str) else None)
