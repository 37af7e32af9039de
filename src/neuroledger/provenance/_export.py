"""Lineage in the formats other tools read: PROV-JSON, OpenLineage, Graphviz DOT, a tree.

A training run becomes a PROV activity (it ``used`` its inputs; the model
``wasGeneratedBy`` it) and an OpenLineage run; every other parent link is a
``wasDerivedFrom``. Owners are PROV agents named by their DIDs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from rich.tree import Tree

from neuroledger import __version__
from neuroledger.identity import format_did
from neuroledger.provenance._views import Lineage

__all__ = ["PRODUCER", "to_dot", "to_openlineage", "to_prov_json", "to_tree"]

#: The producer URI OpenLineage events carry.
PRODUCER = f"https://github.com/neuroledger/neuroledger/tree/v{__version__}"
_OL_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
_RUN = "training-run"


def _qn(value: str) -> dict[str, str]:
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


def to_prov_json(lineage: Lineage, *, chain_id: int) -> dict[str, Any]:
    """W3C PROV-JSON of the lineage (loads with the ``prov`` package)."""
    run_times = lineage.run_times
    did_prefix = format_did(chain_id, "0x" + "00" * 20)[: -len("0x" + "00" * 20)]
    doc: dict[str, Any] = {
        "prefix": {
            "nl": "https://neuroledger.dev/ns/provenance#",
            "asset": "https://neuroledger.dev/asset/",
            "did": did_prefix,
        },
    }

    def add(section: str, key: str, value: dict[str, Any]) -> None:
        doc.setdefault(section, {})[key] = value

    counter = iter(range(1, 1 << 30))

    def relation(section: str, value: dict[str, Any]) -> None:
        add(section, f"_:{section}{next(counter)}", value)

    for asset_id, record in sorted(lineage.nodes.items()):
        attributes: dict[str, Any] = {
            "prov:type": _qn(f"nl:{record.kind}"),
            "nl:status": record.status,
            "nl:block": record.block,
            "nl:transaction": record.tx,
        }
        if record.license:
            attributes["nl:license"] = record.license
        if asset_id in lineage.names:
            attributes["prov:label"] = lineage.names[asset_id]
        agent = f"did:{record.owner}"
        add("agent", agent, {"prov:type": _qn("prov:Organization")})
        if record.kind == _RUN:
            if asset_id in run_times:
                attributes["prov:startTime"], attributes["prov:endTime"] = run_times[asset_id]
            add("activity", f"asset:{asset_id}", attributes)
            relation(
                "wasAssociatedWith", {"prov:activity": f"asset:{asset_id}", "prov:agent": agent}
            )
        else:
            add("entity", f"asset:{asset_id}", attributes)
            relation("wasAttributedTo", {"prov:entity": f"asset:{asset_id}", "prov:agent": agent})
    for child, parent in lineage.edges:
        child_kind, parent_kind = lineage.nodes[child].kind, lineage.nodes[parent].kind
        if child_kind == _RUN:
            relation("used", {"prov:activity": f"asset:{child}", "prov:entity": f"asset:{parent}"})
        elif parent_kind == _RUN:
            relation(
                "wasGeneratedBy",
                {"prov:entity": f"asset:{child}", "prov:activity": f"asset:{parent}"},
            )
        else:
            relation(
                "wasDerivedFrom",
                {"prov:generatedEntity": f"asset:{child}", "prov:usedEntity": f"asset:{parent}"},
            )
    return doc


def to_openlineage(lineage: Lineage, *, chain_id: int) -> list[dict[str, Any]]:
    """OpenLineage RunEvents: one per training run, one per other derivation."""
    run_times = lineage.run_times
    namespace = f"neuroledger://chain-{chain_id}"
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for child, parent in lineage.edges:
        parents.setdefault(child, []).append(parent)
        children.setdefault(parent, []).append(child)

    def dataset(asset_id: str) -> dict[str, Any]:
        return {"namespace": namespace, "name": f"{lineage.nodes[asset_id].kind}/{asset_id}"}

    events = []
    for asset_id in sorted(parents, key=lambda a: lineage.nodes[a].block):
        record = lineage.nodes[asset_id]
        if record.kind == _RUN:
            inputs = parents[asset_id]
            outputs = children.get(asset_id, [])
            job = f"{_RUN}/{asset_id}"
        elif all(lineage.nodes[p].kind == _RUN for p in parents[asset_id]):
            continue  # the run's event already names this output
        else:
            inputs = [p for p in parents[asset_id] if lineage.nodes[p].kind != _RUN]
            outputs = [asset_id]
            job = f"register-{record.kind}/{asset_id}"
        finished = run_times.get(asset_id, ("", ""))[1] or lineage.registered.get(asset_id, "")
        events.append(
            {
                "eventType": "COMPLETE",
                "eventTime": finished,
                "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{asset_id}"))},
                "job": {"namespace": namespace, "name": job},
                "inputs": [dataset(i) for i in inputs],
                "outputs": [dataset(o) for o in outputs],
                "producer": PRODUCER,
                "schemaURL": _OL_SCHEMA,
            }
        )
    return events


_COLORS = {"active": "black", "deprecated": "orange", "revoked": "red"}


def to_dot(lineage: Lineage) -> str:
    """Graphviz DOT of the lineage: boxes for assets, arrows from child to parent."""

    def quote(text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return '"' + escaped + '"'

    lines = ["digraph lineage {", "  rankdir=BT;", "  node [shape=box, fontname=Helvetica];"]
    for asset_id, record in sorted(lineage.nodes.items()):
        label = f"{record.kind}\n{lineage.names.get(asset_id, '')}\n{asset_id[:12]}"
        shape = "ellipse" if record.kind == _RUN else "box"
        style = ", penwidth=2" if asset_id == lineage.root else ""
        lines.append(
            f"  {quote(asset_id)} [label={quote(label)}, shape={shape}, "
            f"color={_COLORS.get(record.status, 'black')}{style}];"
        )
    for child, parent in lineage.edges:
        lines.append(f"  {quote(child)} -> {quote(parent)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_tree(lineage: Lineage, *, owner_name: Callable[[str], str] | None = None) -> Tree:
    """A rich Tree: the asset at the root, each node's parents (or children) below it."""
    links: dict[str, list[str]] = {}
    for child, parent in lineage.edges:
        if lineage.direction == "ancestors":
            links.setdefault(child, []).append(parent)
        else:
            links.setdefault(parent, []).append(child)

    def text(asset_id: str) -> str:
        record = lineage.nodes[asset_id]
        status = "" if record.status == "active" else f" [red]({record.status})[/red]"
        owner = owner_name(record.owner) if owner_name else record.owner
        return f"[bold]{lineage.label(asset_id)}[/bold]{status} [dim]owner {owner}[/dim]"

    tree = Tree(text(lineage.root))
    seen: set[str] = {lineage.root}

    def grow(node: Tree, asset_id: str) -> None:
        for nxt in links.get(asset_id, []):
            if nxt in seen:
                node.add(f"{lineage.label(nxt)} [dim](shown above)[/dim]")
                continue
            seen.add(nxt)
            grow(node.add(text(nxt)), nxt)

    grow(tree, lineage.root)
    return tree
