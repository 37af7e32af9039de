"""bench_x402: paid requests per second through `neuroledger market serve`.

One table, every figure from the same run, the same model (a 30-feature softmax regression,
the federated breast-cancer model's shape) and the same request body:

- `market serve`: each request's payment checked (signature, window, nonce and balance read
  from the chain), settled on chain before it is served (batched through PaymentSettler:
  one transaction per batch), its row written to the paid-calls ledger and its call appended
  durably to the audit log; the server pinned to one core, the load generator on the other;
- the same model unpaid, on the same uvicorn+FastAPI stack (the framework's ceiling);
- the x402 package's own FastAPI middleware (PyPI `x402`, pinned) serving the same model,
  checking and settling through NeuroLedger's facilitator over HTTP (both on core 0).

Usage: python benchmarks/bench_x402.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, free_port, load, machine, write_section
from fastapi import FastAPI, Request

PRICE = 10_000  # 0.01 credits
#: Clients in flight at once (--connections): at 300 req/s and ~0.3 s per paid call (a settlement
#: confirmed per batch), Little's law puts about 90 requests in flight.
CONNECTIONS = 128


def _wait(proc: subprocess.Popen[bytes], port: int) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    proc.stderr.read().decode() if proc.stderr else "no server"
                ) from None
            time.sleep(0.2)


def _model_app(model: str) -> FastAPI:
    """The model's POST /predict and GET /health on FastAPI, without payment."""
    from neuroledger.market import model_handler

    handler, _ = model_handler(Path(model))
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        return handler(json.loads(await request.body()))

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    app.state.close = lambda: None
    return app


def serve_unpaid(model: str, port: int) -> None:
    """The same model without payment, on the same server stack."""
    from neuroledger.privacy.gateway import listen, serve

    serve(_model_app(model), listen("127.0.0.1", port), host="127.0.0.1", port=port)


def serve_middleware(model: str, port: int, facilitator: str, asset: str, pay_to: str,
                     network: str, name: str, version: str) -> None:  # fmt: skip
    """The same model behind the x402 package's FastAPI middleware and our facilitator."""
    from x402 import x402ResourceServer
    from x402.http import FacilitatorConfig, HTTPFacilitatorClient
    from x402.http.middleware.fastapi import PaymentMiddlewareASGI
    from x402.mechanisms.evm.exact.register import register_exact_evm_server

    from neuroledger.privacy.gateway import listen, serve

    server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator)))
    register_exact_evm_server(server, network)
    routes = {"POST /predict": {"accepts": {
        "scheme": "exact", "payTo": pay_to, "network": network,
        "price": {"amount": str(PRICE), "asset": asset, "extra": {"name": name, "version": version}},
    }}}  # fmt: skip
    app = _model_app(model)
    app.add_middleware(PaymentMiddlewareASGI, routes=routes, server=server)
    serve(app, listen("127.0.0.1", port), host="127.0.0.1", port=port)


