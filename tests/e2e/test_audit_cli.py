"""`neuroledger audit …` as users run it, and the tile server over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from neuroledger.audit._log import TileLog
from neuroledger.audit._note import NoteSigner, open_checkpoint
from neuroledger.audit._serve import make_server
from neuroledger.audit._tiles import tile_path
from neuroledger.core._merkle import leaf_hash, verify_inclusion
from tests.e2e.test_cli import cli  # noqa: F401 (fixture)

pytestmark = pytest.mark.anvil


def events(n: int, start: int = 0) -> str:
    return "".join(
        json.dumps({"system": "triage", "event_type": "decision", "output_digest": f"{i:064x}"})
        + "\n"
        for i in range(start, start + n)
    )


def test_audit_lifecycle(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("identity", "create", "agent-owner", "--kind", "org")
    created = json.loads(cli("audit", "create", "triage", "--json").stdout)
    assert created["vkey"].startswith("neuroledger.local/triage+")
    out = json.loads(cli("audit", "append", "triage", "--json", stdin=events(300)).stdout)
    assert out == {"first_index": 0, "count": 300, "size": 300}
    bad = cli("audit", "append", "triage", stdin=events(2) + '{"oops": \n', ok=False)
    assert (
        bad.returncode == 14
        and "line 3 is not JSON" in bad.stderr
        and "nothing was appended" in bad.stderr
    )
    big = cli("audit", "append", "triage", stdin=json.dumps({"x": "y" * 70_000}) + "\n", ok=False)
    assert big.returncode == 14 and "entry limit" in big.stderr
    assert "\n300\n" in cli("audit", "checkpoint", "triage").stdout
    anchor = json.loads(cli("audit", "anchor", "triage", "--as", "agent-owner", "--json").stdout)
    assert anchor["size"] == 300
    bundle = tmp_path / "e42.tlog-proof"
    cli("audit", "prove", "triage", "42", "--out", str(bundle))
    verified = json.loads(cli("audit", "verify-bundle", str(bundle), "--json").stdout)
    assert verified["index"] == 42 and verified["event"]["output_digest"] == f"{42:064x}"
    beyond = cli("audit", "prove", "triage", "300", ok=False)
    assert beyond.returncode == 14 and "holds 300 entries (indexes 0 to 299)" in beyond.stderr
    cli("audit", "append", "triage", stdin=events(1))
    unanchored = cli("audit", "prove", "triage", "300", ok=False)
    assert unanchored.returncode == 14 and "--as IDENTITY" in unanchored.stderr
    cli("audit", "witness", "triage", "--as", "w1")
    report = json.loads(cli("audit", "verify", "triage", "--json").stdout)
    assert report["ok"] and report["anchors"] == 1 and report["size"] == 300
    assert report["cosigned_by"] == ["neuroledger.local/witness/w1"]
    # The bundle of the anchored (and now cosigned) checkpoint keeps the cosignature.
    cosigned = cli("audit", "prove", "triage", "42").stdout
    assert "neuroledger.local/witness/w1" in cosigned
    assert (
        json.loads(cli("audit", "verify-bundle", "/dev/stdin", "--json", stdin=cosigned).stdout)[
            "index"
        ]
        == 42
    )
    csv_text = cli("audit", "export", "triage", "--ai-act", "-f", "csv").stdout
    assert csv_text.splitlines()[0].startswith("index,system,model_digest,event_type")
    assert len(csv_text.splitlines()) == 301

    # one byte of one tile changed on disk: verify fails and names the file
    home = Path(cli.env["NEUROLEDGER_HOME"])
    tile = home / "audit" / "triage" / "log" / "tile" / "0" / "000"
    raw = bytearray(tile.read_bytes())
    raw[1000] ^= 0x40
    tile.write_bytes(bytes(raw))
    failed = cli("audit", "verify", "triage", ok=False)
    assert failed.returncode == 14
    assert "tile/0/000: hash 31 (entry 31)" in failed.stdout


def test_tile_server_serves_what_a_tile_client_needs(tmp_path: Path) -> None:
    signer = NoteSigner.generate("log.example/served")
    log = TileLog.create(tmp_path / "log", origin=signer.name, signer=signer)
    log.append([f"e{i}".encode() for i in range(600)])
    log.checkpoint()
    server = make_server(tmp_path / "log")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/checkpoint") as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            cp = open_checkpoint(r.read().decode(), signer.verifier)
        leaves = b""
        for path in (tile_path(0, 0), tile_path(0, 1), tile_path(0, 2, width=88)):
            with urllib.request.urlopen(f"{base}/{path}") as r:
                assert "immutable" in r.headers["Cache-Control"]
                leaves += r.read()
        assert leaves[32 * 77 : 32 * 78] == leaf_hash(b"e77")
        verify_inclusion(leaf_hash(b"e77"), 77, cp.size, log.inclusion_proof(77), cp.root)
        for hidden in ("/.neuroledger-log.json", "/tile/", "/.checkpoints/600", "/tile/../.lock"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + hidden)
            assert err.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(base + "/checkpoint", data=b"x", method="POST")
            )
        assert err.value.code == 501
    finally:
        server.shutdown()
        server.server_close()
