"""`neuroledger asset …` as users run it: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_model
from tests.e2e.test_cli import cli  # noqa: F401 (fixture)

pytestmark = pytest.mark.anvil


def test_asset_lifecycle_and_verify_exit_codes(cli, tmp_path: Path) -> None:  # noqa: F811
    cli("identity", "create", "hospital-a", "--kind", "org")
    cli("identity", "create", "auditor", "--kind", "org")
    data = tmp_path / "cohort.csv"
    data.write_text("age,label\n40,1\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"description": "cohort 2025"}))
    d = json.loads(
        cli("asset", "register", str(data), "--kind", "dataset", "--as", "hospital-a",
            "--license", "CC-BY-4.0", "--meta", str(meta), "--json").stdout
    )  # fmt: skip
    code = tmp_path / "train.py"
    code.write_text("print('fit')\n")
    c = json.loads(
        cli("asset", "register", str(code), "-k", "code", "--as", "hospital-a", "--json").stdout
    )
    model = make_model(tmp_path)
    run = json.loads(
        cli("asset", "run", str(model), "--as", "hospital-a", "--input", d["id"][:8],
            "--input", c["id"], "--started", "2026-11-24T08:00:00Z",
            "--finished", "2026-11-24T09:30:00Z", "--param", "epochs=3", "--json").stdout
    )  # fmt: skip
    deploy = tmp_path / "deploy.json"
    deploy.write_text(json.dumps({"endpoint": "https://triage.example/v1"}))
    dep = json.loads(
        cli("asset", "register", str(deploy), "--document", "--kind", "deployment",
            "--as", "hospital-a", "--parent", run["model"], "--json").stdout
    )  # fmt: skip
    cli("asset", "attest", run["model"][:10], "--as", "auditor", "--claim", "accuracy=0.94")

    shown = json.loads(cli("asset", "show", run["model"][:10], "--json").stdout)
    assert shown["parents"] == [run["run"]]
    assert shown["attestations"][0]["attester"].startswith("did:ethr:")
    tree = cli("asset", "lineage", dep["id"][:10]).stdout
    for needle in ("deployment", "model", "training-run", "cohort.csv", "train.py"):
        assert needle in tree
    as_json = json.loads(cli("asset", "lineage", dep["id"], "--json").stdout)  # issue 13
    assert as_json == json.loads(cli("asset", "lineage", dep["id"], "-f", "json").stdout)
    prov_doc = json.loads(cli("asset", "lineage", dep["id"], "--format", "prov").stdout)
    assert "activity" in prov_doc and "used" in prov_doc
    events = [
        json.loads(x)
        for x in cli("asset", "lineage", dep["id"], "-f", "openlineage").stdout.splitlines()
    ]
    assert len(events) == 2
    assert cli("asset", "lineage", dep["id"], "-f", "dot").stdout.startswith("digraph")
    paths = json.loads(
        cli("asset", "lineage", dep["id"], "--path-to", d["id"][:8], "-f", "json").stdout
    )
    assert paths["paths"] == [[dep["id"], run["model"], run["run"], d["id"]]]
    down = json.loads(cli("asset", "lineage", d["id"], "--descendants", "-f", "json").stdout)
    assert set(down["nodes"]) == {d["id"], run["run"], run["model"], dep["id"]}

    ok = cli("asset", "verify", str(model), "--json")
    assert json.loads(ok.stdout)["status"] == "ok"
    (model / "shards" / "00.bin").write_bytes(b"\x01" * 5001)
    modified = cli("asset", "verify", str(model), ok=False)
    assert modified.returncode == 11
    assert "MODIFIED" in modified.stdout and "shards/00.bin" in modified.stdout
    other = tmp_path / "other.bin"
    other.write_bytes(b"never registered")
    assert cli("asset", "verify", str(other), ok=False).returncode == 10
    assert cli("asset", "verify", str(data), "--no-cache").returncode == 0
    denied = cli("asset", "revoke", d["id"], "--as", "auditor", "--reason", "x", ok=False)
    assert denied.returncode == 4 and "not the identity owner" in denied.stderr
    cli("asset", "revoke", d["id"], "--as", "hospital-a", "--reason", "consent withdrawn")
    assert cli("asset", "verify", str(data), ok=False).returncode == 12
    cli("asset", "deprecate", c["id"], "--as", "hospital-a", "--reason", "v2")
    assert cli("asset", "verify", str(code), ok=False).returncode == 13
    listed = json.loads(cli("asset", "list", "--json").stdout)
    assert [a["kind"] for a in listed] == ["dataset", "code", "training-run", "model", "deployment"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["asset", "register", "MISSING", "--kind", "dataset", "--as", "hospital-a"],
            9,
            "does not exist",
        ),
        (
            ["asset", "register", "DATA", "--kind", "weights", "--as", "hospital-a"],
            9,
            "unknown asset kind",
        ),
        (
            [
                "asset",
                "register",
                "DATA",
                "--kind",
                "dataset",
                "--as",
                "hospital-a",
                "--parent",
                "abcd1234",
            ],
            9,
            "no registered asset",
        ),
        (
            [
                "asset",
                "register",
                "DATA",
                "--kind",
                "dataset",
                "--as",
                "hospital-a",
                "--meta",
                "BIGMETA",
            ],
            9,
            "over the",
        ),
        (
            [
                "asset",
                "register",
                "DATA",
                "--kind",
                "dataset",
                "--as",
                "hospital-a",
                "--meta",
                "BADMETA",
            ],
            9,
            "not valid JSON",
        ),
        (
            [
                "asset",
                "register",
                "LOOPDIR",
                "--kind",
                "model",
                "--as",
                "hospital-a",
                "--allow-symlinks",
            ],
            9,
            "symlink loop",
        ),
        (
            ["asset", "register", "DATA", "--kind", "dataset", "--as", "nobody"],
            6,
            "no identity named",
        ),
        (["asset", "show", "zz"], 9, "not an asset id"),
    ],
)
def test_bad_input_one_line_error_nothing_written(cli, tmp_path: Path, args, code, message) -> None:  # noqa: F811
    cli("identity", "create", "hospital-a", "--kind", "org")
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    (tmp_path / "big.json").write_text(json.dumps({"x": "y" * 70_000}))
    (tmp_path / "bad.json").write_text("{not json")
    loop = tmp_path / "loopdir"
    loop.mkdir()
    (loop / "f").write_text("f")
    (loop / "self").symlink_to(loop / "self")
    replace = {"MISSING": str(tmp_path / "missing"), "DATA": str(data), "BIGMETA": str(tmp_path / "big.json"),
               "BADMETA": str(tmp_path / "bad.json"), "LOOPDIR": str(loop)}  # fmt: skip
    proc = cli(*[replace.get(a, a) for a in args], ok=False)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert json.loads(cli("asset", "list", "--json").stdout) == []
