# pragma version 0.4.3
"""
@title Who may act for a `did:ethr` identity
@custom:contract-name identity_actor
@license Apache-2.0
@notice The one rule every NeuroLedger contract applies when a call acts for
        an identity of the ERC-1056 DID registry: the identity's current owner,
        or one of its valid `veriKey` delegates, may act for it. Nobody else.
@dev A module without state: callers pass the registry they are bound to and
     assert on the answer with their own revert reason, so each revert names
     the contract the user called.
"""

from ..interfaces import IDIDRegistry


# @dev The DID delegate type allowed to act for an identity: "veriKey".
DELEGATE_TYPE: constant(bytes32) = 0x766572694b657900000000000000000000000000000000000000000000000000


@internal
@view
def _may_act(registry: address, identity: address, actor: address) -> bool:
    """
    @dev Tells whether `actor` may act for `identity` in `registry` now.
    @param registry The DID registry.
    @param identity The identity acted for.
    @param actor Who acts (usually `msg.sender`).
    @return True for the identity's owner or a valid `veriKey` delegate.
    """
    if actor == staticcall IDIDRegistry(registry).identityOwner(identity):
        return True
    return staticcall IDIDRegistry(registry).validDelegate(identity, DELEGATE_TYPE, actor)