def bench(work: Path, requests: int) -> dict[str, Any]:
    import httpx
    import numpy as np

    from neuroledger.chain._client import Chain
    from neuroledger.config import KdfParams, Settings
    from neuroledger.federated._run_records import write_model
    from neuroledger.identity._keystore import Keystore
    from neuroledger.identity._service import Identities
    from neuroledger.market import Credits
    from neuroledger.market._x402 import decode_header, encode_header

    passphrase = work / "pw"
    passphrase.write_text("bench passphrase\n")
    settings = Settings(home=work / "home", kdf=KdfParams(n=2**14))
    chain = Chain.connect(settings)
    keystore = Keystore(settings.keystore_dir, passphrase=lambda: "bench passphrase",
                        kdf=settings.kdf)  # fmt: skip
    ids = Identities(chain, keystore)
    for name in ("lab", "triage", "operator"):
        ids.create(name, "org", publish=False)
    credits = Credits(chain, keystore)
    credits.faucet("lab", 1_000 * 10**6, by="lab")
    chain.fund(keystore.owner_account("operator").address)
    model = work / "model"
    rng = np.random.default_rng(0)
    write_model(model, rng.normal(size=30 * 2 + 2), features=30, classes=2, extra={})
    body = json.dumps({"features": rng.normal(size=(1, 30)).round(4).tolist()}).encode()
    env = {**os.environ, "NEUROLEDGER_HOME": str(settings.home),
           "NEUROLEDGER_PASSPHRASE_FILE": str(passphrase), "NEUROLEDGER_SCRYPT_N": str(2**14)}  # fmt: skip
    cli = str(Path(sys.executable).parent / "neuroledger")
    here = str(Path(__file__).resolve())
    operator = keystore.owner_account("operator").address
    results: dict[str, Any] = {}

    def headers_for(port: int, n: int) -> list[dict[str, str]]:
        first = httpx.post(f"http://127.0.0.1:{port}/predict", content=body,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert first.status_code == 402, first.text
        required = decode_header(first.headers["PAYMENT-REQUIRED"])
        (offer,) = required["accepts"]
        out = []
        for _ in range(n):
            auth = credits.authorize(offer["payTo"], int(offer["amount"]), by="lab", valid_for=900)
            payload = {"x402Version": 2, "accepted": offer, "resource": required["resource"],
                       "payload": auth.to_x402()}  # fmt: skip
            out.append({"PAYMENT-SIGNATURE": encode_header(payload)})
        return out

    def measure(port: int, n: int, paid: bool) -> tuple[float, int]:
        headers = headers_for(port, n + 200) if paid else None
        warm = headers[:200] if headers else None
        asyncio.run(load(port, [body] * 200, 200, 32, "/predict", warm))
        txs = chain.w3.eth.get_transaction_count(operator)
        rate, statuses = asyncio.run(load(port, [body] * n, n, CONNECTIONS, "/predict",
                                          headers[200:] if headers else None))  # fmt: skip
        assert statuses == {200: n}, statuses
        return rate, chain.w3.eth.get_transaction_count(operator) - txs

    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], port: int) -> None:
        proc = subprocess.Popen(["taskset", "-c", "0", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        procs.append(proc)
        _wait(proc, port)

    os.sched_setaffinity(0, {1})  # the load generator on the other core
    try:
        ours = free_port()
        start([cli, "market", "serve", "triage", "--model", str(model), "--price", "0.01",
               "--operator", "operator", "--port", str(ours)], ours)  # fmt: skip
        results["paid"], txs = measure(ours, requests, paid=True)
        results["batch"] = requests / max(txs, 1)
        unpaid = free_port()
        start([sys.executable, here, "--serve-unpaid", str(model), str(unpaid)], unpaid)
        results["unpaid"], _ = measure(unpaid, requests, paid=False)
        mw = free_port()
        domain = credits.domain()
        start([sys.executable, here, "--serve-middleware", str(model), str(mw),
               f"http://127.0.0.1:{ours}/facilitator", credits.address, credits.address_of("triage"),
               f"eip155:{chain.chain_id}", domain["name"], domain["version"]], mw)  # fmt: skip
        n = max(requests // 3, 300)
        results["middleware"], txs = measure(mw, n, paid=True)
        results["middleware_batch"] = n / max(txs, 1)
        results["middleware_n"] = n
        assert credits.balance("triage") == PRICE * (requests + n + 400)
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        assert chain.node is not None
        chain.node.stop()
    return results


def main() -> None:
    global CONNECTIONS
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-unpaid":
        serve_unpaid(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-middleware":
        serve_middleware(sys.argv[2], int(sys.argv[3]), *sys.argv[4:10])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    args = parser.parse_args()
    CONNECTIONS = args.connections
    with tempfile.TemporaryDirectory() as tmp:
        r = bench(Path(tmp), args.requests)
    rows = [
        ("`market serve`, paid, settled before serving (req/s)", f"{r['paid']:,.0f}",
         f"unpaid, same model and stack: {r['unpaid']:,.0f}", f"{r['paid'] / r['unpaid']:.2f}"),
        ("`market serve`, paid (req/s)", f"{r['paid']:,.0f}",
         f"x402 package middleware + our facilitator: {r['middleware']:,.0f}",
         f"{r['paid'] / r['middleware']:.2f}"),
        ("payments per settlement transaction", f"{r['batch']:.1f}",
         f"x402 middleware through our facilitator: {r['middleware_batch']:.1f}", ""),
    ]  # fmt: skip
    table = ["| measure | NeuroLedger | baseline (same run) | ratio |", "|---|---:|---|---:|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    verdict = "met" if r["paid"] >= 300 else "NOT met"
    body = "\n".join([
        "## x402: paid requests per second (bench_x402)", "",
        f"Machine: {machine()}. {args.requests} paid requests over {CONNECTIONS} connections "
        f"({r['middleware_n']} through the middleware); server pinned to core 0, load generator "
        "to core 1, anvil unpinned (automine).", "", *table, "",
        f"Target: at least 300 paid req/s on one core with settlement batched: {verdict}.", "",
    ])  # fmt: skip
    print(body)
    write_section(ROOT / "docs" / "benchmarks.md", "bench_x402", body)


if __name__ == "__main__":
    main()
