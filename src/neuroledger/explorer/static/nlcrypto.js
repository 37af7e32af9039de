// The hashing, encoding and chain reading the explorer's in-browser checks share.
// SHA-256 and Ed25519 come from the browser (WebCrypto); Keccak-256, which WebCrypto
// lacks and Ethereum uses, is implemented here (Keccak-f[1600], original padding).

const RC = [
  0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
  0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
  0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
  0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
  0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
  0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
];
// rotation of lane x + 5y
const ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39,
  41, 45, 15, 21, 8, 18, 2, 61, 56, 14];
const M64 = (1n << 64n) - 1n;
const rotl = (v, n) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & M64);

function keccakF(a) {
  const c = new Array(5), b = new Array(25);
  for (let round = 0; round < 24; round++) {
    for (let x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) a[x + y] ^= d;
    }
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], ROT[x + 5 * y]);
    }
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) a[x + y] = b[x + y] ^ (~b[((x + 1) % 5) + y] & M64 & b[((x + 2) % 5) + y]);
    }
    a[0] ^= RC[round];
  }
}

/** Keccak-256 (as Ethereum's keccak256) of bytes; returns 32 bytes. */
export function keccak256(bytes) {
  const rate = 136;
  const padded = new Uint8Array(Math.ceil((bytes.length + 1) / rate) * rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  const a = new Array(25).fill(0n);
  const view = new DataView(padded.buffer);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      a[i] ^= (BigInt(view.getUint32(off + 8 * i + 4, true)) << 32n) | BigInt(view.getUint32(off + 8 * i, true));
    }
    keccakF(a);
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) {
    ov.setUint32(8 * i, Number(a[i] & 0xffffffffn), true);
    ov.setUint32(8 * i + 4, Number(a[i] >> 32n), true);
  }
  return out;
}

export const utf8 = (text) => new TextEncoder().encode(text);
export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Bytes of a hex string, with or without 0x; throws on anything else. */
export function unhex(text) {
  const h = text.startsWith("0x") ? text.slice(2) : text;
  if (h.length % 2 || /[^0-9a-fA-F]/.test(h)) throw new Error(`not hex: ${text.slice(0, 20)}`);
  return Uint8Array.from(h.match(/../g) || [], (p) => parseInt(p, 16));
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** An address or bytes32 as one 32-byte ABI word. */
export function word(hexValue) {
  const h = hexValue.replace(/^0x/, "");
  const b = unhex(h.length % 2 ? "0" + h : h);
  if (b.length > 32) throw new Error("value longer than a word");
  return concat(new Uint8Array(32 - b.length), b);
}

/** The 4-byte selector of a function signature such as "assetOf(bytes32)". */
export const selector = (signature) => keccak256(utf8(signature)).slice(0, 4);

/** One JSON-RPC call to a URL the reader gave (http or https); returns its result. */
export async function rpc(url, method, params) {
  const target = new URL(url);
  if (target.protocol !== "http:" && target.protocol !== "https:") throw new Error("the RPC URL must be http or https");
  const reply = await fetch(target, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await reply.json();
  if (body.error) throw new Error(`the chain refused ${method}: ${body.error.message}`);
  return body.result;
}

/** eth_call against a JSON-RPC URL the reader gave; returns the result bytes. */
export async function ethCall(url, to, data) {
  return unhex(await rpc(url, "eth_call", [{ to, data: "0x" + hex(data) }, "latest"]));
}

/** Bytes of standard base64; throws on anything else. */
export function unbase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) throw new Error("not base64");
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Show a check's outcome in element `el`: "pass", "fail" or "working". */
export function show(el, state, text) {
  el.dataset.state = state;
  el.textContent = (state === "pass" ? "✔ Pass: " : state === "fail" ? "✘ Fail: " : "") + text;
}

/** Run `check(section, text)` on the file given to `input` or dropped on `section`. */
export function onTextFile(sectionId, inputId, check) {
  const section = document.getElementById(sectionId);
  if (!section) return;
  const read = (file) => file && file.text().then((text) => check(section, text));
  section.querySelector(`#${inputId}`).addEventListener("change", (ev) => read(ev.target.files[0]));
  section.addEventListener("dragover", (ev) => ev.preventDefault());
  section.addEventListener("drop", (ev) => { ev.preventDefault(); read(ev.dataTransfer.files[0]); });
}
