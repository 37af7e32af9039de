"""A client that writes batches forever and logs every batch reported as confirmed.

Run by the durability test as its own process so that it can be SIGKILLed:
``python durability_writer.py HOME CONFIRMED_LOG SEED``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from eth_account import Account

from neuroledger.chain.client import Chain
from neuroledger.config import Settings
from neuroledger.identity.registry import RegistryClient


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
        calls = []
        for _ in range(size):
            counter += 1
            calls.append(
                reg.set_attribute(account.address, "did/svc/Log", f"{seed}-{counter}".encode(), 60)
            )
        receipts = sender.send_batch(calls)
        # Reported as confirmed: record it durably before going on.
        os.write(fd, "".join(f"{r.tx_hash}\n" for r in receipts).encode())
        os.fsync(fd)


if __name__ == "__main__":
    main()
