// In-browser check of a file or folder against an asset page: the files are hashed here
// into the asset's manifest digest (OpenSSF model-signing resources, RFC 8785 canonical
// JSON, SHA-256, as `neuroledger asset verify`), then keccak256(abi.encode(registrant,
// digest)) must be the asset's id. With an RPC URL the chain is asked that the id is
// registered, and with what status. Nothing leaves the browser but that one eth_call.
import { concat, ethCall, hex, keccak256, selector, sha256, show, unhex, utf8, word } from "./nlcrypto.js";

const IGNORED = new Set([".git", ".gitattributes", ".github", ".gitignore"]);
const STATUS = { 1: "active", 2: "deprecated", 3: "revoked" };

/** model-signing order: by path components (Python compares them by code point). */
function byParts(a, b) {
  const pa = a.name.split("/"), pb = b.name.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The asset digest of [{name, file}] entries (name "." for a single file). */
export async function manifestDigest(entries) {
  const resources = [];
  for (const { name, file } of entries) {
    resources.push({ name, digest: hex(await sha256(await file.arrayBuffer())) });
  }
  resources.sort(byParts);
  // RFC 8785 for these strings and keys is JSON.stringify with keys in code-point order.
  const canonical = JSON.stringify(resources.map((r) => ({ algorithm: "sha256", digest: r.digest, name: r.name })));
  return hex(await sha256(utf8(canonical)));
}

function folderEntries(files) {
  const out = [];
  for (const file of files) {
    const parts = (file.webkitRelativePath || file.name).split("/").slice(1);
    if (parts.length === 0 || IGNORED.has(parts[0])) continue;
    out.push({ name: parts.join("/"), file });
  }
  return out;
}

async function check(section, entries) {
  const result = section.querySelector(".result");
  show(result, "working", `hashing ${entries.length} file${entries.length === 1 ? "" : "s"}…`);
  try {
    const digest = await manifestDigest(entries);
    const id = "0x" + hex(keccak256(concat(word(section.dataset.registrant), unhex(digest))));
    if (id !== section.dataset.asset.toLowerCase()) {
      const recorded = (section.dataset.digest || "").replace(/^0x/, "");
      show(result, "fail", `the content's digest is ${digest}; this asset was registered with ${recorded || "another digest"}. Something differs (a changed byte, a missing or extra file).`);
      return;
    }
    const rpc = section.querySelector(".rpc").value.trim();
    if (!rpc) {
      show(result, "pass", `digest ${digest} with the registrant gives this asset's id. Give an RPC URL to ask the chain too.`);
      return;
    }
    const answer = await ethCall(rpc, section.dataset.registry, concat(selector("assetOf(bytes32)"), unhex(id)));
    const owner = hex(answer.slice(12, 32));
    const status = Number(answer[95]);
    if (/^0+$/.test(owner)) {
      show(result, "fail", `the content matches this page, but the chain at ${rpc} has no asset ${id}.`);
    } else {
      show(result, "pass", `digest ${digest} gives asset ${id}, which the chain records as ${STATUS[status] || status}, owned by 0x${owner}.`);
    }
  } catch (err) {
    show(result, "fail", `the check could not finish: ${err.message}`);
  }
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push({ name: prefix + entry.name, file: await new Promise((ok, no) => entry.file(ok, no)) });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
      if (!batch.length) break;
      for (const child of batch) {
        if (prefix === "" && IGNORED.has(child.name)) continue;
        await walk(child, prefix + entry.name + "/", out);
      }
    }
  }
}

const section = document.getElementById("verify-files");
if (section) {
  section.querySelector("#verify-file").addEventListener("change", (ev) => {
    if (ev.target.files.length) check(section, [{ name: ".", file: ev.target.files[0] }]);
  });
  section.querySelector("#verify-folder").addEventListener("change", (ev) => {
    if (ev.target.files.length) check(section, folderEntries(ev.target.files));
  });
  section.addEventListener("dragover", (ev) => ev.preventDefault());
  section.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    const entry = ev.dataTransfer.items[0]?.webkitGetAsEntry?.();
    if (entry && entry.isDirectory) {
      const out = [];
      await walk(entry, "", out);
      const strip = entry.name.length + 1;
      check(section, out.map(({ name, file }) => ({ name: name.slice(strip), file })));
    } else if (ev.dataTransfer.files.length) {
      check(section, [{ name: ".", file: ev.dataTransfer.files[0] }]);
    }
  });
}
