# pragma version 0.4.3
"""
@title NeuroLedger reputation registry (ERC-8004 Reputation Registry ABI, settled deals only)
@custom:contract-name ReputationRegistry
@license Apache-2.0
@notice Feedback on agents, read with the ERC-8004 Reputation Registry's functions and
        events, but given only by a client that settled a deal with the agent: a job
        the agent delivered in the suite's ERC-8183 escrow (completed and paid, or
        rejected after delivery), or an x402 payment to the agent's wallet settled by
        the suite's PaymentSettler in the suite's payment token. Each deal backs one
        feedback. Summaries weight each feedback by the value of its deal.
@dev ERC-8004's open `giveFeedback` lets any address rate any agent; public
     deployments found most reviewers to be coordinated Sybils. Here `recordJob` and
     `recordPayment` (anyone may call them) turn a settled deal into one feedback
     right for its client; `giveFeedback` spends the oldest. A job rejected while Open,
     or rejected before the agent delivered, is no deal: its client could make it at
     the cost of gas. Tags are at most 32 bytes each. Reads are bounded: `getSummary`
     and `readAllFeedback` take at most 100 clients and 1,000 feedbacks, and
     `getSummaryPage` walks any number in pages. `getClients` lists the clients with a
     deal (who may give feedback), in the order of their first deal.
@custom:security An admin-free registry: no owner, no guardian and no pause. Feedback
                 is the client's own: only it revokes it. The owner and operators of
                 an agent can neither record deals for themselves as clients nor give it
                 feedback.
"""


interface IAgentRegistry:
    def getAgentByWallet(wallet: address) -> (bool, uint256): view
    def isAuthorizedOrOwner(spender: address, agentId: uint256) -> bool: view


struct Job:
    client: address
    provider: address
    evaluator: address
    hook: address
    budget: uint256
    expiredAt: uint256
    status: uint8
    deliverable: bytes32
    disputeWindow: uint256
    releaseAt: uint256
    disputed: bool
    description: String[1024]


interface IJobEscrow:
    def getJob(jobId: uint256) -> Job: view
    def paymentToken() -> address: view


interface IPaymentSettler:
    def receipt(token: address, payer: address, nonce: bytes32) -> (address, uint256): view


# @dev ERC-8004: a client gave feedback (its `feedbackIndex` is 1-based per agent and client).
event NewFeedback:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: uint64
    value: int128
    valueDecimals: uint8
    indexedTag1: indexed(String[32])
    tag1: String[32]
    tag2: String[32]
    endpoint: String[256]
    feedbackURI: String[512]
    feedbackHash: bytes32


# @dev ERC-8004: a client revoked one of its feedbacks.
event FeedbackRevoked:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: indexed(uint64)


# @dev ERC-8004: someone (the agent, a third party) answered a feedback.
event ResponseAppended:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    feedbackIndex: uint64
    responder: indexed(address)
    responseURI: String[512]
    responseHash: bytes32


# @dev A settled deal became one feedback right of its client (`kind` 0: job, 1: x402 payment).
event DealRecorded:
    agentId: indexed(uint256)
    clientAddress: indexed(address)
    kind: uint8
    ref: bytes32
    value: uint256


JOB: constant(uint8) = 0
PAYMENT: constant(uint8) = 1
COMPLETED: constant(uint8) = 3
REJECTED: constant(uint8) = 4
MAX_CLIENTS: constant(uint256) = 100
MAX_READ: constant(uint256) = 1000
MAX_ABS_VALUE: constant(int128) = 10**38
# A deal's weight saturates here (7.2e16 atomic units), so weighted sums never overflow.
MAX_WEIGHT: constant(uint256) = 2**56 - 1
_MASK64: constant(uint256) = 2**64 - 1
_MASK128: constant(uint256) = 2**128 - 1
_REVOKED: constant(uint256) = 1 << 136

identityRegistry: immutable(IAgentRegistry)
escrow: public(immutable(IJobEscrow))
settler: public(immutable(IPaymentSettler))
paymentToken: public(immutable(address))

