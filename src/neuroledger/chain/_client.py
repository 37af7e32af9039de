"""A connection to a chain: the embedded anvil node or any EVM JSON-RPC node."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from neuroledger.chain._node import EmbeddedNode
from neuroledger.chain._nonces import FeePolicy, NonceManager
from neuroledger.chain._records import DeploymentRecord, DeploymentStore, GovernanceSetup
from neuroledger.chain._suite import Suite
from neuroledger.chain._tx import Call, TransactionSender
from neuroledger.config import EMBEDDED_CHAIN_ID, Settings
from neuroledger.errors import ChainError, NodeError, RPCUnreachableError

__all__ = ["DEV_FUNDING_WEI", "Chain"]

#: What a new identity receives from anvil's development accounts on the embedded chain.
DEV_FUNDING_WEI = 10 * 10**18


class Chain:
    """One chain connection, with its transaction senders and contracts.

    Build it with :meth:`connect` (embedded node unless ``settings.rpc_url``).
    """

    def __init__(
        self, *, w3: Web3, url: str, chain_id: int, settings: Settings, node: EmbeddedNode | None
    ) -> None:
        self.w3 = w3
        self.url = url
        self.chain_id = chain_id
        self.settings = settings
        self.node = node
        # One lock per account across every process of this home (the CLI while a gateway runs).
        self.nonces = NonceManager(w3, lock_dir=settings.home / "nonces")
        self.fees = FeePolicy(
            min_priority_fee=settings.min_priority_fee_wei, min_max_fee=settings.min_max_fee_wei
        )
        self._senders: dict[str, TransactionSender] = {}
        #: The contract suite as this home records it (deployments/ in the home).
        self.suite = Suite(self, DeploymentStore(settings.deployments_dir))
        # On an external chain: who pays for new identities (None: nobody; the user funds).
        self._funder: LocalAccount | str | None = None
        self._finality_depth: int | None = None

    @property
    def is_embedded(self) -> bool:
        """True when this is the home's own anvil node."""
        return self.node is not None

    @property
    def confirmations(self) -> int:
        """Blocks after which this home treats a block as final (``settings.confirmations``)."""
        return self.settings.confirmations

    @property
    def can_fund(self) -> bool:
        """Whether :meth:`fund` can pay for new identities on this chain."""
        return self.is_embedded or self._funder is not None

    def fund_from(self, source: LocalAccount | None) -> str:
        """On an external chain, pay for new identities from ``source`` (a funded key), or,
        when ``source`` is None, from the node's first development account if it offers
        one (an anvil or hardhat node does). Returns the paying address."""
        if source is not None:
            self._funder = source
            return str(source.address)
        accounts = list(self.w3.eth.accounts)
        if not accounts:
            raise ChainError(
                f"the node at {self.url} offers no development accounts; name a funded "
                "identity of your home to pay instead (`--fund-from NAME`)"
            )
        self._funder = str(accounts[0])
        return self._funder

    def finality_depth(self) -> int:
        """How many blocks a write must be buried under before it is reported final.

        ``settings.confirmations``, except on a chain that mines a block only when sent a
        transaction (the embedded node without a block time; an anvil or hardhat node in
        automine mode): one producer, no reorganisation it is not told to make, and no
        later block may ever come to bury the write. There a write is final once mined."""
        if self._finality_depth is None:
            depth = self.settings.confirmations
            if depth and ((self.is_embedded and not self.settings.block_time) or self._automines()):
                depth = 0
            self._finality_depth = depth
        return self._finality_depth

    def _automines(self) -> bool:
        if self.is_embedded:
            return False
        for method in ("anvil_getAutomine", "hardhat_getAutomine"):
            try:
                reply = self.w3.provider.make_request(method, [])  # type: ignore[arg-type]
            except Exception:  # a node that does not answer the probe produces blocks itself
                continue
            if reply.get("result") is True:
                return True
        return False

    @classmethod
    def embedded(cls, settings: Settings, *, start_node: bool = True) -> Chain:
        """The home's own anvil node (started unless ``start_node`` is False)."""
        return cls.connect(settings.with_(rpc_url=None), start_node=start_node)

    @classmethod
    def from_rpc(cls, url: str, settings: Settings) -> Chain:
        """An external chain at the JSON-RPC ``url`` (nothing is started)."""
        return cls.connect(settings.with_(rpc_url=url))

    @classmethod
    def connect(cls, settings: Settings, *, start_node: bool = True) -> Chain:
        """Connect as ``settings`` say: :meth:`from_rpc` with ``settings.rpc_url``, else
        :meth:`embedded`, starting the embedded node if needed."""
        node = None
        if settings.embedded:
            node = EmbeddedNode(
                chain_dir=settings.chain_dir,
                anvil_path=settings.anvil_path,
                chain_id=EMBEDDED_CHAIN_ID,
                port=settings.node_port,
                block_time=settings.block_time,
            )
            status = node.status()
            if not status.running:
                if not start_node:
                    raise NodeError(
                        "the embedded node is not running; run `neuroledger node start`"
                    )
                status = node.start()
            assert status.url is not None
            url = status.url
        else:
            assert settings.rpc_url is not None
            url = settings.rpc_url
        request_kwargs: dict[str, Any] = {"timeout": 30}
        if node is not None:  # the home's own node: every method, with the home's credential
            request_kwargs["headers"] = node.auth_headers()
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs=request_kwargs))
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception as exc:
            hint = (
                "check the URL and that the node runs, or unset --rpc-url / "
                "NEUROLEDGER_RPC_URL to use the embedded chain"
                if node is None
                else "check `neuroledger node status`"
            )
            raise RPCUnreachableError(
                f"no JSON-RPC node answers at {url} ({type(exc).__name__}); {hint}"
            ) from None
        if node is None:
            DeploymentStore(settings.deployments_dir).check_url(url, chain_id)
        return cls(w3=w3, url=url, chain_id=chain_id, settings=settings, node=node)

    # -- writes ----------------------------------------------------------------------
    def sender(self, account: LocalAccount) -> TransactionSender:
        """The transaction sender of ``account`` (one per address, sharing nonces)."""
        key = str(account.address)
        if key not in self._senders:
            self._senders[key] = TransactionSender(
                self.w3,
                account,
                chain_id=self.chain_id,
                nonces=self.nonces,
                fees=self.fees,
                receipt_timeout=self.settings.receipt_timeout,
                on_confirmed=self.persist,
                # The payer itself is never topped up from itself.
                top_up=self.fund if self.can_fund and key != self._funder_address() else None,
                kick=self._mine if self.is_embedded else None,
            )
        return self._senders[key]

    def persist(self, tx_hashes: list[str] | None = None) -> None:
        """Make everything confirmed so far durable (embedded node only).

        ``tx_hashes``: transactions that must be in what is saved. A node that
        restarted from an older state after mining them no longer holds them; the
        save then fails instead of reporting them as durable.
        """
        if self.node is not None:
            self.node.persist(self.url, require=tx_hashes or ())

    # -- embedded-only helpers -------------------------------------------------------
    def _funder_address(self) -> str | None:
        funder = self._funder
        return str(funder.address) if funder is not None and not isinstance(funder, str) else funder

    def _dev_account(self) -> str:
        if isinstance(self._funder, str):
            return self._funder
        if not self.is_embedded:
            raise ChainError(
                "nobody pays for new identities on this chain: fund them yourself, or name a payer"
            )
        return str(self.w3.eth.accounts[0])

    def _dev_send(self, tx: dict[str, Any]) -> Any:
        tx_hash = self.w3.eth.send_transaction({"from": self._dev_account(), **tx})  # type: ignore[typeddict-item]
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.settings.receipt_timeout, poll_latency=0.01
        )
        if receipt["status"] != 1:
            raise ChainError(f"development transaction {tx_hash.hex()} failed")
        return receipt

    def _mine(self) -> None:
        """Ask the embedded node to mine what its pool holds."""
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def fund(self, address: str, amount_wei: int = DEV_FUNDING_WEI) -> None:
        """Send at least ``amount_wei`` to ``address``: from anvil's development account on
        the embedded chain, else from the payer named with :meth:`fund_from`."""
        amount = max(int(amount_wei), DEV_FUNDING_WEI)
        if self._funder is not None and not isinstance(self._funder, str):
            self.sender(self._funder).send(
                Call(
                    to=Web3.to_checksum_address(address),
                    data=b"",
                    value=amount,
                    label=f"funding {address}",
                )
            )
            return
        receipt = self._dev_send({"to": Web3.to_checksum_address(address), "value": amount})
        self.persist([receipt["transactionHash"].to_0x_hex()])

    # -- contracts -------------------------------------------------------------------
    def deployment(
        self,
        *,
        deployer: LocalAccount | None = None,
        force: bool = False,
        governance: GovernanceSetup | None = None,
    ) -> DeploymentRecord:
        """The suite's deployment on this chain (:meth:`Suite.deployment`)."""
        return self.suite.deployment(deployer=deployer, force=force, governance=governance)

    def contract(self, name: str) -> Contract:
        """A web3 contract object for suite contract ``name`` (:meth:`Suite.contract`)."""
        return self.suite.contract(name)

    def wait_block_time(self, seconds: int) -> None:
        """Advance the embedded chain's clock (tests and demos of expiry)."""
        if not self.is_embedded:
            time.sleep(seconds)
            return
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        self.persist()
