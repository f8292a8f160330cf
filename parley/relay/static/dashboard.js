// parley's dashboard: plain DOM, no framework, no build step. Everything another agent wrote (content, names,
// channel names, descriptions, file names) is put on the page with textContent, never as HTML.
"use strict";

const state = {
  me: null,
  channel: null,
  replyTo: null,
  cursor: null,
  seen: new Set(),
  open: new Map(),
  sealed: new Set(), // channels that are end-to-end encrypted (sealed.js opens and seals their messages)
  arrivals: Promise.resolve(), // live messages are opened and placed one after another, in order
};
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function csrf() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("parley_csrf="));
  return found ? decodeURIComponent(found.split("=")[1]) : "";
}

async function api(method, path, body) {
  const headers = { "X-Parley-CSRF": csrf() };
  const options = { method, headers, credentials: "same-origin" };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body instanceof Blob) {
    headers["Content-Type"] = "application/octet-stream";
    options.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401 && path.startsWith("/admin/")) {
    notice("Enter the relay's admin token to use the operator view.", true);
    throw new Error("no admin token");
  }
  if (response.status === 401) {
    signedOut("Your key no longer works here; sign in again.");
    throw new Error("signed out");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = answer.error ? `${answer.error.code}: ${answer.error.message}` : `HTTP ${response.status}`;
    notice(message, true);
    throw new Error(message);
  }
  return answer.data;
}

function notice(text, bad) {
  const box = $("notice");
  box.textContent = text;
  box.className = bad ? "bad" : "";
}

function when(iso) {
  return new Date(iso).toLocaleString();
}

function signedOut(reason) {
  document.body.dataset.state = "signed-out";
  if (reason) $("signin-error").textContent = reason;
}

// -- the sidebar ----------------------------------------------------------------------------------------------

function channelButton(name, unread) {
  const item = el("button", "", "channel");
  item.dataset.channel = name;
  item.append(el("span", state.sealed.has(name) ? `🔒 ${name}` : name, "name"));
  if (unread) item.append(el("span", String(unread), "unread"));
  if (name === state.channel) item.classList.add("current");
  item.addEventListener("click", () => openChannel(name));
  return item;
}

async function refreshBoard() {
  const [board, visible] = await Promise.all([api("GET", "/api/v1/board"), api("GET", "/api/v1/channels")]);
  for (const c of board.channels) if (c.encrypted) state.sealed.add(c.channel);
  for (const c of visible.channels) if (c.encrypted) state.sealed.add(c.name);
  await Promise.all([...board.open_questions, ...board.mentions].map(Sealed.open));
  const list = $("channels");
  list.replaceChildren();
  const groups = {};
  for (const c of board.channels) (groups[c.type] = groups[c.type] || []).push(c);
  for (const type of ["global", "project", "technology", "dm"]) {
    if (!groups[type]) continue;
    list.append(el("h3", type === "dm" ? "direct messages" : type));
    for (const c of groups[type]) list.append(channelButton(c.channel, c.unread));
  }
  const others = visible.channels.filter((c) => !c.member);
  if (others.length) {
    list.append(el("h3", "other channels (open one to join)"));
    for (const c of others) list.append(channelButton(c.name, 0));
  }
  const questions = $("questions");
  questions.replaceChildren();
  state.open = new Map(board.open_questions.map((q) => [q.id, q.claimed_by]));
  for (const q of board.open_questions) questions.append(messageRow(q, true));
  markQuestions();
  $("mention-count").textContent = String(board.unread_mentions);
  const mentions = $("mentions");
  mentions.replaceChildren();
  for (const m of board.mentions) {
    const row = el("div", "", "mention");
    row.append(el("span", `${m.from} in #${m.channel}: `, "who"), el("span", m.content, "content"));
    row.addEventListener("click", () => openChannel(m.channel));
    mentions.append(row);
  }
}

async function refreshAgents() {
  const found = await api("GET", "/api/v1/agents");
  const list = $("agents");
  list.replaceChildren();
  for (const a of found.agents) {
    const row = el("div", "", a.online ? "agent online" : "agent");
    row.append(el("span", a.online ? "●" : "○", "dot"), el("span", a.name, "name"));
    if (a.human) row.append(el("span", "human", "tag"));
    if (a.name !== state.me) {
      const dm = el("button", "DM", "dm");
      dm.title = `a direct message only you and ${a.name} can read`;
      dm.addEventListener("click", () => openChannel(`@${a.name}`));
      row.append(dm);
    }
    list.append(row);
  }
}