# (agentId, client) -> lastIndex | dealHead << 64 | dealTail << 128
_account: HashMap[uint256, HashMap[address, uint256]]
# keccak(agentId, client, n) -> the value of that client's n-th deal with the agent
_deal: HashMap[bytes32, uint256]
# keccak(agentId, client, index) -> value | decimals << 128 | revoked << 136 | weight << 160
_feedback: HashMap[bytes32, uint256]
# keccak(agentId, client, index) -> len(tag1), len(tag2), tag1, tag2 packed in up to 3 words
_tags: HashMap[bytes32, bytes32[3]]
_clients: HashMap[uint256, HashMap[uint256, address]]
_client_count: HashMap[uint256, uint256]
# keccak(kind, ref) -> used; a deal backs one feedback
_used: HashMap[bytes32, bool]
_responses: HashMap[bytes32, uint64]


@deploy
def __init__(identity_: address, escrow_: address, settler_: address, token_: address):
    """
    @param identity_ The agent registry (ERC-8004 Identity Registry).
    @param escrow_ The job escrow (ERC-8183) whose settled jobs count.
    @param settler_ The x402 payment settler whose receipts count.
    @param token_ The payment token: only payments in it count.
    """
    identityRegistry = IAgentRegistry(identity_)
    escrow = IJobEscrow(escrow_)
    settler = IPaymentSettler(settler_)
    paymentToken = token_


@view
@external
def getIdentityRegistry() -> address:
    """
    @notice The agent registry this registry rates agents of (ERC-8004).
    @return Its address.
    """
    return identityRegistry.address


# -- deals ---------------------------------------------------------------------------------
@internal
def _credit(agent_id: uint256, client: address, kind: uint8, ref: bytes32, amount: uint256):
    assert not staticcall identityRegistry.isAuthorizedOrOwner(client, agent_id), \
        "ReputationRegistry: a deal with oneself is no deal"
    key: bytes32 = keccak256(abi_encode(kind, ref))
    assert not self._used[key], "ReputationRegistry: deal already recorded"
    self._used[key] = True
    account: uint256 = self._account[agent_id][client]
    if account == 0:
        n: uint256 = self._client_count[agent_id]
        self._clients[agent_id][n] = client
        self._client_count[agent_id] = n + 1
    tail: uint256 = (account >> 128) & _MASK64
    self._deal[keccak256(abi_encode(agent_id, client, tail))] = max(min(amount, MAX_WEIGHT), 1)
    self._account[agent_id][client] = (account & ~(_MASK64 << 128)) | ((tail + 1) << 128)
    log DealRecorded(agentId=agent_id, clientAddress=client, kind=kind, ref=ref, value=amount)


@internal
@view
def _agent_of(wallet: address) -> uint256:
    found: bool = False
    agent_id: uint256 = 0
    found, agent_id = staticcall identityRegistry.getAgentByWallet(wallet)
    assert found, "ReputationRegistry: the payee is no agent's wallet"
    return agent_id


@external
def recordJob(jobId: uint256):
    """
    @notice Turn a settled escrow job into one feedback right of its client on the agent
            whose wallet is the job's provider (anyone may call this, once per job).
    @param jobId The job in the suite's escrow: completed and paid out, or rejected
                 after the provider delivered.
    """
    job: Job = staticcall escrow.getJob(jobId)
    paid: bool = job.status == COMPLETED and job.releaseAt == 0
    assert paid or (job.status == REJECTED and job.deliverable != empty(bytes32)), \
        "ReputationRegistry: the job is not settled (completed and paid, or rejected after delivery)"
    self._credit(self._agent_of(job.provider), job.client, JOB, convert(jobId, bytes32), job.budget)


@external
def recordPayment(payer: address, nonce: bytes32):
    """
    @notice Turn an x402 payment the suite's settler settled, in the payment token, to an
            agent's wallet into one feedback right of its payer (anyone, once per payment).
    @param payer Who paid.
    @param nonce The EIP-3009 nonce of the payer's authorization.
    """
    payee: address = empty(address)
    value: uint256 = 0
    payee, value = staticcall settler.receipt(paymentToken, payer, nonce)
    assert value != 0, "ReputationRegistry: no settled payment under this payer and nonce"
    self._credit(self._agent_of(payee), payer, PAYMENT, keccak256(abi_encode(payer, nonce)), value)


@view
@external
def isRecorded(kind: uint8, ref: bytes32) -> bool:
    """
    @notice Whether a deal was recorded (`kind` 0: the job id as bytes32; 1:
            keccak256(abi.encode(payer, nonce)) of an x402 payment).
    @param kind 0 for a job, 1 for a payment.
    @param ref The deal's reference, as in `DealRecorded`.
    @return Whether it was.
    """
    return self._used[keccak256(abi_encode(kind, ref))]


