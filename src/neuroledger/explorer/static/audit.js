// In-browser check of an audit entry from its proof bundle (c2sp.org/tlog-proof@v1, as
// `neuroledger audit prove` writes it), as `neuroledger audit verify-bundle` does:
//   1. the log's key (in the bundle) must be the one this page's log id names: the id is
//      SHA-256 of the verifier key string;
//   2. the checkpoint must carry a valid Ed25519 signature by that key (WebCrypto);
//   3. the entry's RFC 9162 inclusion proof must lead to the checkpoint's root;
//   4. the checkpoint must be the one anchored on chain: read from the reader's RPC (the
//      anchor transaction's Anchored event), else from the explorer's own index.
import { onTextFile, concat, equal, hex, keccak256, rpc, sha256, show, unbase64, utf8 } from "./nlcrypto.js";

const HEADER = "c2sp.org/tlog-proof@v1";
const ANCHORED = "0x" + hex(keccak256(utf8("Anchored(bytes32,address,uint64,bytes32,uint64)")));
const MAX_BUNDLE = 1 << 20;

function parseBundle(text) {
  const cut = text.indexOf("\n\n");
  if (cut < 0) throw new Error("malformed bundle: no blank line before the checkpoint");
  const lines = text.slice(0, cut).split("\n");
  if (lines[0] !== HEADER) throw new Error(`not a proof bundle: the first line must be ${HEADER}`);
  if (lines.length < 3 || !lines[1].startsWith("extra ")) throw new Error("malformed bundle: no extra line");
  const extra = JSON.parse(new TextDecoder().decode(unbase64(lines[1].slice(6))));
  const index = /^index (0|[1-9][0-9]*)$/.exec(lines[2]);
  if (!index) throw new Error("malformed bundle: the third line must be 'index N'");
  return { extra, index: Number(index[1]), proof: lines.slice(3).map(unbase64), checkpoint: text.slice(cut + 2) };
}

async function parseVkey(vkey) {
  const parts = /^([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!parts) throw new Error("the bundle's key is not a verifier key (name+hexid+base64)");
  const raw = unbase64(parts[3]);
  if (raw.length !== 33 || raw[0] !== 0x01) throw new Error("the bundle's key is not an Ed25519 note key");
  const id = (await sha256(concat(utf8(parts[1] + "\n"), raw))).slice(0, 4);
  if (hex(id) !== parts[2]) throw new Error("the bundle's key ID does not match its key");
  return { name: parts[1], keyId: id, publicKey: raw.slice(1) };
}

/** The checkpoint's body once the key's signature on it verifies. */
async function openCheckpoint(encoded, key) {
  const cut = encoded.lastIndexOf("\n\n");
  if (cut < 0) throw new Error("malformed checkpoint: no blank line before the signatures");
  const text = encoded.slice(0, cut + 1);
  let verified = false;
  for (const line of encoded.slice(cut + 2).split("\n").filter(Boolean)) {
    const m = /^— (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error("malformed checkpoint: a signature line is not '— name base64'");
    const raw = unbase64(m[2]);
    if (m[1] !== key.name || !equal(raw.slice(0, 4), key.keyId)) continue;  // another key (a witness)
    const publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    if (!(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, raw.slice(4), utf8(text)))) {
      throw new Error(`the checkpoint's signature by ${key.name} does not verify: the checkpoint was changed`);
    }
    verified = true;
  }
  if (!verified) throw new Error(`the checkpoint carries no signature by the log's key ${key.name}`);
  const [origin, size, root] = text.split("\n");
  if (origin !== key.name) throw new Error(`the checkpoint is for log ${origin}, not ${key.name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error("malformed checkpoint: bad tree size");
  return { origin, size: Number(size), root: unbase64(root) };
}

const node = async (l, r) => sha256(concat(Uint8Array.of(1), l, r));

/** RFC 9162 §2.1.3.2: does `proof` lead from `leaf` at `index` to `root` of a tree of `size`? */
async function includes(leaf, index, size, proof, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await node(p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await node(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

async function anchoredOnChain(url, extra, logId) {
  const chain = parseInt(await rpc(url, "eth_chainId", []), 16);
  if (chain !== Number(extra.anchor.chain_id)) {
    throw new Error(`the anchor is on chain ${extra.anchor.chain_id}, but ${url} serves chain ${chain}`);
  }
  const receipt = await rpc(url, "eth_getTransactionReceipt", [extra.anchor.tx]);
  if (!receipt) throw new Error(`the chain has no transaction ${extra.anchor.tx}`);
  for (const log of receipt.logs) {
    if (log.address.toLowerCase() === String(extra.anchor.contract).toLowerCase()
        && log.topics[0] === ANCHORED && log.topics[1].toLowerCase() === logId) {
      const data = log.data.slice(2);
      return { size: parseInt(data.slice(0, 64), 16), root: data.slice(64, 128), block: parseInt(receipt.blockNumber, 16) };
    }
  }
  throw new Error(`transaction ${extra.anchor.tx} anchors no checkpoint of this log`);
}

async function check(section, text) {
  const result = section.querySelector(".result");
  show(result, "working", "checking…");
  try {
    if (text.length > MAX_BUNDLE) throw new Error("a bundle is a few kilobytes; this file is not one");
    const bundle = parseBundle(text);
    const key = await parseVkey(String(bundle.extra.vkey));
    const logId = "0x" + hex(await sha256(utf8(bundle.extra.vkey)));
    if (logId !== section.dataset.log.toLowerCase()) {
      throw new Error(`the bundle is for log ${logId}, not this page's log`);
    }
    const checkpoint = await openCheckpoint(bundle.checkpoint, key);
    const entry = unbase64(String(bundle.extra.entry));
    const leaf = await sha256(concat(Uint8Array.of(0), entry));
    if (!(await includes(leaf, bundle.index, checkpoint.size, bundle.proof, checkpoint.root))) {
      throw new Error(`entry ${bundle.index} is not in the signed checkpoint: its inclusion proof does not lead to the root (the entry or the proof was changed)`);
    }
    const url = section.querySelector(".rpc").value.trim();
    let where;
    if (url) {
      const anchor = await anchoredOnChain(url, bundle.extra, logId);
      if (anchor.size !== checkpoint.size || anchor.root !== hex(checkpoint.root)) {
        throw new Error(`the chain anchored size ${anchor.size} with another root: the checkpoint is not the anchored one`);
      }
      where = `anchored on chain in block ${anchor.block} (read from ${url})`;
    } else {
      const anchors = JSON.parse(section.dataset.anchors);
      if (!anchors.some(([size, root]) => size === checkpoint.size && root.replace(/^0x/, "") === hex(checkpoint.root))) {
        throw new Error(`no anchor of size ${checkpoint.size} with this root is indexed for this log`);
      }
      where = "anchored, by this explorer's index (give an RPC URL to ask the chain itself)";
    }
    section.querySelector(".entry").textContent = new TextDecoder().decode(entry);
    show(result, "pass", `entry ${bundle.index} of ${checkpoint.size} is in checkpoint ${hex(checkpoint.root).slice(0, 16)}…, signed by ${key.name}, ${where}.`);
  } catch (err) {
    show(result, "fail", err.message);
  }
}

onTextFile("verify-entry", "verify-bundle", check);
