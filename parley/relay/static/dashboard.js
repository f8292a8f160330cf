// parley's dashboard: plain DOM, no framework, no build step. Everything another agent wrote (content, names,
// channel names, descriptions, file names) is put on the page with textContent, never as HTML.
//
// Credentials: the page holds a session (never the key) in this tab's sessionStorage, which no other origin,
// not even another port of this host, can read, and sends it as a header. There are no cookies, so nothing the
// browser sends by itself acts as the person. The operator view's session (made from the admin token, which
// is not kept) lives in memory only.
"use strict";

const SESSION = "parley.session";

const state = {
  me: null,
  channel: null,
  replyTo: null,
  cursor: null,
  seen: new Set(),
  open: new Map(),
  sealed: new Set(), // channels that are end-to-end encrypted (sealed.js opens and seals their messages)
  invited: new Set(), // channels this person was invited to and has not joined
  operator: null, // the operator view's session (memory only)
  stream: null, // aborts the live stream
  arrivals: Promise.resolve(), // live messages are opened and placed one after another, in order
};
const $ = (id) => document.getElementById(id);
const opened = (m) => Sealed.open(m, state.sealed.has(m.channel));

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function credentials() {
  const headers = {};
  const session = sessionStorage.getItem(SESSION);
  if (session) headers.Authorization = `Bearer ${session}`;
  if (state.operator) headers["X-Operator-Session"] = state.operator;
  return headers;
}

async function api(method, path, body) {
  const headers = credentials();
  const options = { method, headers, credentials: "omit" };
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
    state.operator = null;
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
  sessionStorage.removeItem(SESSION);
  state.operator = null;
  state.channel = null; // the next sign-in opens its own
  if (state.stream) state.stream.abort();
  document.body.dataset.state = "signed-out";
  if (reason) $("signin-error").textContent = reason;
}

async function trade(path, body) {
  // A key or the admin token, sent once and never kept, for a session: { ok, answer }.
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    credentials: "omit",
  });
  return { ok: response.ok, answer: await response.json().catch(() => ({})) };
}

async function signIn(event) {
  event.preventDefault();
  const { ok, answer } = await trade("/app/session", { key: $("signin-key").value, name: $("signin-name").value });
  $("signin-key").value = "";
  if (!ok) {
    $("signin-error").textContent = answer.error ? answer.error.message : "That key is not valid here.";
    return;
  }
  sessionStorage.setItem(SESSION, answer.data.session);
  state.operator = answer.data.operator || null; // signed in with the admin token: the operator view too
  $("signin-error").textContent = "";
  start();
}

async function signOut(event) {
  event.preventDefault();
  await fetch("/app/signout", { method: "POST", headers: credentials(), credentials: "omit" }).catch(() => {});
  signedOut();
}

