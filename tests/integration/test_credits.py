"""Credits on a real anvil: the faucet, transfers, and EIP-3009 authorizations signed by
NeuroLedger and settled by a third party, each usable once."""

from __future__ import annotations

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import PaymentError, SignatureRejectedError, TransactionRevertedError
from neuroledger.identity import Identities, Keystore
from neuroledger.market import Credits, parse_amount

pytestmark = pytest.mark.anvil


@pytest.fixture
def credits(chain: Chain, keystore: Keystore, identities: Identities) -> Credits:
    for name in ("lab", "agent", "facilitator"):
        identities.create(name, "org", publish=False)
    return Credits(chain, keystore)


def test_faucet_send_and_balances(credits: Credits) -> None:
    assert credits.decimals == 6 and credits.balance("lab") == 0
    credits.faucet("lab", parse_amount("100", 6), by="lab")
    credits.send("agent", parse_amount("2.5", 6), by="lab")
    assert credits.balance("lab") == 97_500_000 and credits.balance("agent") == 2_500_000
    with pytest.raises(PaymentError, match=r"holds 2\.5 credits, less than 3; fund it first"):
        credits.send("lab", parse_amount("3", 6), by="agent")
    with pytest.raises(PaymentError, match="at most 10000 per call"):
        credits.faucet("lab", parse_amount("10000.000001", 6), by="lab")


def test_an_authorization_is_settled_by_a_third_party_once(credits: Credits) -> None:
    credits.faucet("lab", parse_amount("10", 6), by="lab")
    auth = credits.authorize("agent", 250_000, by="lab")
    assert auth.payer == credits.address_of("lab") and not credits.used(auth.payer, auth.nonce)
    credits.settle(auth, by="facilitator")  # the facilitator pays the gas, not the lab
    assert credits.balance("agent") == 250_000 and credits.balance("facilitator") == 0
    assert credits.used(auth.payer, auth.nonce)
    with pytest.raises(
        TransactionRevertedError, match="Credits: authorization is used or canceled"
    ):
        credits.settle(auth, by="facilitator")
    assert credits.balance("agent") == 250_000


def test_a_changed_authorization_is_refused(credits: Credits) -> None:
    credits.faucet("lab", parse_amount("10", 6), by="lab")
    auth = credits.authorize("agent", 250_000, by="lab")
    dearer = type(auth)(**{**auth.__dict__, "value": 2_500_000})
    with pytest.raises(SignatureRejectedError, match="Credits: invalid signature"):
        credits.settle(dearer, by="facilitator")
    receive = credits.authorize("agent", 1, by="lab", kind="receive")
    with pytest.raises(PaymentError, match="only its receiver submits"):
        credits.settle(receive, by="facilitator")
    assert credits.balance("agent") == 0 and not credits.used(auth.payer, auth.nonce)


def test_the_domain_is_read_from_the_chain(credits: Credits, chain: Chain) -> None:
    domain = credits.domain()
    assert domain == {"name": "NeuroLedger Credits", "version": "1", "chainId": chain.chain_id,
                      "verifyingContract": credits.address}  # fmt: skip
