# pragma version 0.4.3
"""
@title NeuroLedger DID registry (ERC-1056 compatible)
@custom:contract-name DIDRegistry
@license Apache-2.0
@notice Lets any Ethereum address act as a `did:ethr` identity with no prior
        registration. The identity's owner can rotate ownership, appoint
        delegates for a limited time, and publish attributes (public keys,
        service endpoints) that resolvers turn into a W3C DID document.
        The external interface (function signatures, events, the `changed`
        block pointer and the signed-message layout) is that of the ERC-1056
        reference `EthereumDIDRegistry`, so standard `did:ethr` resolvers read
        this contract unchanged.
@dev History lives in events: each event carries `previousChange`, the block
     of the identity's previous change, so a resolver walks back from
     `changed[identity]` with one `eth_getLogs` per block it visits.
@custom:security Four deliberate differences from the reference, none visible
                 in the ABI: (1) a signature that recovers to the zero
                 address is rejected (the reference accepts it for the zero
                 identity); (2) signatures with a high `s` value are rejected
                 (EIP-2), so each signed message has one valid encoding;
                 (3) attribute values are bounded to `MAX_VALUE_BYTES` bytes;
                 (4) changing the owner to the zero address deactivates the
                 DID for good: the reference then hands control back to the
                 identity's own key (often the one that leaked); here
                 `identityOwner` returns the zero address, nobody can change
                 the DID again, and its delegates are no longer valid. The
                 event still says owner 0x0, as resolvers expect.
                 The registry has no owner, no guardian and no pause: only
                 an identity's own owner changes it. Signatures are checked
                 with snekmate's `ecdsa` module.
"""

from snekmate.utils import ecdsa



# @dev Stored in `owners` for a deactivated identity (no key has this address).
_DEACTIVATED: constant(address) = 0x000000000000000000000000000000000000dEaD

# @dev Largest attribute value accepted (a 4096-bit RSA key in DER fits).
MAX_VALUE_BYTES: constant(uint256) = 1024

# @dev Owner of each identity that has changed owner at least once; an
# identity that never changed owner is owned by itself; `_DEACTIVATED` marks
# an identity deactivated for good.
owners: public(HashMap[address, address])

# @dev identity => keccak256(delegateType) => delegate => timestamp until
# which the delegate is valid.
delegates: public(HashMap[address, HashMap[bytes32, HashMap[address, uint256]]])

# @dev Block number of the identity's latest change (0 if none).
changed: public(HashMap[address, uint256])

# @dev Number of signed changes made by each owner address (replay guard).
nonce: public(HashMap[address, uint256])


# @dev Emitted when an identity's owner changes.
event DIDOwnerChanged:
    identity: indexed(address)
    owner: address
    previousChange: uint256


# @dev Emitted when a delegate is added (validTo in the future) or revoked
# (validTo = the block's timestamp).
event DIDDelegateChanged:
    identity: indexed(address)
    delegateType: bytes32
    delegate: address
    validTo: uint256
    previousChange: uint256


# @dev Emitted when an attribute is set (validTo in the future) or revoked
# (validTo = 0).
event DIDAttributeChanged:
    identity: indexed(address)
    name: bytes32
    value: Bytes[MAX_VALUE_BYTES]
    validTo: uint256
    previousChange: uint256


@external
@view
def identityOwner(identity: address) -> address:
    """
    @notice Returns the address that currently controls `identity`.
    @param identity The identity (its `did:ethr` address).
    @return The owner: the identity itself until its owner is changed; the
            zero address once the identity was deactivated.
    """
    return self._identity_owner(identity)


@external
@view
def validDelegate(identity: address, delegateType: bytes32, delegate: address) -> bool:
    """
    @notice Tells whether `delegate` is a valid delegate of `identity` for
            `delegateType` at the current block time.
    @param identity The identity.
    @param delegateType The delegate type, e.g. "veriKey" or "sigAuth".
    @param delegate The delegate address.
    @return True while the delegation has not expired or been revoked, and the
            identity is not deactivated.
    """
    if self.owners[identity] == _DEACTIVATED:
        return False
    return self.delegates[identity][keccak256(delegateType)][delegate] > block.timestamp


@external
def changeOwner(identity: address, newOwner: address):
    """
    @notice Transfers control of `identity` to `newOwner`.
    @dev Only the current owner may call it. Emits `DIDOwnerChanged`.
    @param identity The identity.
    @param newOwner The new owner; the zero address deactivates the DID.
    """
    self._change_owner(identity, msg.sender, newOwner)


@external
def changeOwnerSigned(
    identity: address, sigV: uint8, sigR: bytes32, sigS: bytes32, newOwner: address
):
    """
    @notice Transfers control of `identity`, authorised by the owner's
            signature so that anyone may submit (and pay for) it.
    @dev Signed message: keccak256(0x19 0x00 registry nonce identity
         "changeOwner" newOwner). Emits `DIDOwnerChanged`.
    @param identity The identity.
    @param sigV Recovery id of the owner's signature (27 or 28).
    @param sigR R of the owner's signature.
    @param sigS S of the owner's signature (low-s form).
    @param newOwner The new owner.
    """
    owner: address = self._identity_owner(identity)
    digest: bytes32 = keccak256(
        concat(self._signed_prefix(identity, owner), b"changeOwner", convert(newOwner, bytes20))
    )
    self._change_owner(identity, self._check_signature(owner, sigV, sigR, sigS, digest), newOwner)


