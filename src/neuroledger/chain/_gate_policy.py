"""Which JSON-RPC methods the embedded node's gate lets through, journals, replays or refuses, and the messages it refuses them with."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DENIED",
    "DEV_SENDER",
    "MINING_METHODS",
    "NEVER",
    "PUBLIC_METHODS",
    "REFUSED_METHODS",
    "REPLAYED_METHODS",
    "SEND_METHODS",
    "UNJOURNALED_METHODS",
    "changes_state",
    "is_public",
    "rpc_error",
]


#: What a party without the home's credential may call: the standard Ethereum JSON-RPC
#: read methods, filters, and raw (already signed) transactions. Nothing that signs with
#: the node's accounts, impersonates, mines, moves time or edits state.
PUBLIC_METHODS = frozenset({
    "eth_blockNumber", "eth_call", "eth_chainId", "eth_estimateGas", "eth_feeHistory",
    "eth_gasPrice", "eth_getBalance", "eth_getBlockByHash", "eth_getBlockByNumber",
    "eth_getBlockReceipts", "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber", "eth_getCode", "eth_getFilterChanges",
    "eth_getFilterLogs", "eth_getLogs", "eth_getProof", "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex", "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash", "eth_getTransactionCount", "eth_getTransactionReceipt",
    "eth_getUncleByBlockHashAndIndex", "eth_getUncleByBlockNumberAndIndex",
    "eth_getUncleCountByBlockHash", "eth_getUncleCountByBlockNumber",
    "eth_maxPriorityFeePerGas", "eth_blobBaseFee", "eth_newBlockFilter", "eth_newFilter",
    "eth_newPendingTransactionFilter", "eth_uninstallFilter", "eth_sendRawTransaction",
    "eth_syncing", "eth_protocolVersion", "eth_createAccessList",
    "net_version", "net_listening", "net_peerCount", "web3_clientVersion", "web3_sha3",
})  # fmt: skip


#: Methods that send transactions: the gate mines after forwarding them.
SEND_METHODS = frozenset({"eth_sendRawTransaction", "eth_sendTransaction",
                          "eth_sendUnsignedTransaction"})  # fmt: skip


#: Methods that mine: the blocks they make are journaled, not the calls.
MINING_METHODS = frozenset({"evm_mine", "anvil_mine", "evm_mine_detailed", "anvil_mine_detailed"})


#: Methods that would let anvil mine behind the gate's back (and outside its journal).
REFUSED_METHODS = frozenset({"evm_setAutomine", "anvil_setAutomine", "evm_setIntervalMining",
                             "anvil_setIntervalMining"})  # fmt: skip


#: State changes the journal replays as they were made (each is deterministic).
REPLAYED_METHODS = frozenset({
    "anvil_setBalance", "anvil_addBalance", "anvil_setCode", "anvil_setNonce",
    "anvil_setStorageAt", "anvil_impersonateAccount", "anvil_stopImpersonatingAccount",
    "anvil_autoImpersonateAccount", "evm_increaseTime", "evm_setNextBlockTimestamp",
    "evm_setTime", "anvil_setTime", "anvil_increaseTime", "anvil_setNextBlockTimestamp",
    "anvil_setNextBlockBaseFeePerGas", "anvil_setBlockGasLimit", "evm_setBlockGasLimit",
    "anvil_setCoinbase", "anvil_setMinGasPrice", "anvil_setBlockTimestampInterval",
    "anvil_removeBlockTimestampInterval", "anvil_setLoggingEnabled", "anvil_setErc20Allowance",
})  # fmt: skip


#: anvil_/evm_ methods that change nothing the journal needs.
UNJOURNALED_METHODS = frozenset({"anvil_dumpState", "anvil_nodeInfo", "anvil_metadata",
                                 "anvil_getAutomine", "anvil_getIntervalMining",
                                 "evm_snapshot", "anvil_snapshot"})  # fmt: skip


def is_public(method: object) -> bool:
    """Whether ``method`` may be called without the home's credential."""
    return isinstance(method, str) and method in PUBLIC_METHODS


def changes_state(method: object) -> bool:
    return isinstance(method, str) and (
        method in SEND_METHODS or method.startswith(("anvil_", "evm_"))
    )


def rpc_error(id_: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


DENIED = (
    "{method} is not available without the home's node credential: only standard eth_/net_/"
    "web3_ methods and eth_sendRawTransaction are public"
)


DEV_SENDER = (
    "transactions signed by the node's development accounts (whose keys are public) are "
    "accepted only with the home's node credential"
)


NEVER = (
    "{method} is refused by the embedded node's gate: the gate mines every block itself, "
    "so that each one is journaled"
)
