"""bench_privacy: encryption throughput and the access gateway's authorized requests per second.

One table, every figure from the same run on the same input:

- encrypt and decrypt a 2 GiB file (from the page cache) with NeuroLedger's age
  implementation, against the ``age`` tool (Go; target: ours at least 0.8x of
  it), pyrage (Rust rage, in-process), and AES-256-GCM from ``cryptography``
  over the same 64 KiB chunks and the same I/O (the in-process limit);
- the gateway's authorized ``keywrap`` requests per second, each with its
  signature recovered, nonce stored, grant checked (cached for 5 blocks) and
  decision appended durably to the audit log, the gateway pinned to one core
  and the load generator to the other; against the same uvicorn+FastAPI
  server's bare health endpoint (the framework's ceiling), and against the
  gateway with ``--cache-blocks 0`` (a chain read on every request);
- how long after the revoke transaction the first request is refused, under load.

Usage: python benchmarks/bench_privacy.py [--size-mib 2048] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, free_port, load, machine, write_section

from neuroledger.privacy import age

AGE = shutil.which("age")


# -- encryption -----------------------------------------------------------------------------
def _aesgcm_open(src: Path, dst: Path, key: bytes) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(key)
    counter = 0
    sealed_chunk = age.CHUNK + 16
    with open(src, "rb") as f, open(dst, "wb") as out:
        while block := f.read(sealed_chunk * age.BATCH):
            view = memoryview(block)
            opened = []
            for offset in range(0, len(block), sealed_chunk):
                opened.append(
                    aead.decrypt(
                        counter.to_bytes(12, "big"), view[offset : offset + sealed_chunk], None
                    )
                )
                counter += 1
            out.write(b"".join(opened))


def _stream(fn, src: Path, dst: Path, key) -> None:  # type: ignore[no-untyped-def]
    """Stream ``src`` through ``fn`` into a plain file, as the age tool writes (no fsync)."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        fn(f, out, key)


def bench_encryption(work: Path, size_mib: int, repeats: int) -> dict[str, dict[str, float]]:
    import pyrage
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert AGE, "the age tool is missing; run `make setup`"
    plain = work / "plain.bin"
    block = os.urandom(1 << 20)
    with open(plain, "wb") as f:
        for _ in range(size_mib):
            f.write(block)
    private = os.urandom(32)
    public = age.x25519_public(private)
    key_file = work / "key.txt"
    key_file.write_text(age.identity_string(private) + "\n")
    recipient = age.recipient_string(public)
    rage_recipient = pyrage.x25519.Recipient.from_str(recipient)
    rage_identity = pyrage.x25519.Identity.from_str(age.identity_string(private))
    gcm_key = os.urandom(32)

    def gcm_encrypt() -> None:
        aead = AESGCM(gcm_key)
        counter = 0
        with open(plain, "rb") as f, open(work / "gcm.bin", "wb") as out:
            while block := f.read(age.CHUNK * age.BATCH):
                view = memoryview(block)
                sealed = []
                for offset in range(0, len(block), age.CHUNK):
                    sealed.append(
                        aead.encrypt(
                            counter.to_bytes(12, "big"), view[offset : offset + age.CHUNK], None
                        )
                    )
                    counter += 1
                out.write(b"".join(sealed))

    tools = {
        "neuroledger": (
            lambda: _stream(age.encrypt_stream, plain, work / "ours.age", [public]),
            lambda: _stream(age.decrypt_stream, work / "ours.age", work / "ours.out", private),
        ),
        "neuroledger, durable": (
            lambda: age.encrypt_file(plain, work / "durable.age", [public]),
            lambda: age.decrypt_file(work / "durable.age", work / "durable.out", private),
        ),
        "age tool": (
            lambda: subprocess.run(
                [AGE, "-r", recipient, "-o", str(work / "tool.age"), str(plain)], check=True
            ),
            lambda: subprocess.run(
                [
                    AGE,
                    "-d",
                    "-i",
                    str(key_file),
                    "-o",
                    str(work / "tool.out"),
                    str(work / "tool.age"),
                ],
                check=True,
            ),
        ),
        "pyrage": (
            lambda: pyrage.encrypt_file(str(plain), str(work / "rage.age"), [rage_recipient]),
            lambda: pyrage.decrypt_file(
                str(work / "rage.age"), str(work / "rage.out"), [rage_identity]
            ),
        ),
        "AES-GCM (cryptography)": (
            gcm_encrypt,
            lambda: _aesgcm_open(work / "gcm.bin", work / "gcm.out", gcm_key),
        ),
    }
    times: dict[str, dict[str, list[float]]] = {
        name: {"encrypt": [], "decrypt": []} for name in tools
    }
    for _ in range(repeats):  # interleaved, so drift in the machine hits every tool alike
        for name, (enc, dec) in tools.items():
            for direction, fn in (("encrypt", enc), ("decrypt", dec)):
                started = time.perf_counter()
                fn()
                times[name][direction].append(time.perf_counter() - started)
    for name in ("ours.out", "durable.out", "tool.out", "rage.out"):
        assert (work / name).stat().st_size == plain.stat().st_size, name
    mib = size_mib
    return {
        name: {d: mib / statistics.median(v) for d, v in directions.items()}
        for name, directions in times.items()
    }


