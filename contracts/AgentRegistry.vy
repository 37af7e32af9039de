# pragma version 0.4.3
"""
@title NeuroLedger agent registry (ERC-8004 Identity Registry, January 2026 revision)
@custom:contract-name AgentRegistry
@license Apache-2.0
@notice Every AI agent registered like a website certificate: an ERC-721 token
        ("AgentIdentity", "AGENT") whose `tokenURI` is the agent's registration
        file (its services, its `did:ethr`, its audit log and model asset), with
        on-chain metadata and a verified payment wallet. The functions and events
        are those of the ERC-8004 Identity Registry, so its indexers and explorers
        read this contract as they read the reference.
@dev Beyond the reference: one wallet names one agent (`getAgentByWallet`, the
     reverse lookup ERC-8004 users ask for), reads are paginated with a hard cap
     (`agents`, `agentsOf`), and every string has a bound. `register` sets the
     agent's wallet to its registrant, as the reference does, unless that
     address is already the wallet of another agent: then the new agent starts
     without a wallet and `setAgentWallet` gives it one. A transfer (never a
     mint) clears the wallet.
@custom:security An admin-free registry: no owner function, no guardian, no pause.
                 Only an agent's owner or an operator it approved changes the
                 agent. A new wallet proves consent with an EIP-712 signature
                 (ECDSA, or ERC-1271 for a contract wallet) whose deadline is at
                 most 5 minutes ahead.
"""


from ethereum.ercs import IERC721
from snekmate.auth import ownable
from snekmate.tokens import erc721
from snekmate.tokens.interfaces import IERC4906
from snekmate.utils import ecdsa

initializes: ownable
initializes: erc721[ownable := ownable]

# The full ERC-721 interface (with enumeration and EIP-4494 permit, as its
# `supportsInterface` declares), the ERC-721 metadata and EIP-5267. Transfers are
# this contract's own: they clear the agent's wallet. Minting, burning and the
# minter and owner roles of snekmate's module are not exported: agents come only
# from `register`, and nobody administers the registry.
exports: (
    erc721.supportsInterface,
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.approve,
    erc721.getApproved,
    erc721.setApprovalForAll,
    erc721.isApprovedForAll,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    erc721.name,
    erc721.symbol,
    erc721.permit,
    erc721.nonces,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712Domain,
)


interface IERC1271:
    def isValidSignature(_hash: bytes32, _signature: Bytes[1024]) -> bytes4: view


# @dev One metadata entry of `register` (ERC-8004 `MetadataEntry`).
struct MetadataEntry:
    metadataKey: String[64]
    metadataValue: Bytes[1024]


# @dev Bounds (the reference has none): a registration file as a `data:` URI fits.
MAX_URI: constant(uint256) = 8192
MAX_ENTRIES: constant(uint256) = 16
# @dev The most ids one paginated read returns.
PAGE_LIMIT: constant(uint256) = 100
# @dev The latest a wallet signature's deadline may be, from now.
MAX_DEADLINE_DELAY: constant(uint256) = 300
_WALLET_KEY: constant(String[64]) = "agentWallet"
_AGENT_WALLET_SET_TYPE_HASH: constant(bytes32) = keccak256(
    "AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)"
)
_ERC1271_MAGIC: constant(bytes4) = 0x1626BA7E


# @dev Emitted when an agent is registered (ERC-8004).
event Registered:
    agentId: indexed(uint256)
    agentURI: String[MAX_URI]
    owner: indexed(address)


# @dev Emitted when an agent's metadata entry is set, the wallet included (ERC-8004).
event MetadataSet:
    agentId: indexed(uint256)
    indexedMetadataKey: indexed(String[64])
    metadataKey: String[64]
    metadataValue: Bytes[1024]


# @dev Emitted when an agent's registration file URI changes (ERC-8004).
event URIUpdated:
    agentId: indexed(uint256)
    newURI: String[MAX_URI]
    updatedBy: indexed(address)


_next_id: uint256
_uris: HashMap[uint256, String[MAX_URI]]
_metadata: HashMap[uint256, HashMap[String[64], Bytes[1024]]]
_wallets: HashMap[uint256, address]
# @dev Wallet -> its agent's id + 1 (0: no agent).
_agent_by_wallet: HashMap[address, uint256]


@deploy
def __init__():
    """
    @notice Deploy an empty registry; the first agent gets id 0, as in the reference.
    """
    ownable.__init__()
    erc721.__init__("AgentIdentity", "AGENT", "", "ERC8004IdentityRegistry", "1")