@external
def addDelegate(identity: address, delegateType: bytes32, delegate: address, validity: uint256):
    """
    @notice Appoints `delegate` for `delegateType` for `validity` seconds.
    @dev Only the owner may call it. Emits `DIDDelegateChanged`.
    @param identity The identity.
    @param delegateType The delegate type, e.g. "veriKey" or "sigAuth".
    @param delegate The delegate address.
    @param validity Seconds from now until the delegation expires.
    """
    self._add_delegate(identity, msg.sender, delegateType, delegate, validity)


@external
def addDelegateSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    delegateType: bytes32,
    delegate: address,
    validity: uint256,
):
    """
    @notice `addDelegate` authorised by the owner's signature.
    @dev Signed message: keccak256(0x19 0x00 registry nonce identity
         "addDelegate" delegateType delegate validity).
    @param identity The identity.
    @param sigV Recovery id of the owner's signature.
    @param sigR R of the owner's signature.
    @param sigS S of the owner's signature.
    @param delegateType The delegate type.
    @param delegate The delegate address.
    @param validity Seconds from now until the delegation expires.
    """
    owner: address = self._identity_owner(identity)
    digest: bytes32 = keccak256(
        concat(
            self._signed_prefix(identity, owner),
            b"addDelegate",
            delegateType,
            convert(delegate, bytes20),
            convert(validity, bytes32),
        )
    )
    signer: address = self._check_signature(owner, sigV, sigR, sigS, digest)
    self._add_delegate(identity, signer, delegateType, delegate, validity)


@external
def revokeDelegate(identity: address, delegateType: bytes32, delegate: address):
    """
    @notice Ends the delegation of `delegate` for `delegateType` now.
    @dev Only the owner may call it. Emits `DIDDelegateChanged`.
    @param identity The identity.
    @param delegateType The delegate type.
    @param delegate The delegate address.
    """
    self._revoke_delegate(identity, msg.sender, delegateType, delegate)


@external
def revokeDelegateSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    delegateType: bytes32,
    delegate: address,
):
    """
    @notice `revokeDelegate` authorised by the owner's signature.
    @dev Signed message: keccak256(0x19 0x00 registry nonce identity
         "revokeDelegate" delegateType delegate).
    @param identity The identity.
    @param sigV Recovery id of the owner's signature.
    @param sigR R of the owner's signature.
    @param sigS S of the owner's signature.
    @param delegateType The delegate type.
    @param delegate The delegate address.
    """
    owner: address = self._identity_owner(identity)
    digest: bytes32 = keccak256(
        concat(
            self._signed_prefix(identity, owner),
            b"revokeDelegate",
            delegateType,
            convert(delegate, bytes20),
        )
    )
    signer: address = self._check_signature(owner, sigV, sigR, sigS, digest)
    self._revoke_delegate(identity, signer, delegateType, delegate)


@external
def setAttribute(
    identity: address, name: bytes32, attr_value: Bytes[MAX_VALUE_BYTES], validity: uint256
):
    """
    @notice Publishes attribute `name` = `attr_value` for `validity` seconds.
    @dev Only the owner may call it. Nothing is stored but the change
         pointer; the attribute lives in the `DIDAttributeChanged` event.
    @param identity The identity.
    @param name The attribute name, e.g. "did/pub/X25519/enc/base64".
    @param attr_value The attribute value (at most `MAX_VALUE_BYTES` bytes).
    @param validity Seconds from now until the attribute expires.
    """
    self._set_attribute(identity, msg.sender, name, attr_value, validity)


@external
def setAttributeSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    name: bytes32,
    attr_value: Bytes[MAX_VALUE_BYTES],
    validity: uint256,
):
    """
    @notice `setAttribute` authorised by the owner's signature.
    @dev Signed message: keccak256(0x19 0x00 registry nonce identity
         "setAttribute" name value validity).
    @param identity The identity.
    @param sigV Recovery id of the owner's signature.
    @param sigR R of the owner's signature.
    @param sigS S of the owner's signature.
    @param name The attribute name.
    @param attr_value The attribute value.
    @param validity Seconds from now until the attribute expires.
    """
    owner: address = self._identity_owner(identity)
    digest: bytes32 = keccak256(
        concat(
            self._signed_prefix(identity, owner),
            b"setAttribute",
            name,
            attr_value,
            convert(validity, bytes32),
        )
    )
    signer: address = self._check_signature(owner, sigV, sigR, sigS, digest)
    self._set_attribute(identity, signer, name, attr_value, validity)


@external
def revokeAttribute(identity: address, name: bytes32, attr_value: Bytes[MAX_VALUE_BYTES]):
    """
    @notice Revokes attribute `name` = `attr_value`.
    @dev Only the owner may call it. Emits `DIDAttributeChanged` with
         validTo = 0.
    @param identity The identity.
    @param name The attribute name.
    @param attr_value The attribute value being revoked.
    """
    self._revoke_attribute(identity, msg.sender, name, attr_value)