# -- gateway --------------------------------------------------------------------------------
def bench_gateway(work: Path, requests: int) -> dict[str, float]:
    from neuroledger.chain._client import Chain
    from neuroledger.config import KdfParams, Settings
    from neuroledger.identity._keystore import Keystore
    from neuroledger.identity._service import Identities
    from neuroledger.privacy._requests import new_request, sign_request
    from neuroledger.privacy._service import PrivateData
    from neuroledger.provenance import Provenance
    from neuroledger.store import FileStore

    passphrase = work / "pw"
    passphrase.write_text("bench passphrase\n")
    settings = Settings(home=work / "home", kdf=KdfParams(n=2**14))
    chain = Chain.connect(settings)
    keystore = Keystore(
        settings.keystore_dir, passphrase=lambda: "bench passphrase", kdf=settings.kdf
    )
    ids = Identities(chain, keystore)
    ids.create("hospital", "org")
    ids.create("lab", "org")
    prov = Provenance(
        chain, keystore, store=FileStore(settings.store_dir), index_path=settings.index_path
    )
    data = PrivateData(chain, keystore, prov, settings.home)
    cohort = work / "cohort.csv"
    cohort.write_text("subject,age\n" + "".join(f"0x{i:040x},{i % 90}\n" for i in range(1000)))
    dataset = data.protect(cohort, owner="hospital").asset_id
    data.grant(
        dataset, "lab", modes="download", purpose="research", expires_in=86400, owner="hospital"
    )
    account = keystore.owner_account("lab")
    lab = data.identity("lab")

    def signed(n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            r = new_request(dataset, lab, "keywrap", "research", ttl=500)
            out.append(
                json.dumps(
                    {"request": r.to_json(), "signature": sign_request(r, account, data.domain)}
                ).encode()
            )
        return out

    env = {**os.environ, "NEUROLEDGER_HOME": str(settings.home), "NEUROLEDGER_PASSPHRASE_FILE": str(passphrase),
           "NEUROLEDGER_SCRYPT_N": str(2**14)}  # fmt: skip
    cli = str(Path(sys.executable).parent / "neuroledger")
    results: dict[str, float] = {}

    def serve(cache_blocks: int) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        proc = subprocess.Popen(
            ["taskset", "-c", "0", cli, "gateway", "serve", "--owner", "hospital", "--port", str(port),
             "--log", f"access-{cache_blocks}", "--cache-blocks", str(cache_blocks), "--rate", "1000000",
             "--burst", "1000000", "--client-rate", "1000000", "--no-jobs"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return proc, port
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        proc.stderr.read().decode() if proc.stderr else "no gateway"
                    ) from None
                time.sleep(0.2)

    os.sched_setaffinity(0, {1})  # the load generator on the other core
    try:
        proc, port = serve(5)
        asyncio.run(
            load(port, signed(500), 500, 32, "/v1/access")
        )  # warm up the cache and the JIT-free paths
        bodies = signed(requests)
        rate, statuses = asyncio.run(load(port, bodies, requests, 64, "/v1/access"))
        assert statuses == {200: requests}, statuses
        results["cached"] = rate
        base, statuses = asyncio.run(load(port, None, requests, 64, "/v1/health"))
        assert statuses == {200: requests}, statuses
        results["health"] = base

        # Revocation under load: how long until the first refusal after the revoke is mined.
        stop_at = len(bodies := signed(4000))
        index = 0

        async def until_refused() -> float:
            nonlocal index
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            revoked_at = 0.0
            while index < stop_at:
                body = bodies[index]
                index += 1
                writer.write(
                    f"POST /v1/access HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ).split(b":")[1]
                )
                await reader.readexactly(length)
                status = int(head.split(b" ", 2)[1])
                if index == 200:
                    await asyncio.to_thread(data.revoke, dataset, "lab", owner="hospital")
                    revoked_at = time.perf_counter()
                if status == 403 and revoked_at:
                    return (time.perf_counter() - revoked_at) * 1000
            return float("nan")

        results["revocation_ms"] = asyncio.run(until_refused())
        proc.terminate()
        proc.wait(timeout=30)

        data.grant(
            dataset, "lab", modes="download", purpose="research", expires_in=86400, owner="hospital"
        )
        proc, port = serve(0)
        n = max(requests // 4, 1000)
        rate, statuses = asyncio.run(load(port, signed(n), n, 64, "/v1/access"))
        assert statuses == {200: n}, statuses
        results["uncached"] = rate
        proc.terminate()
        proc.wait(timeout=30)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        assert chain.node is not None
        chain.node.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="bench-privacy-", dir=os.environ.get("BENCH_TMP")
    ) as tmp:
        work = Path(tmp)
        (work / "enc").mkdir()
        enc = bench_encryption(work / "enc", args.size_mib, args.repeats)
        shutil.rmtree(work / "enc")
        gw = bench_gateway(work, args.requests)
    ours = enc["neuroledger"]
    rows = []
    for baseline in ("age tool", "pyrage", "AES-GCM (cryptography)"):
        for direction in ("encrypt", "decrypt"):
            rows.append((f"{direction} {args.size_mib} MiB, streamed (MiB/s)", f"{ours[direction]:,.0f}", baseline,
                         f"{enc[baseline][direction]:,.0f}", f"{ours[direction] / enc[baseline][direction]:.2f}x"))  # fmt: skip
    durable = enc["neuroledger, durable"]
    for direction in ("encrypt", "decrypt"):
        rows.append((f"{direction}_file: atomic + fsync (MiB/s)", f"{durable[direction]:,.0f}", "age tool (no fsync)",
                     f"{enc['age tool'][direction]:,.0f}", f"{durable[direction] / enc['age tool'][direction]:.2f}x"))  # fmt: skip
    rows.append(("gateway keywrap, cached 5 blocks, audited (req/s)", f"{gw['cached']:,.0f}",
                 "bare FastAPI health endpoint, same server", f"{gw['health']:,.0f}",
                 f"{gw['cached'] / gw['health']:.2f}x"))  # fmt: skip
    rows.append(("gateway keywrap, chain read per request (req/s)", f"{gw['uncached']:,.0f}",
                 "bare FastAPI health endpoint, same server", f"{gw['health']:,.0f}",
                 f"{gw['uncached'] / gw['health']:.2f}x"))  # fmt: skip
    rows.append(("revoke mined -> first refusal under load (ms)", f"{gw['revocation_ms']:.0f}",
                 "poll interval", "250", f"{gw['revocation_ms'] / 250:.2f}x"))  # fmt: skip
    header = (
        "| measure | NeuroLedger | baseline | baseline figure | ratio |\n|---|---:|---|---:|---:|\n"
    )
    table = header + "\n".join("| " + " | ".join(r) + " |" for r in rows)
    print(table)
    age_ratio = min(ours[d] / enc["age tool"][d] for d in ("encrypt", "decrypt"))
    verdict = (
        f"Targets: encryption at least 0.8x the age tool: {'met' if age_ratio >= 0.8 else 'missed'} "
        f"(lowest ratio {age_ratio:.2f}x); gateway at least 500 authorized req/s on one core: "
        f"{'met' if gw['cached'] >= 500 else 'missed'} ({gw['cached']:,.0f}/s)."
    )
    print(verdict)
    write_section(
        ROOT / "docs" / "benchmarks.md",
        "bench_privacy",
        f"Machine: {machine()}\n\n{table}\n\n{verdict}",
    )


if __name__ == "__main__":
    main()
