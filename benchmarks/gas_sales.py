"""Gas of a model sale with royalties along its lineage, for 3, 10 and 30 contributors,
against paying the same people directly, on one bare anvil in the same run.

Our figure per sale is the buyer's ``buy`` (payment into escrow and the grant in
``AccessGrants``, one transaction) plus the ``release`` after the hold (the royalty
credited to each contributor's owner, the rest to the seller). The baseline is the
same money moved with no escrow, no grant and no lineage: one ERC-20 ``transfer`` from
the buyer to the seller and one to each contributor, to fresh accounts as the sale's are.
The listing, once per asset, is reported apart: it walks and checks the lineage.

Lineages: 3 and 10 datasets as the model's parents; 30 contributors as two training runs
of 14 datasets each (depth 2, the walk's count bound is 32). Writes the table to
docs/gas.md and docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from gas_credits import _deployed, _send

from neuroledger.chain._anvil import start_dev_anvil
from neuroledger.market._lineage_walk import walk_lineage

VERIKEY = b"veriKey".ljust(32, b"\0")
PRICE = 100 * 10**6
_counter = [0]


def _address() -> str:
    _counter[0] += 1
    return str(Account.from_key((0x1000 + _counter[0]).to_bytes(32, "big")).address)


class Suite:
    def __init__(self, w3: Web3, admin: str) -> None:
        self.w3 = w3
        did = _deployed(w3, "DIDRegistry", admin)
        self.assets = _deployed(w3, "AssetRegistry", admin, did.address)
        grants = _deployed(w3, "AccessGrants", admin, did.address, self.assets.address,
                           admin, admin)  # fmt: skip
        fl = _deployed(w3, "FederatedTask", admin, admin, admin)
        self.token = _deployed(w3, "Credits", admin, 10**30)
        self.market = _deployed(w3, "Marketplace", admin, self.token.address, did.address,
                                self.assets.address, grants.address, fl.address, admin,
                                admin)  # fmt: skip
        self.did = did
        self.admin = admin
        self.parents: dict[str, list[str]] = {}
        self.n = 0

    def fund(self, who: str) -> None:
        self.w3.provider.make_request("anvil_setBalance", [who, hex(10**20)])  # type: ignore[arg-type]

    def register(self, owner: str, parents: list[str]) -> str:
        self.n += 1
        digest = self.n.to_bytes(32, "big")
        fn = self.assets.functions.register(owner, digest, 1, digest, "", [bytes.fromhex(p[2:])
                                            for p in parents], "MIT")  # fmt: skip
        _send(self.w3, fn, owner)
        asset = "0x" + bytes(self.assets.functions.assetId(owner, digest).call()).hex()
        self.parents[asset] = parents
        return asset

    def lineage(self, n: int, seller: str) -> str:
        """A model whose walk finds ``n`` contributors, each owned by a fresh account."""
        owners = [_address() for _ in range(n)]
        for o in owners:
            self.fund(o)
        if n <= 16:
            return self.register(seller, [self.register(o, []) for o in owners])
        runs = []
        for half in (owners[2 : 2 + (n - 2) // 2], owners[2 + (n - 2) // 2 :]):
            runs.append(self.register(owners[len(runs)], [self.register(o, []) for o in half]))
        return self.register(seller, runs)


def sale(s: Suite, n: int) -> dict[str, Any]:
    seller, buyer = _address(), _address()
    for who in (seller, buyer):
        s.fund(who)
    model = s.lineage(n, seller)
    _send(s.w3, s.did.functions.addDelegate(seller, VERIKEY, s.market.address, 10**8), seller)
    walk = walk_lineage(model, lambda a: s.parents.get(a, []))
    assert len(walk.ancestors) == n, (n, len(walk.ancestors))
    lineage = [[bytes.fromhex(p[2:]) for p in ps] for ps in walk.lists]
    m = s.market.functions
    listing_gas = _send(s.w3, m.list(seller, bytes.fromhex(model[2:]), PRICE, 2, b"r".ljust(32, b"\0"),
                                     86400 * 30, "MIT", "", 0, lineage, []), seller)  # fmt: skip
    listing = int(m.listingCount().call())
    _send(s.w3, s.token.functions.mint(buyer, 10 * PRICE), s.admin)
    _send(s.w3, s.token.functions.approve(s.market.address, 2**256 - 1), buyer)
    buy = _send(s.w3, m.buy(listing, buyer), buyer)
    s.w3.provider.make_request("evm_increaseTime", [86400])  # type: ignore[arg-type]
    s.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    release = _send(s.w3, m.release(int(m.saleCount().call())), buyer)
    # the baseline: the same buyer pays the seller and each contributor directly
    direct = sum(_send(s.w3, s.token.functions.transfer(_address(), PRICE // (n + 1)), buyer)
                 for _ in range(n + 1))  # fmt: skip
    return {"n": n, "listing": listing_gas, "buy": buy, "release": release, "direct": direct}


def main() -> None:
    proc, url = start_dev_anvil("--auto-impersonate")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        s = Suite(w3, w3.eth.accounts[0])
        sale(s, 3)  # warm the token's and the market's shared slots
        rows = [sale(s, n) for n in (3, 10, 30)]
    finally:
        proc.kill()
    lines = [
        "| model sale with royalties | NeuroLedger: `buy` (escrow + grant) + `release` (royalties) | baseline: direct ERC-20 transfers to seller and contributors (same run) | ratio | listing, once per asset (walks and checks the lineage) |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        ours = r["buy"] + r["release"]
        lines.append(f"| {r['n']} contributors | {ours:,} ({r['buy']:,} + {r['release']:,}) | "
                     f"{r['direct']:,} | {ours / r['direct']:.2f} | {r['listing']:,} |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    intro = ("A model sold with royalties along its lineage vs paying everyone directly, same "
             f"anvil, same run (`python benchmarks/gas_sales.py`).\n\nMachine: {machine()}\n\n")  # fmt: skip
    write_section(ROOT / "docs" / "gas.md", "gas_sales", intro + table)
    write_section(ROOT / "docs" / "benchmarks.md", "gas_sales", "gas_sales: " + intro + table)


if __name__ == "__main__":
    main()