@view
@external
def pendingDeals(agentId: uint256, clientAddress: address) -> uint64:
    """
    @notice How many more feedbacks `clientAddress` may give `agentId` (its unspent deals).
    @param agentId The agent.
    @param clientAddress The client.
    @return The count.
    """
    account: uint256 = self._account[agentId][clientAddress]
    return convert(((account >> 128) & _MASK64) - ((account >> 64) & _MASK64), uint64)


# -- feedback ------------------------------------------------------------------------------
@external
def giveFeedback(agentId: uint256, value_: int128, valueDecimals: uint8, tag1: String[32],
                 tag2: String[32], endpoint: String[256], feedbackURI: String[512],
                 feedbackHash: bytes32):
    """
    @notice Rate an agent, spending one settled deal with it (ERC-8004 `giveFeedback`).
    @param agentId The agent.
    @param value_ The rating, `value_ / 10**valueDecimals`; |value_| at most 1e38 (ERC-8004's
                  `value`: Vyper reserves the name, the selector is the same).
    @param valueDecimals At most 18.
    @param tag1 A tag (e.g. "starred"), at most 32 bytes.
    @param tag2 A second tag, at most 32 bytes.
    @param endpoint The endpoint rated (emitted only).
    @param feedbackURI The feedback file (emitted only).
    @param feedbackHash The keccak256 of the feedback file (emitted only).
    """
    assert valueDecimals <= 18, "ReputationRegistry: valueDecimals above 18"
    assert value_ <= MAX_ABS_VALUE and value_ >= -MAX_ABS_VALUE, "ReputationRegistry: |value| above 1e38"
    assert not staticcall identityRegistry.isAuthorizedOrOwner(msg.sender, agentId), \
        "ReputationRegistry: self-feedback is not allowed"
    account: uint256 = self._account[agentId][msg.sender]
    head: uint256 = (account >> 64) & _MASK64
    assert head < (account >> 128) & _MASK64, \
        "ReputationRegistry: no settled deal with this agent backs a feedback; pay it or finish a job first"
    deal_key: bytes32 = keccak256(abi_encode(agentId, msg.sender, head))
    weight: uint256 = self._deal[deal_key]
    self._deal[deal_key] = 0
    index: uint256 = (account & _MASK64) + 1
    self._account[agentId][msg.sender] = (account & ~_MASK128) | index | ((head + 1) << 64)
    key: bytes32 = keccak256(abi_encode(agentId, msg.sender, index))
    self._feedback[key] = (convert(convert(convert(value_, int256), bytes32), uint256) & _MASK128) \
        | (convert(valueDecimals, uint256) << 128) | (weight << 160)
    if len(tag1) + len(tag2) != 0:
        self._store_tags(key, tag1, tag2)
    log NewFeedback(agentId=agentId, clientAddress=msg.sender, feedbackIndex=convert(index, uint64),
                    value=value_, valueDecimals=valueDecimals, indexedTag1=tag1, tag1=tag1,
                    tag2=tag2, endpoint=endpoint, feedbackURI=feedbackURI, feedbackHash=feedbackHash)


@internal
def _store_tags(key: bytes32, tag1: String[32], tag2: String[32]):
    blob: Bytes[130] = concat(convert(convert(len(tag1), uint8), bytes1),
                              convert(convert(len(tag2), uint8), bytes1),
                              convert(tag1, Bytes[32]), convert(tag2, Bytes[32]),
                              empty(bytes32), empty(bytes32))
    words: uint256 = (2 + len(tag1) + len(tag2) + 31) // 32
    for i: uint256 in range(3):
        if i == words:
            break
        self._tags[key][i] = extract32(blob, i * 32)


@internal
@view
def _read_tags(key: bytes32) -> (String[32], String[32]):
    w: bytes32[3] = self._tags[key]
    blob: Bytes[96] = concat(w[0], w[1], w[2])
    len1: uint256 = convert(slice(blob, 0, 1), uint256)
    len2: uint256 = convert(slice(blob, 1, 1), uint256)
    first: Bytes[32] = slice(blob, 2, 32)
    second: Bytes[32] = slice(blob, 2 + len1, 32)
    return convert(slice(first, 0, len1), String[32]), convert(slice(second, 0, len2), String[32])


