// In-browser check of a federated round's record (the round document the task's owner
// registers, kind federated-round): the RFC 9162 Merkle root of its leaves `name:digest`
// (sorted by name, as the coordinator builds it) must be the commitments root the chain
// recorded for that round, read from the reader's RPC (the RoundRecorded event), else
// from the explorer's index.
import { onTextFile, concat, equal, hex, keccak256, rpc, sha256, show, unhex, utf8, word } from "./nlcrypto.js";

const RECORDED = "0x" + hex(keccak256(utf8("RoundRecorded(uint256,uint32,bytes32,bytes32,uint256)")));
const MAX_DOCUMENT = 1 << 20;

/** RFC 9162 Merkle tree hash of leaf hashes. */
async function treeHash(leaves) {
  if (leaves.length === 1) return leaves[0];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256(concat(Uint8Array.of(1), await treeHash(leaves.slice(0, k)), await treeHash(leaves.slice(k))));
}

export async function commitmentsRoot(updates) {
  const names = Object.keys(updates).sort();
  if (!names.length) throw new Error("the round has no update");
  const leaves = [];
  for (const name of names) leaves.push(await sha256(concat(Uint8Array.of(0), utf8(`${name}:${updates[name]}`))));
  return hex(await treeHash(leaves));
}

async function recordedOnChain(url, section, doc) {
  const chain = parseInt(await rpc(url, "eth_chainId", []), 16);
  if (chain !== Number(doc.chain)) throw new Error(`the round is on chain ${doc.chain}, but ${url} serves chain ${chain}`);
  const logs = await rpc(url, "eth_getLogs", [{
    address: section.dataset.contract, fromBlock: "0x0", toBlock: "latest",
    topics: [RECORDED, "0x" + hex(word(BigInt(doc.task).toString(16))), "0x" + hex(word(Number(doc.round).toString(16)))],
  }]);
  if (!logs.length) throw new Error(`the chain recorded no round ${doc.round} of task ${doc.task}`);
  const data = logs[logs.length - 1].data.slice(2);
  return { root: data.slice(0, 64), aggregate: data.slice(64, 128), block: parseInt(logs[logs.length - 1].blockNumber, 16) };
}

async function check(section, text) {
  const result = section.querySelector(".result");
  show(result, "working", "checking…");
  try {
    if (text.length > MAX_DOCUMENT) throw new Error("a round document is a few kilobytes; this file is not one");
    const doc = JSON.parse(text);
    if (doc.type !== "https://neuroledger.dev/federated-round/v1") throw new Error("not a federated round document");
    if (String(doc.task) !== section.dataset.task) throw new Error(`the document is for task ${doc.task}, not this task`);
    if (String(doc.contract).toLowerCase() !== section.dataset.contract.toLowerCase()) {
      throw new Error("the document names another FederatedTask contract");
    }
    const root = await commitmentsRoot(doc.updates || {});
    if (root !== String(doc.commitmentsRoot)) {
      throw new Error(`the document's updates hash to root ${root.slice(0, 16)}…, not the ${String(doc.commitmentsRoot).slice(0, 16)}… it claims: an update was changed`);
    }
    const url = section.querySelector(".rpc").value.trim();
    let recorded, where;
    if (url) {
      const found = await recordedOnChain(url, section, doc);
      recorded = found.root;
      where = `recorded on chain in block ${found.block} (read from ${url})`;
      if (found.aggregate !== String(doc.aggregateDigest)) throw new Error("the chain recorded another aggregate digest for this round");
    } else {
      recorded = (JSON.parse(section.dataset.roots)[String(doc.round)] || "").replace(/^0x/, "");
      where = "as this explorer's index recorded it (give an RPC URL to ask the chain itself)";
    }
    if (!equal(unhex(recorded || "00"), unhex(root))) {
      throw new Error(`round ${doc.round}'s ${Object.keys(doc.updates).length} updates hash to ${root.slice(0, 16)}…, but the chain recorded ${recorded.slice(0, 16) || "nothing"}…`);
    }
    show(result, "pass", `round ${doc.round}: the ${Object.keys(doc.updates).length} updates hash to commitments root ${root.slice(0, 16)}…, ${where}.`);
  } catch (err) {
    show(result, "fail", err.message);
  }
}

onTextFile("verify-round", "verify-round-file", check);
