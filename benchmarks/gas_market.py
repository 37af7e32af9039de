"""Gas of the market's trust: a job judged by k = 3 of n = 5 staked validators (commit,
reveal, a stake-weighted median, fees and slashes) against the same job completed by one
trusted ERC-8183 evaluator, both on one bare anvil in the same run, paid in credits.

Every transaction of the validated path is counted: the client's terms, the provider's
request (five validators drawn from the pool), five commitments, five reveals, the
finalization (which completes the job in the escrow) and the settlement after the
challenge window (fees to the honest, one slash). The validators' stakes are one-off and
listed apart. Also: a payment through an agent account's on-chain guardrails against the
same payment from a plain key. Writes the tables to docs/gas.md and docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_section
from gas_credits import ZERO, _deployed, _send

from neuroledger.chain._anvil import start_dev_anvil

CREDIT = 10**6


def _mine(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def validated_job(w3: Web3, admin: str) -> tuple[list[tuple[str, int]], int]:
    """The validated path, call by call, and the single evaluator's `complete` on the same
    escrow (its job created, funded and delivered the same way)."""
    credits = _deployed(w3, "Credits", admin, 10**30)
    agents = _deployed(w3, "AgentRegistry", admin)
    escrow = _deployed(w3, "JobEscrow", admin, credits.address, admin, admin)
    reg = _deployed(w3, "ValidationRegistry", admin, agents.address, escrow.address, admin, admin)
    client, provider, evaluator = (
        Account.from_key(bytes([k]) * 32).address for k in (0x71, 0x72, 0x73)
    )
    validators = [Account.from_key(bytes([0x80 + i]) * 32).address for i in range(5)]
    for who in (client, provider, evaluator, *validators):
        w3.provider.make_request("anvil_setBalance", [who, hex(10**20)])  # type: ignore[arg-type]
        _send(w3, credits.functions.mint(who, 10**12), admin)
        _send(w3, credits.functions.approve(escrow.address, 2**256 - 1), who)
        _send(w3, credits.functions.approve(reg.address, 2**256 - 1), who)
    _send(w3, agents.functions.register("https://triage.example/card.json"), provider)
    stakes = [_send(w3, reg.functions.stake(120 * CREDIT), v) for v in validators]
    e, r = escrow.functions, reg.functions
    expiry = w3.eth.get_block("latest")["timestamp"] + 30 * 86400

    def delivered(judge: str, terms: bool) -> tuple[int, int]:
        _send(
            w3, e.createJob(provider, judge, expiry, "a classifier of 90% accuracy", ZERO), client
        )
        job = int(e.jobCounter().call())
        gas = (
            _send(w3, r.setJobTerms(job, 5, 3, 90, keccak(b'{"kind":"model-accuracy"}')), client)
            if terms
            else 0
        )
        _send(w3, e.setBudget(job, 20 * CREDIT, b""), client)
        _send(w3, e.fund(job, 20 * CREDIT, b""), client)
        _send(w3, e.submit(job, b"\x42" * 32, b""), provider)
        return job, gas

    # A first job of each kind warms the slots every job shares (the provider's balance).
    for warm in (reg.address, evaluator):
        job, _ = delivered(warm, warm == reg.address)
        if warm == evaluator:
            _send(w3, e.complete(job, b"\0" * 32, b""), evaluator)
    job, _ = delivered(evaluator, False)
    single = _send(w3, e.complete(job, b"\0" * 32, b""), evaluator)

    def round_(job: int, terms_gas: int, label: str) -> list[tuple[str, int]]:
        h = keccak(label.encode())
        out = [("setJobTerms (client: n = 5, k = 3, threshold, check)", terms_gas),
               ("requestJobValidation (provider: 5 drawn from the pool, fee)",
                _send(w3, r.requestJobValidation(job, "data:application/json;base64,e30=", h, 600, 600,
                                                 5 * CREDIT), provider))]  # fmt: skip
        chosen = r.getRequest(h).call()[-1]
        responses = {v: (96 if i < 4 else 0) for i, v in enumerate(chosen)}  # one liar
        commits, reveals = [], []
        for v, resp in responses.items():
            salt = keccak(v.encode())
            digest = keccak(encode(["bytes32", "uint8", "bytes32", "address"], [h, resp, salt, v]))
            commits.append(_send(w3, r.commit(h, digest), v))
        for v, resp in responses.items():
            reveals.append(_send(w3, r.reveal(h, resp, keccak(v.encode()), "", b"\0" * 32), v))
        out.append(("commit x 5 (each)", sum(commits) // 5))
        out.append(("reveal x 5 (each)", sum(reveals) // 5))
        out.append(
            (
                "finalize (median; completes the job, pays the provider)",
                _send(w3, r.finalize(h), admin),
            )
        )
        _mine(w3, 601)
        out.append(("settle (fee to 4 honest, 1 slashed)", _send(w3, r.settle(h), admin)))
        return out

    job, terms_gas = delivered(reg.address, True)
    round_(job, terms_gas, "warm-up")  # validators' first fee and first slash
    job, terms_gas = delivered(reg.address, True)
    calls = round_(job, terms_gas, "measured")
    return [("stake (once per validator)", sum(stakes) // 5), *calls], single


def account_payment(w3: Web3, admin: str) -> tuple[int, int]:
    """A payment of 1 credit through an agent account within its policy, and the same payment
    from a plain key (both to a recipient that already holds credits, both payers' second
    payment of the day, so that storage states match)."""
    credits = _deployed(w3, "Credits", admin, 10**30)
    owner, agent, shop, eoa = (
        Account.from_key(bytes([k]) * 32).address for k in (0x91, 0x92, 0x93, 0x94)
    )
    for who in (owner, agent, eoa):
        w3.provider.make_request("anvil_setBalance", [who, hex(10**20)])  # type: ignore[arg-type]
    expiry = w3.eth.get_block("latest")["timestamp"] + 30 * 86400
    account = _deployed(w3, "AgentAccount", admin, owner, agent, ZERO, expiry)
    a = account.functions
    _send(w3, a.setAllowance(credits.address, 50 * CREDIT, 100 * CREDIT, 86400), owner)
    _send(w3, a.allowCall(credits.address, bytes.fromhex("a9059cbb"), True), owner)
    _send(w3, a.allowRecipient(shop, True), owner)
    _send(w3, a.setLimits(100, 3600, 10**6, 0, expiry), owner)
    for holder in (account.address, eoa):
        _send(w3, credits.functions.mint(holder, 10**12), admin)
    _send(w3, credits.functions.mint(shop, 1), admin)
    data = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [shop, CREDIT])
    guarded = [_send(w3, a.execute(credits.address, 0, data), agent) for _ in range(2)][-1]
    plain = [_send(w3, credits.functions.transfer(shop, CREDIT), eoa) for _ in range(2)][-1]
    return guarded, plain


def main() -> None:
    proc, url = start_dev_anvil("--auto-impersonate")
    try:
        w3 = Web3(Web3.HTTPProvider(url))
        calls, single = validated_job(w3, w3.eth.accounts[0])
        guarded, plain = account_payment(w3, w3.eth.accounts[0])
    finally:
        proc.kill()
    per_job = {"commit x 5 (each)": 5, "reveal x 5 (each)": 5}
    total = sum(
        gas * per_job.get(label, 1) for label, gas in calls if not label.startswith("stake")
    )
    lines = ["| validated job, k = 3 of n = 5 (ValidationRegistry as the ERC-8183 evaluator) | gas |",
             "|---|---:|"]  # fmt: skip
    lines += [f"| {label} | {gas:,} |" for label, gas in calls]
    lines += [
        "",
        "| per job | NeuroLedger, 3 of 5 staked validators | baseline: one trusted evaluator's `complete` (same escrow, same run) | ratio (the price of trust) |",
        "|---|---:|---:|---:|",
        f"| gas to judge a delivered job | {total:,} | {single:,} | {total / single:.1f} |",
        "",
        "| payment of 1 credit | NeuroLedger agent account (caps, allowlists, rate limit checked on chain) | baseline: a plain key's `transfer` (same token, same run) | overhead (target: under 30,000) |",
        "|---|---:|---:|---:|",
        f"| gas | {guarded:,} | {plain:,} | {guarded - plain:,} ({'met' if guarded - plain < 30_000 else 'MISSED'}) |",
    ]  # fmt: skip
    table = "\n".join(lines)
    print(table)
    intro = ("A job judged by staked validators vs one trusted evaluator, same anvil, same run "
             f"(`python benchmarks/gas_market.py`).\n\nMachine: {machine()}\n\n")  # fmt: skip
    write_section(ROOT / "docs" / "gas.md", "gas_market", intro + table)
    write_section(ROOT / "docs" / "benchmarks.md", "gas_market", "gas_market: " + intro + table)


if __name__ == "__main__":
    main()