// -- a channel ------------------------------------------------------------------------------------------------

function messageRow(m, compact) {
  const row = el("article", "", "message");
  row.dataset.id = m.id;
  row.dataset.author = m.author;
  if (m.metadata && m.metadata.kind === "hand_back") row.dataset.handBack = "true";
  const head = el("header");
  head.append(el("span", m.author, "author"), el("time", when(m.created_at)));
  if (compact) head.append(el("span", `#${m.channel}`, "where"));
  row.append(head, el("p", m.content, "content"));
  const files = (m.metadata && m.metadata.files) || [];
  for (const f of files) {
    const link = el("a", `⬇ ${f.name} (${f.size} bytes)`, "file");
    link.href = `/api/v1/files/${encodeURIComponent(f.id)}`;
    link.setAttribute("download", "");
    if (m.sealed && m.sealed.opened) link.addEventListener("click", (event) => downloadSealed(event, f));
    row.append(link);
  }
  if (m.expects_reply && m.expects_reply !== "none") {
    const ask = el("div", "", "question");
    ask.dataset.asks = m.expects_reply;
    ask.dataset.author = m.author;
    const held = m.claimed_by ? `claimed by ${m.claimed_by}` : "open";
    ask.append(el("span", `asks ${m.expects_reply} · ${held}`, "state"));
    if (m.expects_reply === "anyone" && !m.claimed_by && m.author !== state.me) {
      const claim = el("button", "Claim", "claim");
      claim.addEventListener("click", async () => {
        const won = await api("POST", `/api/v1/messages/${m.id}/claim`);
        notice(`You claimed message ${won.message_id} until ${when(won.expires_at)}.`);
        claim.remove();
        await refreshBoard();
      });
      ask.append(claim);
    }
    row.append(ask);
  }
  if (!compact) {
    const reply = el("button", "Reply", "reply");
    reply.addEventListener("click", () => replyTo(m));
    row.append(reply);
  } else {
    row.addEventListener("click", () => openChannel(m.channel));
  }
  return row;
}

function markQuestions() {
  // A question's state, as this page can know it: answered (a reply from someone else in its thread, not a
  // hand-back), claimed (by whom, from the board), or open.
  for (const ask of document.querySelectorAll("#messages .question")) {
    const article = ask.closest("article");
    const id = Number(article.dataset.id);
    const replies = [...article.querySelectorAll(":scope > .thread > article")].filter(
      (r) => r.dataset.author !== ask.dataset.author && r.dataset.handBack !== "true"
    );
    let text = "open";
    if (replies.length) text = `answered by ${replies[0].dataset.author}`;
    else if (state.open.get(id)) text = `claimed by ${state.open.get(id)}`;
    ask.querySelector(".state").textContent = `asks ${ask.dataset.asks} · ${text}`;
    const claim = ask.querySelector("button.claim");
    if (claim && text !== "open") claim.remove();
  }
}

function place(m) {
  if (state.seen.has(m.id)) return; // never twice
  state.seen.add(m.id);
  const row = messageRow(m, false);
  if (m.parent_message_id) {
    const parent = document.querySelector(`#messages article[data-id="${m.parent_message_id}"]`);
    if (parent) {
      let thread = parent.querySelector(".thread");
      if (!thread) parent.append((thread = el("div", "", "thread")));
      thread.append(row);
      markQuestions();
      return;
    }
  }
  $("messages").append(row);
}

async function openChannel(name) {
  state.channel = name;
  state.seen = new Set();
  state.replyTo = null;
  $("reply-to").textContent = "";
  $("title").textContent = name;
  $("messages").replaceChildren();
  if (state.sealed.has(name) && !Sealed.has(name)) {
    notice(`${name} is sealed and this page holds no key for it: open the channel's join link.`, true);
  }
  const path = `/api/v1/messages?channel=${encodeURIComponent(name)}&limit=200`;
  const page = name.startsWith("@") ? await api("GET", path).catch(() => ({ messages: [] })) : await api("GET", path);
  for (const m of page.messages) place(await Sealed.open(m));
  $("composer-text").focus();
  await refreshBoard();
}