@external
def register(agentURI: String[MAX_URI] = "", metadata: DynArray[MetadataEntry, MAX_ENTRIES] = []) -> uint256:
    """
    @notice Register a new agent owned by the caller: `register()`, `register(agentURI)`
            and `register(agentURI, metadata)` of ERC-8004.
    @param agentURI The registration file's URI (https, ipfs or data); may be set later.
    @param metadata Metadata entries; the key `agentWallet` is reserved.
    @return The new agent's id.
    """
    agent_id: uint256 = self._next_id
    self._next_id = agent_id + 1
    erc721._mint(msg.sender, agent_id)
    self._uris[agent_id] = agentURI
    log Registered(agentId=agent_id, agentURI=agentURI, owner=msg.sender)
    for entry: MetadataEntry in metadata:
        self._set_metadata(agent_id, entry.metadataKey, entry.metadataValue)
    if self._agent_by_wallet[msg.sender] == 0:
        self._set_wallet(agent_id, msg.sender)
    # A safe mint, with the receiver's callback last: it sees the agent complete.
    assert erc721._check_on_erc721_received(empty(address), msg.sender, agent_id, b""), "AgentRegistry: the receiver does not accept ERC-721 tokens"
    return agent_id


@external
@view
def tokenURI(agentId: uint256) -> String[MAX_URI]:
    """
    @notice The agent's registration file URI (ERC-721 metadata; ERC-8004 `agentURI`).
    @param agentId The agent.
    @return The URI.
    """
    erc721._require_minted(agentId)
    return self._uris[agentId]


@external
def setAgentURI(agentId: uint256, newURI: String[MAX_URI]):
    """
    @notice Point the agent at a new registration file.
    @param agentId The agent.
    @param newURI The new URI.
    """
    self._check_authorized(agentId)
    self._uris[agentId] = newURI
    log URIUpdated(agentId=agentId, newURI=newURI, updatedBy=msg.sender)
    log IERC4906.MetadataUpdate(_tokenId=agentId)


@external
@view
def getMetadata(agentId: uint256, metadataKey: String[64]) -> Bytes[1024]:
    """
    @notice One metadata value of an agent (`agentWallet`: the wallet's 20 bytes, or empty).
    @param agentId The agent.
    @param metadataKey The key.
    @return The value, empty if unset.
    """
    if metadataKey == _WALLET_KEY:
        wallet: address = self._wallets[agentId]
        if wallet == empty(address):
            return b""
        return slice(convert(wallet, bytes32), 12, 20)
    return self._metadata[agentId][metadataKey]


@external
def setMetadata(agentId: uint256, metadataKey: String[64], metadataValue: Bytes[1024]):
    """
    @notice Set one metadata value; `agentWallet` is reserved (see `setAgentWallet`).
    @param agentId The agent.
    @param metadataKey The key.
    @param metadataValue The value.
    """
    self._check_authorized(agentId)
    self._set_metadata(agentId, metadataKey, metadataValue)


@external
def setAgentWallet(agentId: uint256, newWallet: address, deadline: uint256, signature: Bytes[1024]):
    """
    @notice Make `newWallet` the agent's payment wallet, with the wallet's consent: its
            EIP-712 signature of `AgentWalletSet(agentId, newWallet, owner, deadline)`.
    @param agentId The agent.
    @param newWallet The wallet (an EOA, or a contract that answers ERC-1271).
    @param deadline The signature is valid until this time, at most 5 minutes ahead.
    @param signature The wallet's signature (65 bytes for an EOA).
    """
    self._check_authorized(agentId)
    assert newWallet != empty(address), "AgentRegistry: wallet is the zero address"
    assert block.timestamp <= deadline, "AgentRegistry: the deadline has passed"
    assert deadline <= block.timestamp + MAX_DEADLINE_DELAY, "AgentRegistry: deadline is more than 5 minutes ahead"
    digest: bytes32 = erc721.eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(_AGENT_WALLET_SET_TYPE_HASH, agentId, newWallet, erc721._owner_of(agentId), deadline))
    )
    assert self._signed_by(newWallet, digest, signature), "AgentRegistry: invalid signature"
    self._set_wallet(agentId, newWallet)


@external
@view
def getAgentWallet(agentId: uint256) -> address:
    """
    @notice The agent's payment wallet (the zero address if none).
    @param agentId The agent.
    @return The wallet.
    """
    return self._wallets[agentId]


@external
def unsetAgentWallet(agentId: uint256):
    """
    @notice Remove the agent's payment wallet.
    @param agentId The agent.
    """
    self._check_authorized(agentId)
    self._clear_wallet(agentId)


@external
@view
def getAgentByWallet(wallet: address) -> (bool, uint256):
    """
    @notice Reverse lookup: the agent whose payment wallet `wallet` is.
    @param wallet The wallet.
    @return Whether an agent has it, and that agent's id.
    """
    entry: uint256 = self._agent_by_wallet[wallet]
    if entry == 0:
        return False, 0
    return True, entry - 1


@external
@view
def isAuthorizedOrOwner(spender: address, agentId: uint256) -> bool:
    """
    @notice Whether `spender` owns the agent or is an operator or approved for it.
    @param spender The address.
    @param agentId The agent.
    @return The answer.
    """
    return self._may_act(spender, agentId)