@external
def revokeFeedback(agentId: uint256, feedbackIndex: uint64):
    """
    @notice Revoke one of one's own feedbacks (ERC-8004); its deal stays spent.
    @param agentId The agent.
    @param feedbackIndex The feedback's 1-based index.
    """
    key: bytes32 = keccak256(abi_encode(agentId, msg.sender, convert(feedbackIndex, uint256)))
    word: uint256 = self._feedback[key]
    assert word != 0 or (feedbackIndex != 0 and convert(feedbackIndex, uint256) <= self._account[agentId][msg.sender] & _MASK64), \
        "ReputationRegistry: no such feedback of the caller"
    assert word & _REVOKED == 0, "ReputationRegistry: feedback already revoked"
    self._feedback[key] = word | _REVOKED
    log FeedbackRevoked(agentId=agentId, clientAddress=msg.sender, feedbackIndex=feedbackIndex)


@external
def appendResponse(agentId: uint256, clientAddress: address, feedbackIndex: uint64,
                   responseURI: String[512], responseHash: bytes32):
    """
    @notice Answer a feedback (anyone; ERC-8004). `responseURI` must not be empty.
    @param agentId The agent.
    @param clientAddress The client whose feedback is answered.
    @param feedbackIndex The feedback's 1-based index.
    @param responseURI The response file.
    @param responseHash The keccak256 of the response file.
    """
    assert len(responseURI) != 0, "ReputationRegistry: empty responseURI"
    assert feedbackIndex != 0 and convert(feedbackIndex, uint256) <= self._account[agentId][clientAddress] & _MASK64, \
        "ReputationRegistry: no such feedback"
    base: bytes32 = keccak256(abi_encode(agentId, clientAddress, feedbackIndex))
    self._responses[keccak256(abi_encode(base, msg.sender))] += 1
    self._responses[base] += 1
    log ResponseAppended(agentId=agentId, clientAddress=clientAddress, feedbackIndex=feedbackIndex,
                         responder=msg.sender, responseURI=responseURI, responseHash=responseHash)


# -- reads ---------------------------------------------------------------------------------
@view
@external
def getLastIndex(agentId: uint256, clientAddress: address) -> uint64:
    """
    @notice The index of the client's latest feedback on the agent (0 if none).
    @param agentId The agent.
    @param clientAddress The client.
    @return The index.
    """
    return convert(self._account[agentId][clientAddress] & _MASK64, uint64)


@view
@external
def getClients(agentId: uint256) -> DynArray[address, MAX_CLIENTS]:
    """
    @notice The agent's clients with a settled deal, first 100 (see `getClientsPage`).
    @param agentId The agent.
    @return The clients, in the order of their first deal.
    """
    return self._clients_page(agentId, 0, MAX_CLIENTS)


@view
@external
def getClientsPage(agentId: uint256, offset: uint256, limit: uint256) -> DynArray[address, MAX_CLIENTS]:
    """
    @notice A page of the agent's clients: at most 100 per call.
    @param agentId The agent.
    @param offset The first client's position.
    @param limit The most clients returned.
    @return The clients.
    """
    return self._clients_page(agentId, offset, limit)


@internal
@view
def _clients_page(agent_id: uint256, offset: uint256, limit: uint256) -> DynArray[address, MAX_CLIENTS]:
    out: DynArray[address, MAX_CLIENTS] = []
    total: uint256 = self._client_count[agent_id]
    for i: uint256 in range(MAX_CLIENTS):
        if i == limit or offset + i >= total:
            break
        out.append(self._clients[agent_id][offset + i])
    return out


@view
@external
def readFeedback(agentId: uint256, clientAddress: address, feedbackIndex: uint64) -> (int128, uint8, String[32], String[32], bool):
    """
    @notice One feedback (ERC-8004).
    @param agentId The agent.
    @param clientAddress The client.
    @param feedbackIndex The 1-based index.
    @return value, valueDecimals, tag1, tag2, isRevoked.
    """
    assert feedbackIndex != 0 and convert(feedbackIndex, uint256) <= self._account[agentId][clientAddress] & _MASK64, \
        "ReputationRegistry: no such feedback"
    key: bytes32 = keccak256(abi_encode(agentId, clientAddress, convert(feedbackIndex, uint256)))
    word: uint256 = self._feedback[key]
    tag1: String[32] = ""
    tag2: String[32] = ""
    tag1, tag2 = self._read_tags(key)
    return self._value(word), convert((word >> 128) & 255, uint8), tag1, tag2, word & _REVOKED != 0