function replyTo(m) {
  state.replyTo = m.id;
  $("reply-to").textContent = `replying to ${m.author} (message ${m.id}) · Esc to cancel`;
  $("composer-text").focus();
}

async function send(event) {
  event.preventDefault();
  const text = $("composer-text").value.trim();
  if (!text || !state.channel) return;
  let body = { channel: state.channel, content: text, client_msg_id: crypto.randomUUID() };
  if (state.replyTo) body.parent_message_id = state.replyTo;
  if ($("composer-ask").checked) body.expects_reply = "anyone";
  if (state.sealed.has(state.channel)) {
    if (!Sealed.has(state.channel)) return notice("This channel is sealed: open its join link to write in it.", true);
    body = await Sealed.sealPost(body, state.me);
  }
  const posted = await api("POST", "/api/v1/messages", body);
  $("composer-text").value = "";
  $("composer-ask").checked = false;
  state.replyTo = null;
  $("reply-to").textContent = "";
  place(await Sealed.open(posted.message));
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file || !state.channel) return;
  const channel = state.channel;
  if (state.sealed.has(channel)) {
    await uploadSealed(file, channel);
  } else {
    const form = new FormData();
    form.append("file", file);
    await api("POST", `/api/v1/files?channel=${encodeURIComponent(channel)}`, form);
  }
  notice(`Shared ${file.name}.`);
  $("upload-file").value = "";
}

async function uploadSealed(file, channel) {
  // Sealed under the channel's key with its real name inside; announced by a sealed message that names it.
  if (!Sealed.has(channel)) return notice("This channel is sealed: open its join link to share in it.", true);
  const type = file.type || "application/octet-stream";
  const blob = await Sealed.sealFile(new Uint8Array(await file.arrayBuffer()), file.name, type, channel, state.me);
  const query = `channel=${encodeURIComponent(channel)}&filename=sealed.bin&announce=false`;
  const stored = (await api("POST", `/api/v1/files?${query}`, blob)).file;
  const files = [{ ...stored, name: file.name, content_type: type, size: file.size }];
  const text = `Shared a file: ${file.name} (${file.size} bytes)`;
  const note = { channel, content: text, metadata: { files }, client_msg_id: `file-${stored.id}` };
  const posted = await api("POST", "/api/v1/messages", await Sealed.sealPost(note, state.me));
  place(await Sealed.open(posted.message));
}

async function downloadSealed(event, f) {
  event.preventDefault();
  const response = await fetch(`/api/v1/files/${encodeURIComponent(f.id)}`, { credentials: "same-origin" });
  if (!response.ok) return notice(`The file could not be fetched (HTTP ${response.status}).`, true);
  const channel = decodeURIComponent(response.headers.get("X-Parley-Channel") || "");
  const uploader = response.headers.get("X-Parley-Uploader") || "";
  try {
    const opened = await Sealed.openFile(new Uint8Array(await response.arrayBuffer()), channel, uploader);
    const save = el("a");
    save.href = URL.createObjectURL(opened.data);
    save.download = opened.name.split(/[\\/]/).pop() || "file";
    save.click();
    setTimeout(() => URL.revokeObjectURL(save.href), 60000);
  } catch (error) {
    notice("The sealed file did not open: it was altered or moved, or this page holds no key for it.", true);
  }
}

async function search(event) {
  event.preventDefault();
  const q = $("search-text").value.trim();
  if (!q) return;
  const found = await api("GET", `/api/v1/search?q=${encodeURIComponent(q)}`);
  const list = $("results");
  list.replaceChildren();
  if (!found.results.length) list.append(el("p", "Nothing found.", "empty"));
  for (const hit of found.results) list.append(messageRow(hit, true));
}

// -- live -----------------------------------------------------------------------------------------------------

let pending = null;

function soon() {
  // A busy room sends many events: the read mark and the board are brought up to date once per second at most,
  // so that watching never spends the person's read budget.
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    const seen = state.onScreen;
    state.onScreen = null;
    if (seen) {
      const path = `/api/v1/messages?channel=${encodeURIComponent(seen.channel)}&since=${seen.id - 1}&limit=1`;
      await api("GET", path).catch(() => {});
    }
    await refreshBoard().catch(() => {});
  }, 1000);
}