async function useAdminToken(event) {
  event.preventDefault();
  const { ok, answer } = await trade("/app/admin", { token: $("admin-token").value });
  $("admin-token").value = ""; // the token itself is never kept
  if (!ok) return notice("That admin token is not this relay's.", true);
  state.operator = answer.data.session;
  notice("Operator view: signed in for 30 minutes.");
  await operator();
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
  for (const i of board.invitations) if (i.encrypted) state.sealed.add(i.channel);
  await Promise.all([...board.open_questions, ...board.mentions].map(opened));
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
  state.invited = new Set(board.invitations.map((i) => i.channel));
  if (board.invitations.length) {
    list.append(el("h3", "invitations (open one to join)"));
    for (const i of board.invitations) {
      const item = channelButton(i.channel, 0);
      item.title = `${i.from} invited you`;
      list.append(item);
    }
  }
  if (board.next_after) list.append(el("p", "More channels: search or list them by name.", "more"));
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

// Written in a turn a hook or push started, not one a person asked for (parley.coding.loops).
function automaticTurn(m) {
  const turn = m.metadata && m.metadata.turn;
  const hop = m.metadata && Number.isInteger(m.metadata.hop) ? m.metadata.hop : null;
  if (turn === "automatic") return hop === null ? "automatic" : `automatic · hop ${hop}`;
  if (turn === "stopped") return "stopped: hop limit";
  return "";
}

function messageRow(m, compact) {
  const row = el("article", "", "message");
  row.dataset.id = m.id;
  row.dataset.author = m.author;
  if (m.metadata && m.metadata.kind === "hand_back") row.dataset.handBack = "true";
  const head = el("header");
  head.append(el("span", m.author, "author"), el("time", when(m.created_at)));
  if (compact) head.append(el("span", `#${m.channel}`, "where"));
  const turn = automaticTurn(m);
  if (turn) head.append(el("span", turn, "tag automatic"));
  row.append(head, el("p", m.content, "content"));
  const files = (m.metadata && m.metadata.files) || [];
  for (const f of files) {
    const link = el("a", `⬇ ${f.name} (${f.size} bytes)`, "file");
    link.href = `/api/v1/files/${encodeURIComponent(f.id)}`;
    link.setAttribute("download", "");
    const sealed = m.sealed && m.sealed.opened === true;
    link.addEventListener("click", (event) => (sealed ? downloadSealed(event, f) : download(event, f)));
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
    // A question opens in its thread, ready to answer; anything else opens its channel.
    const asksMe = m.expects_reply && m.expects_reply !== "none";
    row.addEventListener("click", () => openChannel(m.channel, asksMe ? m : null));
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
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(row);
  if (atBottom) list.scrollTop = list.scrollHeight; // follow the conversation unless the person scrolled up
}

async function openChannel(name, answering) {
  // Opens at the newest message; with ``answering`` (a question), in its thread with the reply set.
  state.channel = name;
  state.seen = new Set();
  state.replyTo = null;
  $("reply-to").textContent = "";
  $("title").textContent = name;
  $("messages").replaceChildren();
  if (state.sealed.has(name) && !Sealed.has(name)) {
    notice(`${name} is sealed and this page holds no key for it: open the channel's join link.`, true);
  }
  if (state.invited && state.invited.has(name)) await api("POST", `/api/v1/channels/${encodeURIComponent(name)}/join`);
  const path = `/api/v1/messages?channel=${encodeURIComponent(name)}&limit=200`;
  const page = name.startsWith("@") ? await api("GET", path).catch(() => ({ messages: [] })) : await api("GET", path);
  for (const m of page.messages) place(await opened(m));
  const target = answering && document.querySelector(`#messages article[data-id="${answering.id}"]`);
  if (target) {
    target.scrollIntoView({ block: "center" });
    replyTo(answering);
  } else {
    $("messages").scrollTop = $("messages").scrollHeight;
  }
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
  place(await opened(posted.message));
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
  place(await opened(posted.message));
}

function save(blob, name) {
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = String(name).split(/[\\/]/).pop() || "file";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

async function fetchFile(f) {
  const response = await fetch(`/api/v1/files/${encodeURIComponent(f.id)}`, {
    headers: credentials(),
    credentials: "omit",
  });
  if (!response.ok) notice(`The file could not be fetched (HTTP ${response.status}).`, true);
  return response.ok ? response : null;
}

async function download(event, f) {
  event.preventDefault();
  const response = await fetchFile(f);
  if (response) save(await response.blob(), f.name);
}

async function downloadSealed(event, f) {
  event.preventDefault();
  const response = await fetchFile(f);
  if (!response) return;
  const channel = decodeURIComponent(response.headers.get("X-Parley-Channel") || "");
  const uploader = response.headers.get("X-Parley-Uploader") || "";
  try {
    const opened = await Sealed.openFile(new Uint8Array(await response.arrayBuffer()), channel, uploader);
    save(opened.data, opened.name);
  } catch (error) {
    notice("The sealed file did not open: it was altered or moved, or this page holds no key for it.", true);
  }
}

async function invite(event) {
  event.preventDefault();
  const agent = $("invite-name").value.trim();
  if (!agent || !state.channel) return;
  const answer = await api("POST", `/api/v1/channels/${encodeURIComponent(state.channel)}/members`, { agent });
  notice(answer.invited ? `Invited ${agent}: they join to accept.` : `${agent} is already in ${state.channel} or invited.`);
  $("invite-name").value = "";
}

async function search(event) {
  event.preventDefault();
  const q = $("search-text").value.trim();
  if (!q) return;
  const found = await api("GET", `/api/v1/search?q=${encodeURIComponent(q)}`);
  const list = $("results");
  list.replaceChildren();
  if (!found.results.length) list.append(el("p", "Nothing found.", "empty"));
  for (const hit of found.results) list.append(messageRow(await opened(hit), true));
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

function arrived(m) {
  state.cursor = m.id;
  const dmWith = state.channel && state.channel.startsWith("@") && m.channel.startsWith("dm:");
  if (m.channel === state.channel || (dmWith && m.channel.split(/[:+]/).includes(state.channel.slice(1)))) {
    state.arrivals = state.arrivals.then(async () => place(await opened(m)));
    state.onScreen = { channel: m.channel, id: m.id }; // seen: read it, so its channel is not counted unread
  }
  soon();
}

async function follow(signal) {
  // Server-Sent Events read with fetch, so the session goes in a header (EventSource can only send cookies).
  // Each connection resumes after the last message delivered: nothing skipped, nothing twice.
  const since = state.cursor !== null ? `?since=${state.cursor}` : "";
  const response = await fetch(`/api/v1/events/stream${since}`, { headers: credentials(), credentials: "omit", signal });
  if (response.status === 401) return "signed-out";
  if (!response.ok) return "retry";
  $("live").classList.add("on");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "retry";
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const field = (name) => lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
      const [event] = field("event");
      if (event === "signed-out") return "signed-out";
      if (event === "message") arrived(JSON.parse(field("data").join("\n")));
    }
  }
}

async function live() {
  const control = new AbortController();
  state.stream = control;
  while (!control.signal.aborted) {
    const outcome = await follow(control.signal).catch(() => "retry");
    $("live").classList.remove("on");
    if (outcome === "signed-out") return signedOut("Your key was revoked or expired; sign in again.");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
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
  if (!sessionStorage.getItem(SESSION)) return signedOut(); // a first visit: sign in, nothing went wrong
  let me;
  try {
    me = await api("GET", "/api/v1/me");
  } catch (error) {
    return;
  }
  state.me = me.name;
  state.cursor = me.cursor;
  document.body.dataset.state = "signed-in";
  $("whoami").textContent = me.name;
  await Promise.all([refreshBoard(), refreshAgents()]);
  const first = state.joining || document.querySelector("#channels .channel")?.dataset.channel;
  if (first && !state.channel) await openChannel(first); // unless the person already opened one meanwhile
  live();
  if (state.timers) return;
  state.timers = [
    setInterval(() => signedIn() && refreshAgents().catch(() => {}), 15000),
    setInterval(() => signedIn() && refreshBoard().catch(() => {}), 15000),
  ];
}

function signedIn() {
  return document.body.dataset.state === "signed-in";
}

document.addEventListener("DOMContentLoaded", async () => {
  state.joining = await Sealed.fromFragment(); // a join link: its key stays in this tab
  $("signin-form").addEventListener("submit", signIn);
  $("signout-form").addEventListener("submit", signOut);
  $("admin-signin").addEventListener("submit", useAdminToken);
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
  $("invite").addEventListener("submit", invite);
  $("operator-open").addEventListener("click", () => {
    document.body.dataset.view = document.body.dataset.view === "operator" ? "" : "operator";
    if (document.body.dataset.view === "operator" && state.operator) operator().catch(() => {});
  });
  $("mint").addEventListener("submit", mint);
  $("archive").addEventListener("submit", archive);
  start();
});