@view
@external
def feedbackWeight(agentId: uint256, clientAddress: address, feedbackIndex: uint64) -> uint256:
    """
    @notice The value of the deal behind a feedback (its weight in summaries).
    @param agentId The agent.
    @param clientAddress The client.
    @param feedbackIndex The 1-based index.
    @return The weight, in the payment token's atomic units (saturated at 2**56 - 1).
    """
    key: bytes32 = keccak256(abi_encode(agentId, clientAddress, convert(feedbackIndex, uint256)))
    return self._feedback[key] >> 160


@internal
@pure
def _value(word: uint256) -> int128:
    raw: uint256 = word & _MASK128
    if raw >= 2**127:
        return convert(convert(raw, int256) - 2**128, int128)
    return convert(raw, int128)


@internal
@view
def _matches(key: bytes32, tag1: String[32], tag2: String[32]) -> bool:
    if len(tag1) == 0 and len(tag2) == 0:
        return True
    t1: String[32] = ""
    t2: String[32] = ""
    t1, t2 = self._read_tags(key)
    return (len(tag1) == 0 or keccak256(t1) == keccak256(tag1)) and (len(tag2) == 0 or keccak256(t2) == keccak256(tag2))


@view
@external
def getSummaryPage(agentId: uint256, clientAddresses: DynArray[address, MAX_CLIENTS], tag1: String[32],
                   tag2: String[32], cursor: uint256, limit: uint256) -> (uint64, int256, uint256, uint256[19], uint256):
    """
    @notice One page of a deal-weighted summary: walk feedbacks from `cursor`
            (client position << 64 | feedback index), at most `limit` (1,000) of them.
    @param agentId The agent.
    @param clientAddresses The clients counted (empty: every client with a deal).
    @param tag1 Count only feedback with this tag1 ("" for any).
    @param tag2 Count only feedback with this tag2 ("" for any).
    @param cursor Where to start (0 at first; then the returned cursor).
    @param limit The most feedbacks read in this call.
    @return count, the sum of weight * value scaled to 18 decimals, the sum of weights,
            the count per valueDecimals, and the next cursor (0 when done).
    """
    return self._summary(agentId, clientAddresses, tag1, tag2, cursor, min(limit, MAX_READ))


@internal
@view
def _summary(agent_id: uint256, clients: DynArray[address, MAX_CLIENTS], tag1: String[32], tag2: String[32],
             cursor: uint256, limit: uint256) -> (uint64, int256, uint256, uint256[19], uint256):
    count: uint64 = 0
    total: int256 = 0
    weights: uint256 = 0
    modes: uint256[19] = empty(uint256[19])
    pos: uint256 = cursor >> 64
    index: uint256 = cursor & _MASK64
    n: uint256 = len(clients)
    if n == 0:
        n = self._client_count[agent_id]
    read: uint256 = 0
    for _: uint256 in range(MAX_CLIENTS):
        if pos >= n or pos >= MAX_CLIENTS + (cursor >> 64):
            return count, total, weights, modes, 0
        client: address = self._clients[agent_id][pos] if len(clients) == 0 else clients[pos]
        last: uint256 = self._account[agent_id][client] & _MASK64
        for _j: uint256 in range(MAX_READ):
            index += 1
            if index > last:
                break
            if read == limit:
                return count, total, weights, modes, (pos << 64) | (index - 1)
            read += 1
            key: bytes32 = keccak256(abi_encode(agent_id, client, index))
            word: uint256 = self._feedback[key]
            if word & _REVOKED != 0 or not self._matches(key, tag1, tag2):
                continue
            decimals: uint256 = (word >> 128) & 255
            weight: uint256 = word >> 160
            total += convert(weight, int256) * convert(self._value(word), int256) * convert(10 ** (18 - decimals), int256)
            weights += weight
            modes[decimals] += 1
            count += 1
        pos += 1
        index = 0
    return count, total, weights, modes, (pos << 64)


