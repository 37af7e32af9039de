"""An x402 client: call a paid URL, see its price, pay with an EIP-3009 signature.

:func:`pay` sends the request; on ``402`` it reads the requirements (``PAYMENT-REQUIRED``,
or a v1 body), picks the ``exact`` offer on this chain, checks the token's EIP-712 name and
version against the chain, asks ``confirm`` unless the price is within ``max_price``, signs,
and sends the request again with ``PAYMENT-SIGNATURE``. A lost answer is asked for again
with the same payment (the server answers a retry without charging twice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from neuroledger._json import loads_bounded
from neuroledger.errors import PaymentError
from neuroledger.market._credits import Credits, format_amount
from neuroledger.market._x402 import HEADERS, Requirements, X402Error, decode_header, encode_header

if TYPE_CHECKING:
    from neuroledger.market._accounts import AgentAccounts

__all__ = ["PaidResponse", "pay"]

_RETRIES = 3


@dataclass
class PaidResponse:
    """The answer to a (possibly paid) request."""

    status: int
    body: Any
    price: int = 0  # atomic units paid (0: the route was free, or nothing was paid)
    settlement: dict[str, Any] = field(default_factory=dict)
    requirements: Requirements | None = None
    nonce: bytes = b""  # the EIP-3009 nonce of the payment (its reference for reputation)


def _offers(response: httpx.Response) -> tuple[list[Any], Any]:
    header = response.headers.get(HEADERS["required"])
    if header is not None:
        required = decode_header(header)
    else:  # v1: the requirements are the body
        try:
            required = loads_bounded(response.content, max_bytes=64 * 1024, max_depth=8)
        except ValueError:
            raise PaymentError("the server answered 402 without payment requirements") from None
    accepts = required.get("accepts") if isinstance(required, dict) else None
    if not isinstance(accepts, list) or not accepts:
        raise PaymentError("the server answered 402 without any offer (`accepts` is empty)")
    return accepts[:20], required.get("resource")


def choose(accepts: list[Any], credits: Credits, url: str) -> Requirements:
    """The first ``exact`` offer on this chain in a token whose domain matches the chain's."""
    network = f"eip155:{credits.chain.chain_id}"
    seen = []
    for offer in accepts:
        try:
            req = Requirements.from_json(offer, resource=url)
        except X402Error:
            continue
        seen.append(f"{req.scheme} on {req.network}")
        if req.scheme != "exact" or req.network != network:
            continue
        token = Credits(credits.chain, credits.keystore, token=req.asset)
        domain = token.domain()
        if (domain["name"], domain["version"]) != (req.name, req.version):
            raise PaymentError(f"the server names token {req.asset} {req.name!r}/{req.version!r} "
                               f"but the chain says {domain['name']!r}/{domain['version']!r}; "
                               "refusing to sign")  # fmt: skip
        return req
    raise PaymentError(f"no offer this client can pay: it pays `exact` on {network}, the server "
                       f"offers {', '.join(seen) or 'nothing readable'}")  # fmt: skip


def pay(credits: Credits, url: str, *, payer: str, body: Any = None, max_price: int = 0,
        confirm: Callable[[Requirements, int], bool] | None = None,
        client: httpx.Client | None = None, timeout: float = 60.0,
        accounts: AgentAccounts | None = None) -> PaidResponse:  # fmt: skip
    """POST ``body`` (JSON) to ``url``; pay the price from identity ``payer`` if asked.

    A price above ``max_price`` is paid only if ``confirm(requirements, decimals)`` says
    yes; without ``confirm`` it raises :class:`PaymentError` naming the price.

    With ``accounts``, a payer that has an agent account pays through it: an x402
    ``exact`` payment is an EIP-3009 authorization that only a key can sign, so the
    account first releases what the payer's key lacks of the price, to that key, within
    the account's policy (its caps, its rate limit, its kill switch), and the key signs.
    The key never holds more than the payment in flight; a refusal raises
    :class:`~neuroledger.errors.GuardrailError` before anything is signed."""
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        first = http.post(url, json=body)
        if first.status_code != 402:
            return PaidResponse(first.status_code, _body(first))
        accepts, resource = _offers(first)
        req = choose(accepts, credits, url)
        token = Credits(credits.chain, credits.keystore, token=req.asset)
        shown = f"{format_amount(req.amount, token.decimals)} of token {req.asset}"
        if req.amount > max_price and not (confirm and confirm(req, token.decimals)):
            raise PaymentError(f"{url} costs {shown}, above --max-price "
                               f"{format_amount(max_price, token.decimals)}; raise it to pay")  # fmt: skip
        if accounts is not None and accounts.find(payer) is not None:
            short = req.amount - token.balance(payer)
            if short > 0:
                accounts.pay(payer, req.asset, token.address_of(payer), short)
        auth = token.authorize(req.pay_to, req.amount, by=payer,
                               valid_for=max(30, min(req.max_timeout_seconds, 300)))  # fmt: skip
        payload = {"x402Version": 2, "accepted": req.to_json(), "payload": auth.to_x402()}
        if isinstance(resource, dict):
            payload["resource"] = resource
        headers = {HEADERS["payment"]: encode_header(payload)}
        for attempt in range(_RETRIES):
            try:
                paid = http.post(url, json=body, headers=headers)
                break
            except httpx.TransportError:
                if attempt == _RETRIES - 1:
                    raise PaymentError(f"{url} did not answer after the payment was signed; "
                                       "run the same command again (the server will not "
                                       "charge twice for one payment)") from None  # fmt: skip
        settlement = decode_header(paid.headers[HEADERS["response"]]) \
            if HEADERS["response"] in paid.headers else {}  # fmt: skip
        if paid.status_code == 402:
            refused = _body(paid)
            reason = refused.get("error", "?") if isinstance(refused, dict) else "?"
            message = refused.get("message", "") if isinstance(refused, dict) else ""
            raise PaymentError(f"{url} refused the payment: {reason} {message}".strip())
        return PaidResponse(paid.status_code, _body(paid), req.amount, settlement, req, auth.nonce)
    except httpx.HTTPError as exc:
        raise PaymentError(
            f"{url} could not be reached ({type(exc).__name__}); is it up?"
        ) from None
    finally:
        if own:
            http.close()


def _body(response: httpx.Response) -> Any:
    try:
        return loads_bounded(response.content, max_bytes=16 << 20)
    except ValueError:
        return response.text[:2000]
