// Sealed channels in the browser (WebCrypto): the same envelope and file formats as parley.sealed in Python.
// A channel's key arrives in a join link's fragment (#channel=...&k=...), which the browser never sends to the
// relay; it is kept in this tab's sessionStorage only, and the fragment is wiped from the address bar.
"use strict";

const Sealed = (() => {
  const STORE = "parley.sealed.keys";
  const VERSION = 1;
  const CHUNK = 65536;
  const MAGIC = [0x50, 0x45, 0x32, 0x46]; // "PE2F"
  const encoder = new TextEncoder();
  const seenNonces = new Map(); // channel -> Map(nonce -> message id): a copy under another id is a replay

  const b64 = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64 = (text) => {
    const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  };

  const keys = () => JSON.parse(sessionStorage.getItem(STORE) || "{}");

  async function keyId(raw) {
    const mac = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return b64((await crypto.subtle.sign("HMAC", mac, encoder.encode("parley key id"))).slice(0, 9));
  }

  async function remember(channel, raw) {
    const held = keys();
    const kid = await keyId(raw);
    const entry = held[channel] || { keys: {} };
    entry.keys[kid] = b64(raw);
    entry.current = kid;
    held[channel] = entry;
    sessionStorage.setItem(STORE, JSON.stringify(held));
    return kid;
  }

  async function fromFragment() {
    // A join link: keep its key for this tab, then take it out of the address bar and history.
    const params = new URLSearchParams(location.hash.slice(1));
    const channel = params.get("channel");
    const key = params.get("k") || "";
    if (!channel || !/^[A-Za-z0-9_-]{43}$/.test(key)) return null;
    history.replaceState(null, "", location.pathname + location.search);
    const held = keys()[channel];
    const raw = unb64(key);
    if (held && !held.keys[await keyId(raw)]) {
      // A link that would replace the key this tab holds could be forged: the person confirms a rotation.
      const question = `This link carries a different key for ${channel} than this page holds. Take it (only if a member rotated the channel's key)?`;
      if (!window.confirm(question)) return channel;
    }
    await remember(channel, raw);
    return channel;
  }

  const has = (channel) => Boolean(keys()[channel]);

  function cipherKey(channel, kid) {
    const entry = keys()[channel];
    const raw = entry && entry.keys[kid];
    return raw ? crypto.subtle.importKey("raw", unb64(raw), "AES-GCM", false, ["encrypt", "decrypt"]) : null;
  }

  const associatedData = (kid, [channel, author, parent, cmid]) =>
    encoder.encode(["parley-e2e", String(VERSION), kid, channel, author, parent == null ? "" : String(parent), cmid || ""].join("\n"));

  async function open(m, sealedChannel) {
    // Replace a sealed message's envelope by its words, or by why they cannot be shown. Never throws.
    // A message without an envelope in a sealed channel, or with anything else in its place (a relay's
    // "opened: true"), was not sealed by a member: it is shown as not genuine, never as its author's words.
    const envelope = m.sealed;
    if (!envelope || !envelope.ciphertext) {
      if (envelope || sealedChannel || has(m.channel)) {
        m.content = "⚠ not genuine: a message without a sealed envelope in a sealed channel (no member sealed it)";
        m.metadata = {};
        m.sealed = { opened: false, error: "unsealed" };
      }
      return m;
    }
    const author = m.author || m.from;
    const id = m.message_id !== undefined && m.mention_id !== undefined ? m.message_id : m.id;
    const bound = [m.channel, author, m.parent_message_id ?? null, m.client_msg_id ?? null];
    m.metadata = {};
    const key = await cipherKey(m.channel, envelope.kid);
    if (!key) {
      m.content = "🔒 sealed: this page holds no key for this channel (open the channel's join link)";
      m.sealed = { kid: envelope.kid, opened: false, error: "missing_key" };
      return m;
    }
    try {
      const iv = unb64(envelope.nonce);
      const opened = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: associatedData(envelope.kid, bound) },
        key,
        unb64(envelope.ciphertext)
      );
      const seen = seenNonces.get(m.channel) || new Map();
      seenNonces.set(m.channel, seen);
      if (seen.has(envelope.nonce) && seen.get(envelope.nonce) !== id) throw new Error("replayed");
      seen.set(envelope.nonce, id);
      const words = JSON.parse(new TextDecoder().decode(opened));
      m.content = words.content;
      m.metadata = words.metadata || {};
      m.sealed = { kid: envelope.kid, opened: true };
    } catch (error) {
      const why = error.message === "replayed" ? "replayed" : "tampered";
      m.content = `⚠ sealed message not opened (${why}): it was altered, moved or replayed after it was sealed`;
      m.sealed = { kid: envelope.kid, opened: false, error: why };
    }
    return m;
  }

  const mentionsIn = (text, me) => [
    ...new Set([...text.matchAll(/(?<![\w.@-])@([a-z0-9][a-z0-9-]{1,99})(?![a-z0-9-])/gi)].map((x) => x[1].toLowerCase())),
  ].filter((name) => name !== me);

  async function sealPost(body, me) {
    // A post body with its content (and metadata) sealed under the channel's current key.
    const entry = keys()[body.channel];
    const key = await cipherKey(body.channel, entry.current);
    const bound = [body.channel, me, body.parent_message_id ?? null, body.client_msg_id ?? null];
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const plaintext = encoder.encode(JSON.stringify({ b: bound, content: body.content, metadata: body.metadata || null }));
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: associatedData(entry.current, bound) },
      key,
      plaintext
    );
    const out = { ...body, mentions: mentionsIn(body.content, me) };
    delete out.content;
    delete out.metadata;
    out.sealed = { v: VERSION, kid: entry.current, nonce: b64(iv), ciphertext: b64(sealed) };
    return out;
  }

  const chunkData = (kid, tag, channel, uploader, index, last) =>
    encoder.encode(["parley-e2e-file", String(VERSION), kid, tag, channel, uploader, String(index), last ? "1" : "0"].join("\n"));

  async function sealFile(bytes, name, type, channel, me) {
    const entry = keys()[channel];
    const kid = entry.current;
    const key = await cipherKey(channel, kid);
    const tag = b64(crypto.getRandomValues(new Uint8Array(16)));
    const header = encoder.encode(JSON.stringify({ kid, file: tag }));
    const pieces = [encoder.encode(JSON.stringify({ name, content_type: type }))];
    for (let at = 0; at < bytes.length; at += CHUNK) pieces.push(bytes.slice(at, at + CHUNK));
    const parts = [new Uint8Array([...MAGIC, VERSION, header.length >> 8, header.length & 255]), header];
    for (const [index, piece] of pieces.entries()) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const additionalData = chunkData(kid, tag, channel, me, index, index === pieces.length - 1);
      const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData }, key, piece));
      const size = new Uint8Array(4);
      new DataView(size.buffer).setUint32(0, sealed.length);
      parts.push(iv, size, sealed);
    }
    return new Blob(parts, { type: "application/octet-stream" });
  }

  async function openFile(bytes, channel, uploader) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const length = view.getUint16(5);
    const header = JSON.parse(new TextDecoder().decode(bytes.slice(7, 7 + length)));
    const key = await cipherKey(channel, header.kid);
    if (!key) throw new Error("this page holds no key for the file's channel");
    const chunks = [];
    for (let at = 7 + length; at < bytes.length; ) {
      const size = view.getUint32(at + 12);
      chunks.push([bytes.slice(at, at + 12), bytes.slice(at + 16, at + 16 + size)]);
      at += 16 + size;
    }
    const plain = [];
    for (const [index, [iv, sealed]] of chunks.entries()) {
      const additionalData = chunkData(header.kid, header.file, channel, uploader, index, index === chunks.length - 1);
      plain.push(new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData }, key, sealed)));
    }
    const head = JSON.parse(new TextDecoder().decode(plain[0]));
    return { name: head.name, type: head.content_type, data: new Blob(plain.slice(1), { type: head.content_type }) };
  }

  return { fromFragment, has, open, sealPost, sealFile, openFile };
})();
