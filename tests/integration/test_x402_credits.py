"""Credits against the published x402 SDK (PyPI `x402`, pinned), on a real anvil.

Both directions of the ``exact`` scheme on EVM: an authorization the x402 client signs is
settled by NeuroLedger, and an authorization NeuroLedger signs is verified and settled by
the x402 facilitator. Neither side's code is shared with the other.
"""

from __future__ import annotations

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import TransactionRevertedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Authorization, Credits

x402 = pytest.importorskip("x402")
from x402.mechanisms.evm.exact import ExactEvmClientScheme, ExactEvmFacilitatorScheme  # noqa: E402
from x402.mechanisms.evm.signers import EthAccountSigner, FacilitatorWeb3Signer  # noqa: E402
from x402.schemas import PaymentPayload, PaymentRequirements  # noqa: E402

pytestmark = pytest.mark.anvil

PRICE = 250_000  # 0.25 credits


@pytest.fixture
def credits(chain: Chain, keystore: Keystore, identities: Identities) -> Credits:
    for name in ("lab", "agent", "facilitator"):
        identities.create(name, "org", publish=False)
    credits = Credits(chain, keystore)
    credits.faucet("lab", 10 * 10**6, by="lab")
    return credits


def requirements(credits: Credits, pay_to: str, amount: int = PRICE) -> PaymentRequirements:
    domain = credits.domain()
    return PaymentRequirements(
        scheme="exact",
        network=f"eip155:{credits.chain.chain_id}",
        asset=credits.address,
        amount=str(amount),
        pay_to=pay_to,
        max_timeout_seconds=300,
        extra={"name": domain["name"], "version": domain["version"]},
    )


def test_the_x402_client_pays_and_neuroledger_settles(credits: Credits, keystore: Keystore) -> None:
    wanted = requirements(credits, credits.address_of("agent"))
    client = ExactEvmClientScheme(EthAccountSigner(keystore.owner_account("lab")))
    inner = client.create_payment_payload(wanted)
    auth = Authorization.from_x402(inner)
    assert (auth.payer, auth.to, auth.value) == (credits.address_of("lab"), wanted.pay_to, PRICE)
    credits.settle(auth, by="facilitator")
    assert credits.balance("agent") == PRICE
    with pytest.raises(TransactionRevertedError, match="authorization is used or canceled"):
        credits.settle(auth, by="facilitator")


def test_neuroledger_pays_and_the_x402_facilitator_verifies_and_settles(
    credits: Credits, keystore: Keystore, chain: Chain
) -> None:
    operator = keystore.owner_account("facilitator")
    chain.fund(operator.address)
    signer = FacilitatorWeb3Signer(
        private_key=bytes(operator.key).hex(), rpc_url=chain.url, confirmation_timeout_seconds=60
    )
    facilitator = ExactEvmFacilitatorScheme(signer)
    wanted = requirements(credits, credits.address_of("agent"))
    auth = credits.authorize("agent", PRICE, by="lab")
    payload = PaymentPayload(x402_version=2, payload=auth.to_x402(), accepted=wanted)

    verdict = facilitator.verify(payload, wanted)
    assert verdict.is_valid, verdict
    assert verdict.payer == credits.address_of("lab")
    settled = facilitator.settle(payload, wanted)
    assert settled.success, settled
    assert credits.balance("agent") == PRICE and credits.used(auth.payer, auth.nonce)

    # The facilitator refuses what the token would refuse: a dearer route, and a replay.
    dear = requirements(credits, credits.address_of("agent"), amount=10 * PRICE)
    refused = facilitator.verify(PaymentPayload(x402_version=2, payload=auth.to_x402(),
                                                accepted=dear), dear)  # fmt: skip
    assert not refused.is_valid and "value" in (refused.invalid_reason or "")
    again = facilitator.settle(payload, wanted)
    assert not again.success
    assert credits.balance("agent") == PRICE
