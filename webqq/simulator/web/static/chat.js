// The chat page of the webqq simulator.
//
// What it does: shows the simulated world (people, bots, groups, discussions), lets you
// talk as one person to a bot, a group or a discussion through the simulator's control
// surface (POST /_sim/say, with the control token the server wrote into the page), and
// shows what everyone says and what the bots answer, live, from the WebSocket feed at
// /_chat/feed. The operator panel kicks, rotates, cuts off and captchas an account
// through /_sim/ as well.
//
// What it must never do: put message text, names or any other data from the simulator
// into HTML (everything is set with textContent, pictures only from the package), fetch
// anything from another origin, or poll for messages (the feed pushes them).
"use strict";

(function () {
  const TOKEN = document.querySelector('meta[name="sim-token"]').content;
  const TOKEN_HEADER = document.querySelector('meta[name="sim-token-header"]').content;
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_SHOWN = 500;             // messages rendered per chat
  const MAX_KEPT = 5000;             // messages kept in memory

  // Classic QQ faces by number: a name and the expression drawn for it.
  const FACES = {
    14: ["微笑", "smile"], 13: ["呲牙", "grin"], 0: ["惊讶", "surprise"], 1: ["撇嘴", "sad"],
    2: ["色", "love"], 3: ["发呆", "plain"], 4: ["得意", "cool"], 5: ["流泪", "cry"],
    6: ["害羞", "shy"], 7: ["闭嘴", "plain"], 8: ["睡", "sleep"], 9: ["大哭", "cry"],
    10: ["尴尬", "sweat"], 11: ["发怒", "angry"], 12: ["调皮", "tongue"], 15: ["难过", "sad"],
    16: ["酷", "cool"], 20: ["偷笑", "giggle"], 21: ["可爱", "shy"], 25: ["困", "sleep"],
    26: ["惊恐", "surprise"], 27: ["流汗", "sweat"], 28: ["憨笑", "grin"], 32: ["疑问", "plain"],
    34: ["晕", "dizzy"], 96: ["冷汗", "sweat"], 101: ["坏笑", "giggle"], 104: ["哈欠", "sleep"],
    106: ["委屈", "sad"], 107: ["快哭了", "cry"], 66: ["爱心", "heart"], 67: ["心碎", "broken"],
  };
  const FACE_TRAY = [14, 13, 20, 28, 12, 2, 6, 16, 4, 0, 26, 15, 1, 106, 5, 9, 11, 10, 27,
                     34, 8, 104, 3, 32, 66, 67];
  // The sample pictures of the package (static/pictures/), which a person can send.
  const PICTURES = ["sunset.svg", "mountains.svg", "cake.svg"];

  const state = {
    world: null,          // people, accounts, groups, discussions (the feed's hello)
    people: new Map(),    // qq -> person
    accounts: {},         // qq (string) -> /_sim/state entry
    run: null,            // the feed's run id: a new one means a new simulator
    lastSeq: 0,
    events: [],           // message events, in order
    me: null,             // the person you are
    chat: null,           // {kind: "buddy", account} | {kind: "group"|"discussion", number}
    bot: null,            // the account of the operator panel (and of group messages)
    seen: {},             // chat key -> last seq read
    socket: null,
    retry: 1,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function clock(seconds) {
    const date = seconds ? new Date(seconds * 1000) : new Date();
    const two = (n) => String(n).padStart(2, "0");
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
  }

  // --- the world --------------------------------------------------------------------

  function nick(qq) {
    const found = state.people.get(qq);
    return found ? found.nick : String(qq);
  }

  function isAccount(qq) {
    return state.world !== null && state.world.accounts.some((a) => a.qq === qq);
  }

  function group(number) {
    return state.world.groups.find((g) => g.number === number);
  }

  function discussion(number) {
    return state.world.discussions.find((d) => d.number === number);
  }

  function shownName(qq, chat) {
    if (chat && chat.kind === "group") {
      const found = group(chat.number);
      const member = found && found.members.find((m) => m.qq === qq);
      if (member && member.card) return member.card;
    }
    return nick(qq);
  }

  function accountState(qq) {
    const entry = state.accounts[String(qq)];
    return entry ? entry.state : "offline";
  }

  function chatKey(chat, me) {
    if (chat.kind === "buddy") return "buddy:" + chat.account + ":" + me;
    return chat.kind + ":" + chat.number;
  }

  function eventKey(event) {
    if (event.chat.kind === "buddy") {
      const person = event.direction === "in" ? event.sender : event.chat.peer;
      return "buddy:" + event.account + ":" + person;
    }
    return event.chat.kind + ":" + event.chat.number;
  }

  function members(chat) {
    if (chat.kind === "group") return group(chat.number).members.map((m) => m.qq);
    if (chat.kind === "discussion") return discussion(chat.number).members;
    return [];
  }

  // The bot account that hears what you say in ``chat``.
  function accountFor(chat) {
    if (chat.kind === "buddy") return chat.account;
    const bots = members(chat).filter(isAccount);
    if (bots.includes(state.bot)) return state.bot;
    return bots.find((qq) => accountState(qq) === "online") || bots[0];
  }

  // --- drawing: avatars, faces, pictures ----------------------------------------------

  const COLOURS = ["#e57373", "#f06292", "#ba68c8", "#7986cb", "#4fc3f7", "#4db6ac",
                   "#81c784", "#ffb74d", "#a1887f", "#90a4ae"];

  function avatar(kind, qq, label, big, status) {
    const node = el("div", "avatar" + (big ? " big" : ""));
    if (kind === "bot") {
      node.classList.add("bot");
    } else if (kind === "group" || kind === "discussion") {
      node.classList.add(kind);
      node.appendChild(kind === "group" ? groupIcon() : discussionIcon());
    } else {
      node.style.backgroundColor = COLOURS[qq % COLOURS.length];
      node.textContent = Array.from(label || "?")[0].toUpperCase();
    }
    if (status) node.appendChild(el("span", "dot " + status));
    return node;
  }

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    return node;
  }

  // Two people: a group. Two speech bubbles: a discussion.
  function groupIcon() {
    const icon = svg("svg", {viewBox: "0 0 24 24", width: "70%", height: "70%"});
    icon.appendChild(svg("circle", {cx: 15.5, cy: 8, r: 3.2, fill: "#d8ecfb"}));
    icon.appendChild(svg("path", {d: "M9.5 20 Q10 13 15.5 13 Q21 13 21.5 20 Z", fill: "#d8ecfb"}));
    icon.appendChild(svg("circle", {cx: 9, cy: 9.5, r: 3.6, fill: "#fff"}));
    icon.appendChild(svg("path", {d: "M2.5 21 Q3 14.5 9 14.5 Q15 14.5 15.5 21 Z", fill: "#fff"}));
    return icon;
  }

  function discussionIcon() {
    const icon = svg("svg", {viewBox: "0 0 24 24", width: "70%", height: "70%"});
    icon.appendChild(svg("path", {d: "M3 4 H15 Q17 4 17 6 V12 Q17 14 15 14 H8 L4.5 17 V14 H3 " +
                                     "Q1 14 1 12 V6 Q1 4 3 4 Z", fill: "#fff"}));
    icon.appendChild(svg("path", {d: "M19 9 H21 Q23 9 23 11 V17 Q23 19 21 19 V21.5 L18 19 " +
                                     "H12 Q10 19 10 17 V16 H16 Q19 16 19 13 Z", fill: "#d8f3ea"}));
    return icon;
  }

  const INK = "#5a3800";

  function line(d, colour, width) {
    return svg("path", {d: d, fill: "none", stroke: colour || INK, "stroke-width": width || 1.3,
                        "stroke-linecap": "round"});
  }

  function dots(r) {
    return [svg("circle", {cx: 7, cy: 8.2, r: r, fill: INK}),
            svg("circle", {cx: 13, cy: 8.2, r: r, fill: INK})];
  }

  // The parts of each expression, over a round yellow face (viewBox 0 0 20 20).
  const EXPRESSIONS = {
    smile: () => [...dots(1.2), line("M6 12 Q10 16 14 12")],
    grin: () => [...dots(1.2), svg("path", {d: "M5.5 11.5 Q10 18 14.5 11.5 Z", fill: "#fff",
                                             stroke: INK, "stroke-width": 1.1})],
    giggle: () => [line("M5.5 8.6 Q7 7 8.5 8.6"), line("M11.5 8.6 Q13 7 14.5 8.6"),
                   line("M6.5 12.5 Q10 15.5 13.5 12.5")],
    surprise: () => [...dots(1.6), svg("circle", {cx: 10, cy: 13.8, r: 2.1, fill: INK})],
    sad: () => [line("M5.5 6.2 L8.3 5.2"), line("M14.5 6.2 L11.7 5.2"), ...dots(1.1),
                line("M6.5 14.8 Q10 11.6 13.5 14.8")],
    cry: () => [line("M5.5 8.2 L8.5 8.2"), line("M11.5 8.2 L14.5 8.2"),
                line("M6.6 9.4 L6.2 15", "#3d9be9", 1.6), line("M13.4 9.4 L13.8 15", "#3d9be9", 1.6),
                line("M7.5 14.5 Q10 12.5 12.5 14.5")],
    angry: () => [line("M5.2 5.6 L8.6 7.2"), line("M14.8 5.6 L11.4 7.2"), ...dots(1.1),
                  line("M6.5 14.5 Q10 12 13.5 14.5")],
    cool: () => [svg("rect", {x: 4.2, y: 6.4, width: 5, height: 3.2, rx: 1, fill: "#222"}),
                 svg("rect", {x: 10.8, y: 6.4, width: 5, height: 3.2, rx: 1, fill: "#222"}),
                 line("M9.2 7.4 L10.8 7.4", "#222", 1), line("M6.5 12.8 Q10 15.5 13.5 12.8")],
    love: () => [svg("path", {d: "M7 10 L4.8 7.8 A1.3 1.3 0 0 1 7 6.2 A1.3 1.3 0 0 1 9.2 7.8 Z",
                              fill: "#e53935"}),
                 svg("path", {d: "M13 10 L10.8 7.8 A1.3 1.3 0 0 1 13 6.2 A1.3 1.3 0 0 1 15.2 7.8 Z",
                              fill: "#e53935"}),
                 line("M6 12 Q10 16.5 14 12")],
    shy: () => [...dots(1.1), svg("ellipse", {cx: 5.6, cy: 11.4, rx: 1.8, ry: 1.1, fill: "#ff8a9b"}),
                svg("ellipse", {cx: 14.4, cy: 11.4, rx: 1.8, ry: 1.1, fill: "#ff8a9b"}),
                line("M7.5 13 Q10 15 12.5 13")],
    sleep: () => [line("M5.5 8.5 Q7 9.6 8.5 8.5"), line("M11.5 8.5 Q13 9.6 14.5 8.5"),
                  svg("ellipse", {cx: 10, cy: 14, rx: 1.5, ry: 1.1, fill: INK})],
    tongue: () => [...dots(1.2), line("M6 12 L14 12"),
                   svg("path", {d: "M8.6 12 Q8.8 15.6 10.6 15.4 Q12.2 15.2 11.8 12 Z",
                                fill: "#f0626c"})],
    sweat: () => [...dots(1.1), line("M7 13.5 L13 13.5"),
                  svg("path", {d: "M15.6 2.8 Q17.4 5.8 15.6 6.6 Q13.8 5.8 15.6 2.8 Z",
                               fill: "#6ec1ff"})],
    dizzy: () => [line("M5.8 7 L8.2 9.4", INK, 1.1), line("M8.2 7 L5.8 9.4", INK, 1.1),
                  line("M11.8 7 L14.2 9.4", INK, 1.1), line("M14.2 7 L11.8 9.4", INK, 1.1),
                  line("M6.5 13.5 Q8.2 12 10 13.5 Q11.8 15 13.5 13.5")],
    plain: () => [...dots(1.2), line("M7 13.2 L13 13.2")],
  };

  function face(id) {
    const known = FACES[id];
    const name = known ? known[0] : "face " + id;
    const mood = known ? known[1] : "plain";
    const node = svg("svg", {viewBox: "0 0 20 20", class: "face", role: "img"});
    const title = svg("title", {});
    title.textContent = name + " [face " + id + "]";
    node.appendChild(title);
    if (mood === "heart" || mood === "broken") {
      node.appendChild(svg("path", {d: "M10 17.5 L3 10.5 A4 4 0 0 1 10 5 A4 4 0 0 1 17 10.5 Z",
                                    fill: "#e53935"}));
      if (mood === "broken") node.appendChild(line("M10 5.5 L8.6 9 L11.2 11 L9.4 16", "#fff", 1.2));
      return node;
    }
    node.appendChild(svg("circle", {cx: 10, cy: 10, r: 9, fill: mood === "angry" ? "#ff9a62" : "#ffd54a",
                                    stroke: "#d69a00", "stroke-width": 0.8}));
    for (const part of EXPRESSIONS[mood]()) node.appendChild(part);
    return node;
  }

  function picture(name) {
    if (PICTURES.includes(name)) {
      const image = el("img", "picture");
      image.src = "/_chat/static/pictures/" + name;
      image.alt = "picture " + name;
      return image;
    }
    return el("span", "picture-missing", "picture: " + name);
  }

  function renderPieces(pieces) {
    const body = el("div", "body");
    for (const piece of pieces) {
      if (piece[0] === "face") body.appendChild(face(piece[1]));
      else if (piece[0] === "picture") body.appendChild(picture(piece[1]));
      else body.appendChild(document.createTextNode(piece[1]));
    }
    return body;
  }

  // --- the lists on the left ------------------------------------------------------------

  function listItem(avatarNode, name, detail, key, onclick) {
    const item = el("li");
    item.appendChild(avatarNode);
    const who = el("div", "who");
    who.appendChild(el("div", "name", name));
    if (detail) who.appendChild(el("div", "detail", detail));
    item.appendChild(who);
    const unread = key ? unreadCount(key) : 0;
    if (unread) item.appendChild(el("span", "badge", unread));
    item.addEventListener("click", onclick);
    return item;
  }

  function unreadCount(key) {
    if (state.me === null) return 0;
    const since = state.seen[key] || 0;
    return state.events.filter((e) => e.seq > since && eventKey(e) === key && e.sender !== state.me).length;
  }

  function renderPeople() {
    const list = $("list-people");
    clear(list);
    for (const person of state.world.people.filter((p) => !p.account)) {
      const item = listItem(avatar("person", person.qq, person.nick, false, person.status),
                            person.nick + " (" + person.qq + ")", person.long_nick || person.status,
                            null, () => becomes(person.qq));
      if (person.qq === state.me) item.classList.add("selected");
      list.appendChild(item);
    }
  }

  function renderChats() {
    const bots = $("list-bots"), groups = $("list-groups"), discussions = $("list-discussions");
    [bots, groups, discussions].forEach(clear);
    if (state.me === null) return;
    for (const account of state.world.accounts) {
      const friend = account.friends.some((f) => f.qq === state.me);
      const chat = {kind: "buddy", account: account.qq};
      const item = listItem(avatar("bot", account.qq, account.nick, false, accountState(account.qq)),
                            account.nick + " (" + account.qq + ")",
                            accountState(account.qq) + (friend ? "" : " · not your friend"),
                            chatKey(chat, state.me), () => open(chat));
      markOpen(item, chat);
      bots.appendChild(item);
    }
    for (const g of state.world.groups) {
      if (!g.members.some((m) => m.qq === state.me)) continue;
      const chat = {kind: "group", number: g.number};
      const item = listItem(avatar("group"), g.name, g.number + " · " + g.members.length + " members",
                            chatKey(chat, state.me), () => open(chat));
      markOpen(item, chat);
      groups.appendChild(item);
    }
    for (const d of state.world.discussions) {
      if (!d.members.includes(state.me)) continue;
      const chat = {kind: "discussion", number: d.number};
      const item = listItem(avatar("discussion"), d.name, d.members.length + " members",
                            chatKey(chat, state.me), () => open(chat));
      markOpen(item, chat);
      discussions.appendChild(item);
    }
    for (const list of [groups, discussions]) {
      if (!list.firstChild) list.appendChild(el("li", "none", "none you are in"));
    }
  }

  function markOpen(item, chat) {
    if (state.chat && chatKey(state.chat, state.me) === chatKey(chat, state.me)) {
      item.classList.add("selected");
    }
  }

  function renderMe() {
    const person = state.people.get(state.me);
    const slot = $("me-avatar");
    const fresh = person ? avatar("person", person.qq, person.nick, true, person.status)
                         : avatar("person", 0, "?", true);
    fresh.id = "me-avatar";
    slot.replaceWith(fresh);
    $("me-nick").textContent = person ? person.nick + " (" + person.qq + ")" : "pick who you are";
    $("me-sign").textContent = person ? person.long_nick || "a person of the simulated world" : "";
    $("typing-as").textContent = person ? "you are " + person.nick : "";
  }

  function becomes(qq) {
    state.me = qq;
    try { localStorage.setItem("webqq-sim-me", String(qq)); } catch (e) { /* private mode */ }
    if (state.chat && state.chat.kind !== "buddy" && !members(state.chat).includes(qq)) {
      state.chat = null;
    }
    renderMe();
    renderPeople();
    renderChats();
    renderChat();
    showTab("chats");
  }

  function showTab(name) {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.classList.toggle("active", tab.dataset.tab === name);
    }
    $("tab-chats").classList.toggle("hidden", name !== "chats");
    $("tab-people").classList.toggle("hidden", name !== "people");
  }

  // --- the chat window ------------------------------------------------------------------

  function open(chat) {
    state.chat = chat;
    if (chat.kind !== "buddy" && members(chat).some(isAccount) && !members(chat).includes(state.bot)) {
      selectBot(members(chat).find(isAccount));
    }
    renderChats();
    renderChat();
    $("input").focus();
  }

  function inChat(event) {
    return state.chat !== null && eventKey(event) === chatKey(state.chat, state.me);
  }

  function renderChat() {
    const box = $("messages");
    clear(box);
    const chat = state.chat;
    const slot = $("chat-avatar");
    let fresh;
    if (chat === null) {
      fresh = el("div", "avatar");
      $("chat-title").textContent = "No chat open";
      $("chat-sub").textContent = "pick a bot, a group or a discussion on the left";
      box.appendChild(el("div", "empty", "Pick who you are and a chat on the left, then type."));
    } else if (chat.kind === "buddy") {
      fresh = avatar("bot", chat.account, "", false, accountState(chat.account));
      $("chat-title").textContent = nick(chat.account) + " (" + chat.account + ")";
      $("chat-sub").textContent = "a bot's account · " + accountState(chat.account);
    } else {
      const info = chat.kind === "group" ? group(chat.number) : discussion(chat.number);
      fresh = avatar(chat.kind);
      $("chat-title").textContent = info.name + (chat.kind === "group" ? " (" + chat.number + ")" : "");
      $("chat-sub").textContent = (chat.kind === "group" ? "group" : "discussion") + " · " +
        members(chat).map((qq) => shownName(qq, chat)).join(", ");
    }
    fresh.id = "chat-avatar";
    slot.replaceWith(fresh);
    const ready = chat !== null && state.me !== null;
    $("input").disabled = !ready;
    $("send").disabled = !ready;
    if (chat === null) return;
    const shown = state.events.filter(inChat).slice(-MAX_SHOWN);
    if (shown.length === 0) box.appendChild(el("div", "note", "no messages yet: say something"));
    for (const event of shown) box.appendChild(messageNode(event));
    markRead();
    box.scrollTop = box.scrollHeight;
  }

  function markRead() {
    if (state.chat === null || state.me === null) return;
    const shown = state.events.filter(inChat);
    const key = chatKey(state.chat, state.me);
    const last = shown.length ? shown[shown.length - 1].seq : 0;
    if ((state.seen[key] || 0) < last) {
      state.seen[key] = last;
      renderChats();
    }
  }

  function messageNode(event) {
    const mine = event.direction === "in" && event.sender === state.me;
    const node = el("div", "msg" + (mine ? " mine" : "") + (event.dropped ? " dropped" : ""));
    node.dataset.seq = event.seq;
    node.dataset.direction = event.direction;
    const head = el("div", "head", shownName(event.sender, event.chat));
    head.appendChild(el("span", "time", clock(event.time)));
    if (event.session) head.appendChild(el("span", "tag", "temporary session"));
    if (event.dropped) head.appendChild(el("span", "tag", "dropped by the server: " + event.dropped));
    node.appendChild(head);
    node.appendChild(renderPieces(event.pieces));
    return node;
  }

  function note(text, error) {
    const box = $("messages");
    box.appendChild(el("div", "note" + (error ? " error" : ""), text));
    box.scrollTop = box.scrollHeight;
  }

  function addEvent(event) {
    if (event.seq <= state.lastSeq) return;
    state.lastSeq = event.seq;
    state.events.push(event);
    if (state.events.length > MAX_KEPT) state.events.splice(0, state.events.length - MAX_KEPT);
    if (inChat(event)) {
      const box = $("messages");
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      const placeholder = box.querySelector(".note:only-child");
      if (placeholder) placeholder.remove();
      box.appendChild(messageNode(event));
      if (atBottom || event.sender === state.me) box.scrollTop = box.scrollHeight;
      markRead();
    } else {
      renderChats();
    }
  }

  // What the text area holds, as message pieces: [face:N] marks a face.
  function pieces(text) {
    const parts = [];
    const pattern = /\[face:(\d{1,3})\]/g;
    let last = 0;
    for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
      if (match.index > last) parts.push(text.slice(last, match.index));
      parts.push(["face", Number(match[1])]);
      last = pattern.lastIndex;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }

  async function say(content) {
    const chat = state.chat;
    if (chat === null || state.me === null || content.length === 0) return false;
    const body = {to: accountFor(chat), from: state.me, content: content};
    if (chat.kind !== "buddy") body[chat.kind] = chat.number;
    try {
      await control("say", body);
      return true;
    } catch (error) {
      note("not said: " + error.message, true);
      return false;
    }
  }

  async function sendInput() {
    const input = $("input");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    if (!(await say(pieces(text)))) input.value = text;
    input.focus();
  }

  function insertAtCursor(text) {
    const input = $("input");
    const start = input.selectionStart, end = input.selectionEnd;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
    input.focus();
  }

  function buildTrays() {
    const faces = $("face-tray");
    for (const id of FACE_TRAY) {
      const button = el("button");
      button.type = "button";
      button.title = FACES[id][0];
      button.appendChild(face(id));
      button.addEventListener("click", () => {
        faces.classList.add("hidden");
        insertAtCursor("[face:" + id + "]");
      });
      faces.appendChild(button);
    }
    const pictures = $("picture-tray");
    for (const name of PICTURES) {
      const button = el("button");
      button.type = "button";
      button.title = "send " + name;
      const image = el("img");
      image.src = "/_chat/static/pictures/" + name;
      image.alt = name;
      button.appendChild(image);
      button.addEventListener("click", () => {
        pictures.classList.add("hidden");
        say([["cface", {name: name}]]);
      });
      pictures.appendChild(button);
    }
    const faceButton = $("face-button");
    faceButton.textContent = "";
    faceButton.appendChild(face(14));
    const pictureButton = $("picture-button");
    pictureButton.textContent = "";
    const icon = svg("svg", {viewBox: "0 0 20 20", class: "face"});
    icon.appendChild(svg("rect", {x: 2, y: 4, width: 16, height: 12, rx: 1.5, fill: "#e8f2fb",
                                  stroke: "#3d6f9f", "stroke-width": 1.2}));
    icon.appendChild(svg("path", {d: "M3.5 14.5 L8 9.5 L11 12.5 L13 10.5 L16.5 14.5 Z",
                                  fill: "#4f9a5b"}));
    icon.appendChild(svg("circle", {cx: 14, cy: 7.5, r: 1.6, fill: "#f3b43c"}));
    pictureButton.appendChild(icon);
    faceButton.addEventListener("click", () => {
      pictures.classList.add("hidden");
      faces.classList.toggle("hidden");
    });
    pictureButton.addEventListener("click", () => {
      faces.classList.add("hidden");
      pictures.classList.toggle("hidden");
    });
  }

  // --- the control surface and the operator panel ------------------------------------------

  async function control(verb, body) {
    const headers = {"Content-Type": "application/json"};
    headers[TOKEN_HEADER] = TOKEN;
    const response = await fetch("/_sim/" + verb, {method: "POST", headers: headers,
                                                    body: JSON.stringify(body)});
    let answer = null;
    try { answer = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error((answer && answer.error) || "HTTP " + response.status);
    return answer;
  }

  function logLine(text, error) {
    const item = el("li", error ? "error" : "", clock() + " " + text);
    const log = $("op-log");
    log.appendChild(item);
    while (log.children.length > 50) log.removeChild(log.firstChild);
    log.scrollTop = log.scrollHeight;
  }

  async function operate(verb, body, what) {
    try {
      await control(verb, body);
      logLine(what + ": done");
      return true;
    } catch (error) {
      logLine(what + ": " + error.message, true);
      return false;
    }
  }

  function selectBot(qq) {
    state.bot = qq;
    $("op-account").value = String(qq);
    renderOperator();
  }

  function renderOperator() {
    const list = $("op-state");
    clear(list);
    const entry = state.accounts[String(state.bot)];
    if (!entry) return;
    const rows = [["state", entry.state], ["status", entry.status],
                  ["messages sent", entry.sent || 0]];
    if (entry.captcha) rows.push(["captcha", entry.captcha]);
    for (const [name, value] of rows) {
      list.appendChild(el("dt", "", name));
      list.appendChild(el("dd", name === "state" ? String(value) : "", value));
    }
  }

  function buildOperator() {
    const select = $("op-account");
    for (const account of state.world.accounts) {
      const option = el("option", "", account.nick + " (" + account.qq + ")");
      option.value = String(account.qq);
      select.appendChild(option);
    }
    select.addEventListener("change", () => selectBot(Number(select.value)));
    $("op-kick").addEventListener("click", () =>
      operate("kick", {account: state.bot}, "kick " + state.bot));
    $("op-rotate").addEventListener("click", () =>
      operate("rotate", {account: state.bot}, "rotate " + state.bot));
    $("op-captcha").addEventListener("click", () => {
      const code = $("op-code").value.trim();
      operate("captcha", {account: state.bot, code: code},
              "captcha " + code + " for the next login of " + state.bot);
    });
    $("op-outage").addEventListener("click", async () => {
      const seconds = Number($("op-seconds").value);
      if (await operate("offline", {seconds: seconds}, "outage of " + seconds + " s")) {
        note("the simulator refuses every connection for " + seconds + " s");
      }
    });
  }

  // --- the feed -------------------------------------------------------------------------

  function setLink(kind, text) {
    const link = $("link");
    link.className = "link " + kind;
    link.textContent = text;
  }

  function welcome(hello) {
    const first = state.world === null;
    if (hello.run !== state.run) {
      state.run = hello.run;
      state.lastSeq = 0;
      state.events = [];
      state.seen = {};
    }
    state.world = hello.world;
    state.people = new Map(hello.world.people.map((p) => [p.qq, p]));
    state.accounts = hello.accounts;
    for (const event of hello.history) {
      if (event.seq > state.lastSeq) {
        state.events.push(event);
        state.lastSeq = event.seq;
      }
    }
    if (first) {
      buildTrays();
      buildOperator();
      let me = null;
      try { me = Number(localStorage.getItem("webqq-sim-me")); } catch (e) { /* private mode */ }
      const people = hello.world.people.filter((p) => !p.account);
      state.me = people.some((p) => p.qq === me) ? me : (people.length ? people[0].qq : null);
      state.bot = hello.world.accounts.length ? hello.world.accounts[0].qq : null;
      if (state.bot !== null) state.chat = {kind: "buddy", account: state.bot};
      selectBot(state.bot);
    }
    renderMe();
    renderPeople();
    renderChats();
    renderChat();
    renderOperator();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/_chat/feed?token=" +
                                 encodeURIComponent(TOKEN));
    state.socket = socket;
    setLink("connecting", "connecting…");
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "hello") {
        state.retry = 1;
        setLink("live", "live");
        welcome(event);
      } else if (event.type === "message") {
        addEvent(event);
      } else if (event.type === "accounts") {
        state.accounts = event.accounts;
        renderOperator();
        renderChats();
        if (state.chat && state.chat.kind === "buddy") {
          $("chat-sub").textContent = "a bot's account · " + accountState(state.chat.account);
        }
      }
    });
    socket.addEventListener("close", () => {
      setLink("down", "simulator unreachable: retrying");
      setTimeout(connect, state.retry * 1000);
      state.retry = Math.min(state.retry * 2, 4);
    });
  }

  function start() {
    $("send").addEventListener("click", sendInput);
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendInput();
      }
    });
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => showTab(tab.dataset.tab));
    }
    const tick = () => { $("clock").textContent = clock(); };
    tick();
    setInterval(tick, 1000);
    connect();
  }

  start();
})();
