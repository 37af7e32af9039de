"""The open market between AI agents and organizations: credits, payments, and (to come)
agents, jobs in escrow and reputation from settled deals.

Credits are an ERC-20 token with EIP-2612 ``permit`` and EIP-3009 transfers with
authorization, the signature an x402 client pays with. Every market client takes its
token's address, so any EIP-3009 token (USDC on a public chain) works as well.

>>> from neuroledger.market import format_amount, parse_amount
>>> parse_amount("12.5", 6)
12500000
>>> format_amount(12500000, 6)
'12.5'

On a chain (see docs/market.md)::

    credits = Credits(chain, keystore)
    credits.faucet("lab", parse_amount("100", credits.decimals), by="lab")
    auth = credits.authorize("triage-agent", 250_000, by="lab")  # signed, not sent
    credits.settle(auth, by="facilitator")                       # anyone may submit it
"""

from typing import TYPE_CHECKING

from neuroledger._lazy import lazy_exports

if TYPE_CHECKING:
    from neuroledger.errors import GuardrailError, X402Error
    from neuroledger.market._accounts import AccountPolicy, AgentAccounts, selector_of
    from neuroledger.market._agents import Agents, AgentView
    from neuroledger.market._card import REGISTRATION_TYPE, AgentCard, Service, data_uri, read_uri
    from neuroledger.market._checks import (
        CHECKS,
        CheckResult,
        check_hash,
        model_accuracy_check,
        request_document,
        run_check,
    )
    from neuroledger.market._credits import (
        AUTHORIZATION_TYPES,
        Authorization,
        Credits,
        format_amount,
        parse_amount,
    )
    from neuroledger.market._facilitator import Facilitator, Settlement
    from neuroledger.market._jobs import STATUSES, Jobs, JobView
    from neuroledger.market._listings import MODES, Listings, ListingView, SaleView
    from neuroledger.market._model import model_handler
    from neuroledger.market._pay import PaidResponse, pay
    from neuroledger.market._reputation import Feedback, Reputation, parse_rating
    from neuroledger.market._service import AgentService
    from neuroledger.market._validation import RequestView, Validation, VoteView
    from neuroledger.market._validator import Validator
    from neuroledger.market._x402 import Requirements

__getattr__, __dir__ = lazy_exports(__name__, __file__)

__all__ = [
    "AUTHORIZATION_TYPES",
    "CHECKS",
    "MODES",
    "REGISTRATION_TYPE",
    "STATUSES",
    "AccountPolicy",
    "AgentAccounts",
    "AgentCard",
    "AgentService",
    "AgentView",
    "Agents",
    "Authorization",
    "CheckResult",
    "Credits",
    "Facilitator",
    "Feedback",
    "GuardrailError",
    "JobView",
    "Jobs",
    "ListingView",
    "Listings",
    "PaidResponse",
    "Reputation",
    "RequestView",
    "Requirements",
    "SaleView",
    "Service",
    "Settlement",
    "Validation",
    "Validator",
    "VoteView",
    "X402Error",
    "check_hash",
    "data_uri",
    "format_amount",
    "model_accuracy_check",
    "model_handler",
    "parse_amount",
    "parse_rating",
    "pay",
    "read_uri",
    "request_document",
    "run_check",
    "selector_of",
]
