"""A client that writes batches forever and logs every batch reported as confirmed.

Run by the durability test as its own process so that it can be SIGKILLed:
``python durability_writer.py HOME CONFIRMED_LOG SEED``. When the node dies under
it, the writer waits for the node to come back at the home's endpoint and goes
on, as a long-running client would. Each confirmed line is
``<tx hash> <identity address> <attribute value>``, so that the test can look
every write up again through the application (the DID resolver over the
home's deployment record), not only as a receipt.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from eth_account import Account

from neuroledger.chain._client import Chain
from neuroledger.config import Settings
from neuroledger.errors import NeuroLedgerError
from neuroledger.identity._registry import RegistryClient

#: Attributes outlive the test whatever the chain's clock does.
VALIDITY = 10**9


def main() -> None:
    home, log_path, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    chain = Chain.connect(Settings(home=home), start_node=False)
    account = Account.create()
    chain.fund(account.address)
    reg = RegistryClient(chain.contract("DIDRegistry"))
    sender = chain.sender(account)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    counter = 0
    while True:
        size = rng.randint(1, 8)
        values = []
        for _ in range(size):
            counter += 1
            values.append(f"{seed}-{counter}")
        calls = [
            reg.set_attribute(account.address, "did/svc/Log", v.encode(), VALIDITY) for v in values
        ]
        try:
            receipts = sender.send_batch(calls)
        except (NeuroLedgerError, OSError, ValueError):  # the node is down: wait, then go on
            time.sleep(0.2)
            continue
        # Reported as confirmed: record it durably before going on.
        lines = "".join(
            f"{r.tx_hash} {account.address} {v}\n" for r, v in zip(receipts, values, strict=True)
        )
        os.write(fd, lines.encode())
        os.fsync(fd)
        # A pause between batches: the test checks every confirmed write through the resolver
        # (whose cost grows with the writes), so their number stays what a CI run affords.
        time.sleep(rng.uniform(0.02, 0.08))


if __name__ == "__main__":
    main()
