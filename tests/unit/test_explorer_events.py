"""The explorer's event decoder: any suite event from a raw log, as plain JSON."""

from __future__ import annotations

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from neuroledger.chain import load_artifact
from neuroledger.explorer import EventCatalog

MARKET = "0x" + "11" * 20


def _log(topics: list[bytes], data: bytes, address: str = MARKET) -> dict:
    return {"address": address, "topics": ["0x" + t.hex() for t in topics], "data": "0x" + data.hex(),
            "blockNumber": "0x5", "logIndex": "0x0", "transactionHash": "0x" + "ab" * 32,
            "blockHash": "0x" + "cd" * 32}  # fmt: skip


def test_a_sale_decodes_to_plain_json() -> None:
    catalog = EventCatalog(
        {"Marketplace": load_artifact("Marketplace").abi}, {"Marketplace": MARKET}
    )
    topic = keccak(text="Sold(uint256,uint256,address,address,uint256,uint8,uint64,uint64)")
    buyer = "0x" + "22" * 20
    log = _log([topic, (7).to_bytes(32, "big"), (3).to_bytes(32, "big"), bytes(12) + bytes.fromhex(buyer[2:])],
               encode(["address", "uint256", "uint8", "uint64", "uint64"], [buyer, 2**70, 2, 10, 20]))  # fmt: skip
    event = catalog.decode(log)
    assert event is not None and (event.contract, event.name, event.block) == (
        "Marketplace",
        "Sold",
        5,
    )
    assert event.args["saleId"] == 7 and event.args["listingId"] == 3
    assert event.args["buyer"].lower() == buyer and event.args["price"] == str(2**70)


def test_unknown_or_malformed_logs_are_skipped() -> None:
    catalog = EventCatalog(
        {"Marketplace": load_artifact("Marketplace").abi}, {"Marketplace": MARKET}
    )
    topic = keccak(text="Sold(uint256,uint256,address,address,uint256,uint8,uint64,uint64)")
    assert catalog.decode(_log([topic], b"", address="0x" + "33" * 20)) is None  # other contract
    assert catalog.decode(_log([keccak(text="Nope()")], b"")) is None
    assert (
        catalog.decode(_log([topic, bytes(32), bytes(32), bytes(32)], b"\x01")) is None
    )  # bad data
    assert catalog.decode(_log([topic], b"")) is None  # wrong topic count