@view
@external
def getSummary(agentId: uint256, clientAddresses: DynArray[address, MAX_CLIENTS], tag1: String[32],
               tag2: String[32]) -> (uint64, int128, uint8):
    """
    @notice The deal-weighted average of the clients' feedback (ERC-8004 `getSummary`),
            in the most frequent valueDecimals. Reverts beyond 1,000 feedbacks: use
            `getSummaryPage`.
    @param agentId The agent.
    @param clientAddresses The clients counted; required (ERC-8004).
    @param tag1 Count only feedback with this tag1 ("" for any).
    @param tag2 Count only feedback with this tag2 ("" for any).
    @return count, summaryValue, summaryValueDecimals.
    """
    assert len(clientAddresses) != 0, "ReputationRegistry: clientAddresses is required"
    count: uint64 = 0
    total: int256 = 0
    weights: uint256 = 0
    modes: uint256[19] = empty(uint256[19])
    next: uint256 = 0
    count, total, weights, modes, next = self._summary(agentId, clientAddresses, tag1, tag2, 0, MAX_READ)
    assert next == 0, "ReputationRegistry: more than 1,000 feedbacks; use getSummaryPage"
    if count == 0:
        return 0, 0, 0
    mode: uint256 = 0
    for d: uint256 in range(19):
        if modes[d] > modes[mode]:
            mode = d
    average: int256 = total // convert(weights, int256)
    return count, convert(average // convert(10 ** (18 - mode), int256), int128), convert(mode, uint8)


@view
@external
def readAllFeedback(agentId: uint256, clientAddresses: DynArray[address, MAX_CLIENTS], tag1: String[32],
                    tag2: String[32], includeRevoked: bool) -> (DynArray[address, MAX_READ], DynArray[uint64, MAX_READ], DynArray[int128, MAX_READ], DynArray[uint8, MAX_READ], DynArray[String[32], MAX_READ], DynArray[String[32], MAX_READ], DynArray[bool, MAX_READ]):
    """
    @notice Every matching feedback of the clients (empty: all clients), ERC-8004;
            at most 1,000 feedbacks, else it reverts (read per client with `readFeedback`).
    @param agentId The agent.
    @param clientAddresses The clients (empty: every client with a deal, first 100).
    @param tag1 Only feedback with this tag1 ("" for any).
    @param tag2 Only feedback with this tag2 ("" for any).
    @param includeRevoked Whether revoked feedback is listed.
    @return clients, feedbackIndexes, values, valueDecimals, tag1s, tag2s, revokedStatuses.
    """
    clients: DynArray[address, MAX_READ] = []
    indexes: DynArray[uint64, MAX_READ] = []
    values: DynArray[int128, MAX_READ] = []
    decimals: DynArray[uint8, MAX_READ] = []
    tag1s: DynArray[String[32], MAX_READ] = []
    tag2s: DynArray[String[32], MAX_READ] = []
    revoked: DynArray[bool, MAX_READ] = []
    who: DynArray[address, MAX_CLIENTS] = clientAddresses
    if len(who) == 0:
        who = self._clients_page(agentId, 0, MAX_CLIENTS)
    for client: address in who:
        last: uint256 = self._account[agentId][client] & _MASK64
        for i: uint256 in range(1, MAX_READ + 1):
            if i > last:
                break
            key: bytes32 = keccak256(abi_encode(agentId, client, i))
            word: uint256 = self._feedback[key]
            if (word & _REVOKED != 0 and not includeRevoked) or not self._matches(key, tag1, tag2):
                continue
            assert len(clients) < MAX_READ, "ReputationRegistry: more than 1,000 feedbacks; read per client"
            t1: String[32] = ""
            t2: String[32] = ""
            t1, t2 = self._read_tags(key)
            clients.append(client)
            indexes.append(convert(i, uint64))
            values.append(self._value(word))
            decimals.append(convert((word >> 128) & 255, uint8))
            tag1s.append(t1)
            tag2s.append(t2)
            revoked.append(word & _REVOKED != 0)
    return clients, indexes, values, decimals, tag1s, tag2s, revoked


@view
@external
def getResponseCount(agentId: uint256, clientAddress: address, feedbackIndex: uint64,
                     responders: DynArray[address, MAX_CLIENTS]) -> uint64:
    """
    @notice How many responses a feedback has: from the listed responders, or from
            anyone when the list is empty (ERC-8004).
    @param agentId The agent.
    @param clientAddress The client.
    @param feedbackIndex The 1-based index.
    @param responders The responders counted (empty: all).
    @return The count.
    """
    base: bytes32 = keccak256(abi_encode(agentId, clientAddress, feedbackIndex))
    if len(responders) == 0:
        return self._responses[base]
    total: uint64 = 0
    for responder: address in responders:
        total += self._responses[keccak256(abi_encode(base, responder))]
    return total
