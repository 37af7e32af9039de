"""The explorer's index on a real anvil: every suite contract's events in one SQLite file,
decoded to plain JSON, resumable, and refusing a reorg below its final block."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuroledger.chain import Chain
from neuroledger.errors import IndexReorgError
from neuroledger.explorer import open_index
from neuroledger.identity import Identities
from neuroledger.market import Credits
from neuroledger.provenance import Provenance

pytestmark = pytest.mark.anvil


def test_the_index_reads_every_contract_and_resumes(chain: Chain, identities: Identities,
                                                   prov: Provenance, keystore, tmp_path: Path) -> None:  # fmt: skip
    identities.create("hospital", "org", publish=False)
    data = tmp_path / "cohort.csv"
    data.write_text("id\n1\n")
    asset = prov.register(data, kind="dataset", owner="hospital").asset_id
    Credits(chain, keystore).faucet("hospital", 5 * 10**6, by="hospital")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    stored = index.sync(chain.w3, confirmations=0)
    assert stored == index.count() > 0
    registered = index.events(contract="AssetRegistry", name="AssetRegistered")
    assert [e["args"]["id"] for e in registered] == ["0x" + asset.removeprefix("0x")]
    assert registered[0]["args"]["kind"] == 1 and registered[0]["time"] > 0
    transfers = index.events(contract="Credits", name="Transfer")
    assert transfers and transfers[-1]["args"]["value"] == 5 * 10**6
    assert index.sync(chain.w3, confirmations=0) == 0  # resumes: nothing new
    again = open_index(chain, tmp_path / "explorer.sqlite")  # reopened: same position
    assert again.count() == stored and again.sync(chain.w3) == 0
    page = index.events(limit=2)
    rest = index.events(after=(page[-1]["block"], page[-1]["log_index"]), limit=10_000)
    assert len(page) + len(rest) == stored


def test_a_reorg_below_the_final_block_is_refused(chain: Chain, identities: Identities,
                                                 keystore, tmp_path: Path) -> None:  # fmt: skip
    identities.create("hospital", "org", publish=False)
    credits = Credits(chain, keystore)
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    credits.faucet("hospital", 10**6, by="hospital")
    index = open_index(chain, tmp_path / "explorer.sqlite")
    index.sync(chain.w3, confirmations=0)
    chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    with pytest.raises(IndexReorgError, match="explorer index --rebuild"):
        index.sync(chain.w3, confirmations=0)
    index.rebuild()
    assert index.sync(chain.w3, confirmations=0) == index.count()