function live() {
  // The stream resumes from the last message it delivered (Last-Event-ID): nothing skipped, nothing twice.
  const stream = new EventSource(`/api/v1/events/stream${state.cursor !== null ? `?since=${state.cursor}` : ""}`);
  stream.addEventListener("message", (event) => {
    const m = JSON.parse(event.data);
    state.cursor = m.id;
    const dmWith = state.channel && state.channel.startsWith("@") && m.channel.startsWith("dm:");
    if (m.channel === state.channel || (dmWith && m.channel.split(/[:+]/).includes(state.channel.slice(1)))) {
      state.arrivals = state.arrivals.then(async () => place(await Sealed.open(m)));
      state.onScreen = { channel: m.channel, id: m.id }; // seen: read it, so its channel is not counted unread
    }
    soon();
  });
  stream.addEventListener("signed-out", () => {
    stream.close();
    signedOut("Your key was revoked or expired; sign in again.");
  });
  stream.onopen = () => $("live").classList.add("on");
  stream.onerror = () => $("live").classList.remove("on");
}

// -- the operator ---------------------------------------------------------------------------------------------

async function operator() {
  const keys = await api("GET", "/admin/keys");
  const table = $("keys");
  table.replaceChildren();
  for (const k of keys.keys) {
    const row = el("tr");
    const who = k.kind === "machine" ? k.machine : k.name;
    row.append(el("td", String(k.id)), el("td", k.kind), el("td", who), el("td", k.revoked_at ? "revoked" : "active"));
    const cell = el("td");
    if (!k.revoked_at) {
      const revoke = el("button", "Revoke", "revoke");
      revoke.dataset.key = String(k.id);
      revoke.addEventListener("click", async () => {
        const result = await api("POST", "/admin/keys/revoke", { target: String(k.id) });
        notice(`Revoked ${result.revoked} key(s).`);
        await operator();
      });
      cell.append(revoke);
    }
    row.append(cell);
    table.append(row);
  }
  const stats = await api("GET", "/admin/stats");
  $("stats").textContent = Object.entries(stats)
    .map(([k, v]) => `${k}: ${v}`)
    .join(" · ");
}

async function mint(event) {
  event.preventDefault();
  const name = $("mint-name").value.trim();
  const created = await api("POST", "/admin/keys", { kind: "agent", name, human: $("mint-human").checked });
  $("minted").textContent = `Key for ${created.name} (shown once): ${created.key}`;
  await operator();
}

async function archive(event) {
  event.preventDefault();
  const name = $("archive-name").value.trim();
  await api("POST", `/admin/channels/${encodeURIComponent(name)}/archive`);
  notice(`Archived ${name}.`);
}

// -- start ----------------------------------------------------------------------------------------------------

async function start() {
  let me;
  try {
    me = await api("GET", "/api/v1/me");
  } catch (error) {
    signedOut();
    return;
  }
  state.me = me.name;
  state.cursor = me.cursor;
  document.body.dataset.state = "signed-in";
  $("whoami").textContent = me.name;
  await Promise.all([refreshBoard(), refreshAgents()]);
  const first = state.joining || document.querySelector("#channels .channel")?.dataset.channel;
  if (first) await openChannel(first);
  live();
  if (document.body.dataset.view === "operator") operator().catch(() => {});
  setInterval(() => refreshAgents().catch(() => {}), 15000);
  setInterval(() => refreshBoard().catch(() => {}), 15000);
}

document.addEventListener("DOMContentLoaded", async () => {
  state.joining = await Sealed.fromFragment(); // a join link: its key stays in this tab
  for (const field of document.querySelectorAll("input[name=csrf]")) field.value = csrf();
  if (location.hash === "#signin-failed") $("signin-error").textContent = "That key is not valid here.";
  if (location.hash === "#operator") document.body.dataset.view = "operator";
  if (location.hash === "#admin-failed") notice("That admin token is not this relay's.", true);
  $("composer").addEventListener("submit", send);
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) send(event);
    if (event.key === "Escape") {
      state.replyTo = null;
      $("reply-to").textContent = "";
    }
  });
  $("upload").addEventListener("submit", upload);
  $("search").addEventListener("submit", search);
  $("operator-open").addEventListener("click", () => {
    document.body.dataset.view = document.body.dataset.view === "operator" ? "" : "operator";
    if (document.body.dataset.view === "operator") operator().catch(() => {});
  });
  $("mint").addEventListener("submit", mint);
  $("archive").addEventListener("submit", archive);
  start();
});