@external
@view
def agents(offset: uint256, limit: uint256) -> DynArray[uint256, PAGE_LIMIT]:
    """
    @notice A page of all agent ids, in registration order: at most 100 per call.
    @param offset The first position.
    @param limit How many (capped at 100).
    @return The ids.
    """
    out: DynArray[uint256, PAGE_LIMIT] = []
    total: uint256 = erc721._total_supply()
    for i: uint256 in range(PAGE_LIMIT):
        if i >= limit or offset + i >= total:
            break
        out.append(erc721._all_tokens[offset + i])
    return out


@external
@view
def agentsOf(owner: address, offset: uint256, limit: uint256) -> DynArray[uint256, PAGE_LIMIT]:
    """
    @notice A page of the agent ids `owner` holds: at most 100 per call.
    @param owner The holder.
    @param offset The first position.
    @param limit How many (capped at 100).
    @return The ids.
    """
    out: DynArray[uint256, PAGE_LIMIT] = []
    held: uint256 = erc721._balance_of(owner)
    for i: uint256 in range(PAGE_LIMIT):
        if i >= limit or offset + i >= held:
            break
        out.append(erc721._owned_tokens[owner][offset + i])
    return out


@external
@pure
def getVersion() -> String[8]:
    """
    @notice The ERC-8004 contract version this registry follows.
    @return "2.0.0".
    """
    return "2.0.0"


@external
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @notice ERC-721 transfer; the agent's payment wallet is cleared.
    @param owner The current owner.
    @param to The new owner.
    @param token_id The agent.
    """
    assert erc721._is_approved_or_owner(msg.sender, token_id), "AgentRegistry: caller is not the agent's owner or approved"
    self._clear_wallet(token_id)
    erc721._transfer(owner, to, token_id)


@external
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @notice ERC-721 safe transfer; the agent's payment wallet is cleared.
    @param owner The current owner.
    @param to The new owner.
    @param token_id The agent.
    @param data Data for the receiver's `onERC721Received`.
    """
    assert erc721._is_approved_or_owner(msg.sender, token_id), "AgentRegistry: caller is not the agent's owner or approved"
    self._clear_wallet(token_id)
    erc721._safe_transfer(owner, to, token_id, data)


@internal
@view
def _may_act(spender: address, agent_id: uint256) -> bool:
    owner: address = erc721._owner_of(agent_id)  # reverts for an unknown agent
    return spender == owner or erc721.isApprovedForAll[owner][spender] or erc721._get_approved(agent_id) == spender


@internal
@view
def _check_authorized(agent_id: uint256):
    assert self._may_act(msg.sender, agent_id), "AgentRegistry: caller is not the agent's owner or operator"


@internal
def _set_metadata(agent_id: uint256, key: String[64], data: Bytes[1024]):
    assert key != _WALLET_KEY, "AgentRegistry: reserved key"
    self._metadata[agent_id][key] = data
    log MetadataSet(agentId=agent_id, indexedMetadataKey=key, metadataKey=key, metadataValue=data)


@internal
def _set_wallet(agent_id: uint256, wallet: address):
    holder: uint256 = self._agent_by_wallet[wallet]
    assert holder == 0 or holder == agent_id + 1, "AgentRegistry: wallet already assigned"
    old: address = self._wallets[agent_id]
    if old != empty(address):
        self._agent_by_wallet[old] = 0
    self._wallets[agent_id] = wallet
    self._agent_by_wallet[wallet] = agent_id + 1
    log MetadataSet(agentId=agent_id, indexedMetadataKey=_WALLET_KEY, metadataKey=_WALLET_KEY,
                    metadataValue=slice(convert(wallet, bytes32), 12, 20))


@internal
def _clear_wallet(agent_id: uint256):
    old: address = self._wallets[agent_id]
    if old == empty(address):
        return
    self._wallets[agent_id] = empty(address)
    self._agent_by_wallet[old] = 0
    log MetadataSet(agentId=agent_id, indexedMetadataKey=_WALLET_KEY, metadataKey=_WALLET_KEY, metadataValue=b"")


@internal
@view
def _signed_by(wallet: address, digest: bytes32, signature: Bytes[1024]) -> bool:
    # ECDSA first (an EOA, or an EIP-7702 account), then ERC-1271 for a contract wallet.
    if len(signature) == 65:
        if ecdsa._recover_sig(digest, slice(signature, 0, 65)) == wallet:
            return True
    if not wallet.is_contract:
        return False
    success: bool = False
    answer: Bytes[32] = b""
    success, answer = raw_call(
        wallet,
        abi_encode(digest, signature, method_id=method_id("isValidSignature(bytes32,bytes)")),
        max_outsize=32,
        is_static_call=True,
        revert_on_failure=False,
    )
    return success and len(answer) == 32 and convert(slice(answer, 0, 4), bytes4) == _ERC1271_MAGIC