@external
def revokeAttributeSigned(
    identity: address,
    sigV: uint8,
    sigR: bytes32,
    sigS: bytes32,
    name: bytes32,
    attr_value: Bytes[MAX_VALUE_BYTES],
):
    """
    @notice `revokeAttribute` authorised by the owner's signature.
    @dev Signed message: keccak256(0x19 0x00 registry nonce identity
         "revokeAttribute" name value).
    @param identity The identity.
    @param sigV Recovery id of the owner's signature.
    @param sigR R of the owner's signature.
    @param sigS S of the owner's signature.
    @param name The attribute name.
    @param attr_value The attribute value being revoked.
    """
    owner: address = self._identity_owner(identity)
    digest: bytes32 = keccak256(
        concat(self._signed_prefix(identity, owner), b"revokeAttribute", name, attr_value)
    )
    signer: address = self._check_signature(owner, sigV, sigR, sigS, digest)
    self._revoke_attribute(identity, signer, name, attr_value)


@internal
@view
def _identity_owner(identity: address) -> address:
    owner: address = self.owners[identity]
    if owner == _DEACTIVATED:
        return empty(address)
    if owner != empty(address):
        return owner
    return identity


@internal
@view
def _only_owner(identity: address, actor: address):
    owner: address = self._identity_owner(identity)
    assert owner != empty(address), "DIDRegistry: caller is not the identity owner (it is deactivated)"
    assert actor == owner, "DIDRegistry: caller is not the identity owner"


@internal
@view
def _signed_prefix(identity: address, owner: address) -> Bytes[74]:
    # 0x19 0x00 <registry:20> <nonce of the current owner:32> <identity:20>: EIP-191
    # version 0x00 with this registry as the intended validator. Built here rather than
    # with snekmate's message_hash_utils: its 1,024-byte buffer costs about 700 gas a
    # call (over the reference registry) and cannot hold a 1,024-byte attribute value.
    return concat(
        b"\x19\x00",
        convert(self, bytes20),
        convert(self.nonce[owner], bytes32),
        convert(identity, bytes20),
    )


@internal
def _check_signature(
    owner: address, sigV: uint8, sigR: bytes32, sigS: bytes32, digest: bytes32
) -> address:
    # snekmate's ecdsa rejects high-s (EIP-2) and zero-address recoveries.
    signer: address = ecdsa._recover_vrs(
        digest, convert(sigV, uint256), convert(sigR, uint256), convert(sigS, uint256)
    )
    assert signer == owner, (
        "DIDRegistry: signature is not from the identity owner"
    )
    # A nonce counts signatures of one key; 2**256 signed calls cannot happen.
    self.nonce[signer] = unsafe_add(self.nonce[signer], 1)
    return signer


@internal
def _touch(identity: address) -> uint256:
    previous: uint256 = self.changed[identity]
    self.changed[identity] = block.number
    return previous


@internal
def _change_owner(identity: address, actor: address, newOwner: address):
    self._only_owner(identity, actor)
    assert newOwner != _DEACTIVATED, "DIDRegistry: that address cannot own an identity"
    if newOwner == empty(address):
        self.owners[identity] = _DEACTIVATED  # for good: nobody controls it any more
    else:
        self.owners[identity] = newOwner
    log DIDOwnerChanged(identity=identity, owner=newOwner, previousChange=self._touch(identity))


@internal
def _add_delegate(
    identity: address, actor: address, delegateType: bytes32, delegate: address, validity: uint256
):
    self._only_owner(identity, actor)
    valid_to: uint256 = block.timestamp + validity
    self.delegates[identity][keccak256(delegateType)][delegate] = valid_to
    log DIDDelegateChanged(
        identity=identity,
        delegateType=delegateType,
        delegate=delegate,
        validTo=valid_to,
        previousChange=self._touch(identity),
    )


@internal
def _revoke_delegate(identity: address, actor: address, delegateType: bytes32, delegate: address):
    self._only_owner(identity, actor)
    self.delegates[identity][keccak256(delegateType)][delegate] = block.timestamp
    log DIDDelegateChanged(
        identity=identity,
        delegateType=delegateType,
        delegate=delegate,
        validTo=block.timestamp,
        previousChange=self._touch(identity),
    )


@internal
def _set_attribute(
    identity: address,
    actor: address,
    name: bytes32,
    attr_value: Bytes[MAX_VALUE_BYTES],
    validity: uint256,
):
    self._only_owner(identity, actor)
    log DIDAttributeChanged(
        identity=identity,
        name=name,
        value=attr_value,
        validTo=block.timestamp + validity,
        previousChange=self._touch(identity),
    )


@internal
def _revoke_attribute(
    identity: address, actor: address, name: bytes32, attr_value: Bytes[MAX_VALUE_BYTES]
):
    self._only_owner(identity, actor)
    log DIDAttributeChanged(
        identity=identity, name=name, value=attr_value, validTo=0, previousChange=self._touch(identity)
    )
