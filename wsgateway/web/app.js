// Switchyard dashboard: every board as a card or as a row of a dense table,
// live over the /ws WebSocket; a board's own page (board.js), and for
// admins the Updates view (updates.js), the audit log (audit.js), the Add
// board dialog with the adoption of new boards (onboard.js) and the Users
// page (users.js).
//
// Model: `devices` (id -> plain object) is the truth; the DOM is a view of it.
// Every change marks an id dirty; one requestAnimationFrame batch then
// creates, updates (only the text nodes that changed) or removes cards or
// rows. A count event rewrites one text node: never the whole list.
//
// Where the page keeps its state:
//   the query string  the list's filter and sort (?q=kitchen&state=offline&tag=porch&sort=-count),
//                     so a filtered view can be bookmarked; kept on the board page too
//   the hash          the view: #updates, #audit (&actor=NAME), #users, #board=<id>; none for the list
//   localStorage      the layout, cards or table (switchyard.layout): a choice of this browser
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    main: document.querySelector("main"),
    cards: $("cards"),
    tableWrap: $("table-wrap"),
    table: $("table"),
    rows: $("rows"),
    empty: $("empty"),
    conn: $("conn"),
    connText: $("conn-text"),
    retry: $("retry"),
    login: $("login"),
    filter: $("filter"),
    stateFilter: $("state-filter"),
    tagFilter: $("tag-filter"),
    tagPick: $("tag-pick"),
    summaryText: $("summary-text"),
    summaryShown: $("summary-shown"),
    toast: $("toast"),
    groups: $("groups"),
    groupSelect: $("group"),
    sort: $("sort"),
    views: $("views"),
    boardsView: $("boards-view"),
    boardView: $("board-view"),
    boardLive: $("board-live"),
    boardTitle: $("board-title"),
    boardBack: $("board-back"),
    addBoard: $("add-board"),
  };

  // Cards and the Updates view share these words (updates.js).
  const S = window.Switchyard || {};
  const updateText = S.updateText || (() => "");
  const updateFinal = S.updateFinal || (() => true);
  // A confirmed update is news for this long after it arrives; then the
  // card's update field goes quiet (see cardUpdate).
  const confirmedFor = 60000;

  // A page opened as /?token=... passes the API token on (see CONTRACT "Access").
  const token = new URLSearchParams(location.search).get("token");

  // Sort keys are strings compared by code unit (Go's sort.Strings order for
  // ASCII), not by localeCompare: natKey makes that order natural.
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  // natKey encodes s so that comparing keys by code unit orders s naturally:
  // bench-2 before bench-10. Each run of digits becomes "0" (so it still
  // sorts where a digit does against other characters), its length without
  // leading zeros as one character, then the digits: a longer number is a
  // bigger one, and equal lengths compare digit by digit. Two keys that are
  // equal up to a digit run are at the same place in both encodings, so a
  // length character is only ever compared with another length character.
  function natKey(s) {
    return s.replace(/\d+/g, (m) => {
      const t = m.replace(/^0+(?=\d)/, "");
      return "0" + String.fromCharCode(0x21 + t.length) + t;
    });
  }

  // numKey encodes a number (or null: last) so that keys compare as numbers.
  function numKey(n) {
    if (n === null || !Number.isFinite(n)) return "\uffff";
    let s = String(Math.trunc(Math.abs(n)));
    if (s.includes("e")) s = "9".repeat(22); // above 1e21: all alike
    if (n >= 0) return "1" + String.fromCharCode(0x21 + s.length) + s;
    return "0" + String.fromCharCode(0x7e - s.length) + s.replace(/\d/g, (c) => String(9 - Number(c)));
  }

  // ---------------------------------------------------------------- model

  /** @type {Map<string, object>} */
  const devices = new Map();

  // blankDevice is a board the page knows nothing of yet.
  function blankDevice(id) {
    return {
      id,
      configName: null, // name given by /api/devices that did not come from info
      info: null,
      firmware: null, // /api/devices' "firmware", when info has none
      tags: [], // sorted, from /api/devices (absent before tags existed)
      online: false,
      led: null, // "ON" | "OFF" | null (unknown)
      count: null,
      lastSeen: null, // ms since epoch
      isNew: false, // connected without an account: an admin may adopt it (/api/devices' "new")
      liveGen: -1, // generation in which lastSeen was set from a live event
      stale: false,
      pending: false,
      pendingTimer: 0,
      note: "", // what happened to the last command, when it did not work
      noteTimer: 0,
      update: null, // the board's last update report {"job","state","version","running","progress","error"}
      updateAt: 0, // ms since epoch when update arrived live (0: from a connect snapshot)
      updateTimer: 0,
    };
  }

  function newDevice(id) {
    const d = blankDevice(id);
    devices.set(id, d);
    return d;
  }

  function displayName(d) {
    if (d.configName) return d.configName;
    const n = d.info && typeof d.info.name === "string" ? d.info.name.trim() : "";
    return n || d.id;
  }

  function firmwareOf(d) {
    if (d.info && typeof d.info.firmware === "string") return d.info.firmware;
    return typeof d.firmware === "string" ? d.firmware : "";
  }

  // An update job runs (updating) or the last one failed (failed), from the
  // board's own update report, as its card shows it.
  const updating = (d) => !!d.update && typeof d.update.state === "string" && !updateFinal(d.update);
  const updateFailed = (d) => !!d.update && (d.update.state === "failed" || d.update.state === "rolled_back");

  // waiting: a board known (added, or listed in config) that never spoke:
  // offline, never seen, nothing retained of it.
  const waiting = (d) => !d.online && d.lastSeen === null && d.info === null && d.count === null && d.led === null;

  function normLed(v) {
    if (typeof v !== "string") return null;
    const m = /\b(ON|OFF)\b/i.exec(v);
    return m ? m[1].toUpperCase() : null;
  }

  function normCount(v) {
    if (typeof v === "string" && v.trim() !== "") v = Number(v);
    return typeof v === "number" && Number.isFinite(v) ? v : null;
  }

  function normOnline(v) {
    if (typeof v === "boolean") return v;
    if (v === "online") return true;
    if (v === "offline") return false;
    return null;
  }

  function normTags(v) {
    if (!Array.isArray(v)) return [];
    return v.filter((t) => typeof t === "string" && t !== "").sort((a, b) => cmp(natKey(a), natKey(b)));
  }

  function removeDevice(id) {
    const d = devices.get(id);
    if (!d) return;
    clearTimeout(d.pendingTimer);
    clearTimeout(d.updateTimer);
    devices.delete(id);
    markDirty(id);
  }

  // ------------------------------------------------------- dirty / batching

  const dirty = new Set();
  let flushQueued = false;
  let rafHandle = 0;
  let fallbackHandle = 0;

  function markDirty(id) {
    dirty.add(id);
    queueFlush();
  }

  function markAllDirty() {
    for (const id of devices.keys()) dirty.add(id);
    for (const id of views.keys()) dirty.add(id);
    if (detail) dirty.add(detail.id);
    queueFlush();
  }

  function queueFlush() {
    if (flushQueued) return;
    flushQueued = true;
    rafHandle = requestAnimationFrame(flush);
    // rAF does not run in hidden tabs; keep the DOM roughly current anyway.
    fallbackHandle = setTimeout(flush, 500);
  }

  // ------------------------------------------------------ the list's state

  // The filter and sort of the list, read from and written to the query
  // string (history.replaceState: no history entry per keystroke).
  const list = {
    text: "", // lower case, trimmed
    state: "", // "", "online", "offline", "updating", "failed"
    tag: "",
    sort: "id", // a column of sortCols
    dir: 1, // 1 ascending, -1 descending
  };
  const states = ["online", "offline", "updating", "failed"];
  const sortCols = ["id", "name", "state", "led", "count", "seen", "firmware", "tags"];

  function readListURL() {
    const q = new URLSearchParams(location.search);
    list.text = (q.get("q") || "").trim().toLowerCase();
    const st = q.get("state") || "";
    list.state = states.includes(st) ? st : "";
    list.tag = (q.get("tag") || "").trim();
    const s = q.get("sort") || "";
    const col = s.replace(/^-/, "");
    list.sort = sortCols.includes(col) ? col : "id";
    list.dir = s.startsWith("-") && list.sort === col ? -1 : 1;
  }

  let urlTimer = 0;
  function writeListURL() {
    clearTimeout(urlTimer);
    urlTimer = 0;
    const q = new URLSearchParams(location.search);
    const set = (k, v) => (v ? q.set(k, v) : q.delete(k));
    set("q", ui.filter.value.trim());
    set("state", list.state);
    set("tag", list.tag);
    set("sort", list.sort === "id" && list.dir === 1 ? "" : (list.dir < 0 ? "-" : "") + list.sort);
    const search = q.toString();
    const url = location.pathname + (search ? "?" + search : "") + location.hash;
    if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
  }

  // ------------------------------------------------------------------ view

  /** @type {Map<string, object>} id -> view (card or row element and cached texts) */
  const views = new Map();
  /** ids that have a view, in view order (see cmpViews); mirrors DOM order */
  const sortedIds = [];
  // "cards" or "table", kept per browser.
  let layout = "cards";
  const layoutKey = "switchyard.layout";

  // A view's sort keys: k1 by the sort column (asc or desc), then k2, the
  // id in natural order, always ascending (unique, so the order is total).
  function idKey(id) {
    return natKey(id) + "\u0000" + id;
  }

  function primaryKey(v, d) {
    switch (list.sort) {
      case "name": return natKey(displayName(d).toLowerCase());
      case "state": return (d.online ? "0" : "1") + (updateFailed(d) ? "2" : updating(d) ? "1" : "0");
      case "led": return d.led === "ON" ? "0" : d.led === "OFF" ? "1" : "2";
      case "count": return numKey(d.count);
      case "seen": return numKey(d.lastSeen);
      case "firmware": {
        const f = firmwareOf(d);
        return f ? natKey(f.toLowerCase()) : "\uffff";
      }
      case "tags": return d.tags.length ? natKey(d.tags.join(" ")) : "\uffff";
      default: return v.k2;
    }
  }

  function cmpViews(a, b) {
    return list.dir * cmp(a.k1, b.k1) || cmp(a.k2, b.k2);
  }

  // lowerBound is where v belongs in sortedIds (v's own entry, if there).
  function lowerBound(v) {
    let lo = 0;
    let hi = sortedIds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmpViews(views.get(sortedIds[mid]), v) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  function container() {
    return layout === "table" ? ui.rows : ui.cards;
  }

  // place puts v's element where its keys belong (it is not in sortedIds).
  function place(v, id) {
    const i = lowerBound(v);
    sortedIds.splice(i, 0, id);
    const box = container();
    const next = i + 1 < sortedIds.length ? views.get(sortedIds[i + 1]).root : null;
    if (v.root.nextSibling !== next || v.root.parentNode !== box) box.insertBefore(v.root, next);
  }

  // unplace takes v out of sortedIds; its keys are those it was placed with.
  function unplace(v, id) {
    let i = lowerBound(v);
    if (sortedIds[i] !== id) i = sortedIds.indexOf(id);
    if (i >= 0) sortedIds.splice(i, 1);
  }

  function resort() {
    for (const id of sortedIds) {
      const d = devices.get(id);
      const v = views.get(id);
      if (d) v.k1 = primaryKey(v, d);
    }
    sortedIds.sort((a, b) => cmpViews(views.get(a), views.get(b)));
    const frag = document.createDocumentFragment();
    for (const id of sortedIds) frag.append(views.get(id).root);
    container().append(frag);
    renderSortControls();
  }

  // box makes an element with class cls (none when null) and attrs set.
  function box(tag, cls, attrs) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  // el is a box holding one empty text node, whose data the view sets.
  function el(tag, cls, attrs) {
    const e = box(tag, cls, attrs);
    e.appendChild(document.createTextNode(""));
    return e;
  }

  // <article class="card" data-device="ID" data-online="false" data-led="unknown">
  //   <header class="card-head">
  //     <h2 class="card-title">
  //       <a class="open" href="#board=ID"><span class="card-name" data-field="name">NAME</span></a>
  //       <span class="card-id" data-field="id">ID</span>      (hidden when NAME = ID)
  //     </h2>
  //     <span class="badge" data-field="online">offline</span>
  //   </header>
  //   <div class="card-body">
  //     <p class="led" data-field="led">LED ?</p>
  //     <p class="count"><span class="count-label">Count</span> <span class="count-value" data-field="count">–</span></p>
  //   </div>
  //   <p class="meta" data-field="info"></p>
  //   <p class="fw-line">                                 (hidden when both are empty)
  //     <span class="fw" data-field="firmware">devicefw 1.2</span>
  //     <span class="update" data-field="update">downloading 40%</span>   (see cardUpdate)
  //   </p>
  //   <p class="tags" data-field="tags">kitchen porch</p>  (hidden when there are none)
  //   <p class="note" data-field="command" role="status"></p>
  //   <p class="wait-line" data-field="waiting">Waiting for first connection</p>  (see waiting)
  //   <div class="new-line">                              (a board connected without an account)
  //     <p><span class="new-tag" data-field="new">new</span> <span class="new-text">Connected without an account.</span></p>
  //     <p class="new-actions">                           (admins)
  //       <button type="button" class="action" data-action="adopt" aria-label="Adopt NAME">Adopt…</button>
  //       <button type="button" class="action" data-action="forget" aria-label="Forget NAME">Forget</button>
  //     </p>
  //   </div>
  //   <footer class="card-foot">
  //     <p class="seen">Last seen <time data-field="last-seen">never</time></p>
  //     <button type="button" class="toggle" data-action="toggle" aria-label="Toggle LED of NAME">Toggle LED</button>
  //   </footer>
  // </article>
  // The board page's live summary is the same, in a <div class="card detail">.
  function buildCardPrototype(tag) {
    const card = box(tag, tag === "article" ? "card" : "card detail");

    const head = box("header", "card-head");
    const title = box("h2", "card-title");
    const open = box("a", "open");
    open.append(el("span", "card-name", { "data-field": "name" }));
    title.append(open, " ", el("span", "card-id", { "data-field": "id" }));
    head.append(title, el("span", "badge", { "data-field": "online" }));

    const body = box("div", "card-body");
    const count = box("p", "count");
    const countLabel = box("span", "count-label");
    countLabel.textContent = "Count";
    count.append(countLabel, " ", el("span", "count-value", { "data-field": "count" }));
    body.append(el("p", "led", { "data-field": "led" }), count);

    const meta = el("p", "meta", { "data-field": "info" });
    const fwLine = box("p", "fw-line");
    fwLine.append(el("span", "fw", { "data-field": "firmware" }), " ", el("span", "update", { "data-field": "update" }));
    const tags = el("p", "tags", { "data-field": "tags" });
    const note = el("p", "note", { "data-field": "command", role: "status" });
    const wait = box("p", "wait-line", { "data-field": "waiting", hidden: "" });
    wait.textContent = "Waiting for first connection";
    const fresh = box("div", "new-line", { hidden: "" });
    const what = box("p");
    const newTag = box("span", "new-tag", { "data-field": "new" });
    newTag.textContent = "new";
    what.append(newTag, " ", el("span", "new-text"));
    const acts = box("p", "new-actions");
    const adopt = box("button", "action", { type: "button", "data-action": "adopt" });
    adopt.textContent = "Adopt…";
    const forget = box("button", "action", { type: "button", "data-action": "forget" });
    forget.textContent = "Forget";
    acts.append(adopt, " ", forget);
    fresh.append(what, acts);

    const foot = box("footer", "card-foot");
    const seen = box("p", "seen");
    seen.append("Last seen ", el("time", null, { "data-field": "last-seen" }));
    const btn = box("button", "toggle", { type: "button", "data-action": "toggle" });
    btn.textContent = "Toggle LED";
    foot.append(seen, btn);

    card.append(head, body, meta, fwLine, tags, note, wait, fresh, foot);
    return card;
  }

  // <tr class="row" role="row" data-device="ID" data-online="true" data-led="on">
  //   <td class="c-name"><a class="open" href="#board=ID"><span data-field="name">NAME</span></a>
  //     <span class="card-id" data-field="id">ID</span></td>
  //   <td class="c-state"><span class="badge" data-field="online">online</span>
  //     <span class="update" data-field="update">downloading 40%</span>
  //     <span class="wait-tag" data-field="waiting" title="…">waiting</span>    (see waiting)
  //     <span class="new-tag" data-field="new">new</span>       (connected without an account; not for admins)
  //     <button class="new-tag" data-action="adopt" aria-label="Adopt NAME">new · adopt</button></td>  (admins)
  //   <td class="c-led"><span class="led" data-field="led">ON</span> <span class="note" data-field="command"></span></td>
  //   <td class="c-count" data-field="count">42</td>
  //   <td class="c-seen"><time data-field="last-seen">just now</time></td>
  //   <td class="c-fw" data-field="firmware">devicefw 1.2</td>
  //   <td class="c-tags" data-field="tags">kitchen porch</td>
  //   <td class="c-toggle"><button class="toggle" data-action="toggle" aria-label="Toggle LED of NAME">Toggle</button></td>
  // </tr>
  // Every cell is one line of a fixed height (see style.css): a row's
  // layout never depends on another's.
  function buildRowPrototype() {
    const row = box("tr", "row", { role: "row" });
    const cell = (cls) => box("td", cls, { role: "cell" });

    const name = cell("c-name");
    const open = box("a", "open");
    open.append(el("span", "card-name", { "data-field": "name" }));
    name.append(open, " ", el("span", "card-id", { "data-field": "id" }));

    const state = cell("c-state");
    const wait = box("span", "wait-tag", { "data-field": "waiting", title: "Waiting for first connection", hidden: "" });
    wait.textContent = "waiting";
    const tag = box("span", "new-tag", { "data-field": "new", title: "Connected without an account; an admin can adopt it", hidden: "" });
    tag.textContent = "new";
    const adopt = box("button", "new-tag", { type: "button", "data-action": "adopt", hidden: "" });
    adopt.textContent = "new · adopt";
    state.append(el("span", "badge", { "data-field": "online" }), " ", el("span", "update", { "data-field": "update" }), " ", wait, tag, adopt);

    const led = cell("c-led");
    led.append(el("span", "led", { "data-field": "led" }), " ", el("span", "note", { "data-field": "command", role: "status" }));

    const count = el("td", "c-count", { role: "cell", "data-field": "count" });
    const seen = cell("c-seen");
    seen.append(el("time", null, { "data-field": "last-seen" }));
    const fw = el("td", "c-fw", { role: "cell", "data-field": "firmware" });
    const tags = el("td", "c-tags", { role: "cell", "data-field": "tags" });
    const toggle = cell("c-toggle");
    const btn = box("button", "toggle", { type: "button", "data-action": "toggle" });
    btn.textContent = "Toggle";
    toggle.append(btn);

    row.append(name, state, led, count, seen, fw, tags, toggle);
    return row;
  }

  const protos = {
    card: buildCardPrototype("article"),
    row: buildRowPrototype(),
    detail: buildCardPrototype("div"),
  };

  // createView makes a card, a row or the board page's summary for id.
  function createView(id, kind) {
    const root = protos[kind].cloneNode(true);
    root.setAttribute("data-device", id);
    const f = (name) => root.querySelector(`[data-field="${name}"]`);
    const v = {
      root,
      kind,
      name: f("name"),
      id: f("id"),
      online: f("online"),
      led: f("led"),
      count: f("count"),
      info: f("info"), // cards only
      firmware: f("firmware"),
      update: f("update"),
      fwLine: root.querySelector(".fw-line"), // cards only
      tags: f("tags"),
      note: f("command"),
      seen: f("last-seen"),
      waiting: f("waiting"),
      newLine: root.querySelector(".new-line"), // cards only
      newTag: f("new"),
      newText: root.querySelector(".new-text"), // cards only
      adopt: root.querySelector('[data-action="adopt"]'),
      forget: root.querySelector('[data-action="forget"]'), // cards only
      button: root.querySelector('[data-action="toggle"]'),
      c: Object.create(null), // cache of what the DOM currently shows
      searchKey: "",
      shown: true,
      k1: "",
      k2: idKey(id),
    };
    v.id.firstChild.data = id;
    // A card's or row's name opens the board's page (the page's own is text).
    if (kind !== "detail") root.querySelector("a.open").setAttribute("href", "#board=" + encodeURIComponent(id));
    return v;
  }

  // setText writes text into v's field key when it changed (a field the
  // view does not have is only cached), and reports whether it changed.
  function setText(v, key, text) {
    if (v.c[key] === text) return false;
    v.c[key] = text;
    const node = v[key];
    if (node) node.firstChild.data = text;
    return true;
  }

  function setAttr(v, key, node, attr, value) {
    if (v.c[key] === value || !node) return;
    v.c[key] = value;
    if (value === null || value === false) node.removeAttribute(attr);
    else node.setAttribute(attr, value === true ? "" : value);
  }

  function setHidden(node, hidden) {
    if (node && node.hidden !== hidden) node.hidden = hidden;
  }

  function infoText(info) {
    if (!info || typeof info !== "object") return "";
    const parts = [];
    if (typeof info.board === "string" && info.board) parts.push(info.board);
    if (typeof info.ip === "string" && info.ip) parts.push(info.ip);
    if (typeof info.interval_ms === "number") parts.push("every " + info.interval_ms + " ms");
    return parts.join(" · ");
  }

  function relTime(ms, now) {
    if (ms === null) return "never";
    const s = Math.floor((now - ms) / 1000);
    // Under 2 s reads "just now": a board reporting every second then keeps a
    // steady text instead of flipping between "0 s" and "1 s" (fewer DOM writes).
    if (s < 2) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  // filtered reports whether a filter (text, state or tag) is on.
  const filtered = () => list.text !== "" || list.state !== "" || list.tag !== "";

  function matches(v, d) {
    if (list.text !== "" && !v.searchKey.includes(list.text)) return false;
    switch (list.state) {
      case "online": if (!d.online) return false; break;
      case "offline": if (d.online) return false; break;
      case "updating": if (!updating(d)) return false; break;
      case "failed": if (!updateFailed(d)) return false; break;
    }
    return list.tag === "" || d.tags.includes(list.tag);
  }

  function applyFilter(v, d) {
    if (v.kind === "detail") return;
    const show = matches(v, d);
    if (show === v.shown) return;
    v.shown = show;
    v.root.hidden = !show;
  }

  function render(v, d, now) {
    const name = displayName(d);
    const tagText = d.tags.join(" ");
    if (setText(v, "name", name)) {
      v.id.hidden = name === d.id;
      v.button.setAttribute("aria-label", "Toggle LED of " + name);
      v.adopt.setAttribute("aria-label", "Adopt " + name);
      if (v.forget) v.forget.setAttribute("aria-label", "Forget " + name);
    }
    if (v.c.keyName !== name || v.c.keyTags !== tagText) {
      v.c.keyName = name;
      v.c.keyTags = tagText;
      v.searchKey = (d.id + "\n" + name + "\n" + tagText).toLowerCase();
    }
    setText(v, "online", d.online ? "online" : "offline");
    setAttr(v, "a-online", v.root, "data-online", d.online ? "true" : "false");
    const led = d.led || "?";
    setText(v, "led", v.kind === "row" ? led : "LED " + led);
    setAttr(v, "a-led", v.root, "data-led", d.led ? d.led.toLowerCase() : "unknown");
    setText(v, "count", d.count === null ? "–" : String(d.count));
    const meta = infoText(d.info);
    if (setText(v, "info", meta)) setHidden(v.info, meta === "");
    const fw = firmwareOf(d);
    if (setText(v, "firmware", fw) && v.kind !== "row") setHidden(v.firmware, fw === "");
    const up = cardUpdate(d, now);
    if (setText(v, "update", up)) setHidden(v.update, up === "");
    setAttr(v, "a-update", v.root, "data-update", up ? d.update.state : null);
    setAttr(v, "a-update-title", v.update, "title",
      up && typeof d.update.version === "string" && d.update.version ? "update to " + d.update.version : null);
    setAttr(v, "a-fw-line", v.fwLine, "hidden", fw === "" && up === "");
    if (setText(v, "tags", tagText) && v.kind !== "row") setHidden(v.tags, tagText === "");
    setText(v, "seen", relTime(d.lastSeen, now));
    setAttr(v, "a-seen", v.seen, "datetime",
      d.lastSeen === null ? null : new Date(d.lastSeen).toISOString());
    const wait = waiting(d);
    setAttr(v, "a-waiting", v.root, "data-waiting", wait);
    setAttr(v, "a-waiting-shown", v.waiting, "hidden", !wait);
    renderNew(v, d);
    setAttr(v, "a-stale", v.root, "data-stale", d.stale || !conn.open);
    setAttr(v, "a-disabled", v.button, "disabled", !(conn.open && d.online));
    setAttr(v, "a-busy", v.button, "aria-busy", d.pending ? "true" : null);
    setAttr(v, "a-pending", v.root, "data-pending", d.pending ? "true" : null);
    if (setText(v, "note", d.note)) setHidden(v.note, d.note === "");
    if (v.note && v.kind === "row") setAttr(v, "a-note-title", v.note, "title", d.note || null);
    applyFilter(v, d);
  }

  // renderNew shows whether the board connected without an account: a
  // "new" tag, and for admins Adopt (and Forget, on cards).
  function renderNew(v, d) {
    const admin = role === "admin";
    const key = (d.isNew ? "new" : "") + (admin ? " admin" : "");
    if (v.c.fresh === key) return;
    v.c.fresh = key;
    setAttr(v, "a-new", v.root, "data-new", d.isNew ? "true" : null);
    if (v.kind === "row") {
      setHidden(v.newTag, !d.isNew || admin);
      setHidden(v.adopt, !d.isNew || !admin);
      return;
    }
    setHidden(v.newLine, !d.isNew);
    setHidden(v.adopt, !admin);
    setHidden(v.forget, !admin);
    // Everyone else sees the tag alone: where anonymous access is on, every
    // board may be new, and a sentence on each card would be noise.
    v.newText.firstChild.data = admin ? "Connected without an account." : "";
    if (admin) v.newTag.removeAttribute("title");
    else v.newTag.title = "Connected without an account; an admin can adopt it";
  }

  // cardUpdate is what a card says of its board's update: the state while
  // a job runs ("downloading 40%", "verifying", "installing", "restarting",
  // "trial"), the outcome when the last job failed or rolled back ("failed:
  // checksum", "rolled back: crashed", until the next job), "confirmed" for
  // a minute after it arrives live, and nothing otherwise (no report, or a
  // confirmed job from before the page connected: old news).
  function cardUpdate(d, now) {
    const u = d.update;
    if (!u) return "";
    if (u.state === "confirmed") return d.updateAt && now - d.updateAt < confirmedFor ? "confirmed" : "";
    return updateText(u);
  }

  function setUpdate(d, u, live) {
    clearTimeout(d.updateTimer);
    d.update = u;
    d.updateAt = live ? Date.now() : 0;
    d.updateTimer = live && u.state === "confirmed" ? setTimeout(() => markDirty(d.id), confirmedFor + 100) : 0;
    if (updates) updates.onDeviceUpdate(u);
  }

  // The board page's live summary: a view of one board outside the list.
  let detail = null; // {id, v}
  let tagsChanged = false; // a board's tags changed: the tag picker is redrawn in the next batch

  function flush() {
    cancelAnimationFrame(rafHandle);
    clearTimeout(fallbackHandle);
    flushQueued = false;
    const now = Date.now();
    const kind = layout === "table" ? "row" : "card";
    for (const id of dirty) {
      const d = devices.get(id);
      if (detail && detail.id === id) renderDetail(d, now);
      let v = views.get(id);
      if (!d) {
        if (v) {
          v.root.remove();
          unplace(v, id);
          views.delete(id);
        }
        continue;
      }
      if (!v) {
        v = createView(id, kind);
        views.set(id, v);
        render(v, d, now);
        v.k1 = primaryKey(v, d);
        place(v, id);
        continue;
      }
      render(v, d, now);
      if (list.sort !== "id") {
        const k1 = primaryKey(v, d);
        if (k1 !== v.k1) { // what the list is sorted by changed
          unplace(v, id);
          v.k1 = k1;
          place(v, id);
        }
      }
    }
    dirty.clear();
    if (tagsChanged) {
      tagsChanged = false;
      renderTagOptions();
    }
    renderSummary();
  }

  function renderDetail(d, now) {
    render(detail.v, d || blankDevice(detail.id), now);
    const name = d ? displayName(d) : detail.id;
    const title = name === detail.id ? name : `${name} (${detail.id})`;
    if (ui.boardTitle.textContent !== title) ui.boardTitle.textContent = title;
    const doc = title + " · Switchyard";
    if (document.title !== doc) document.title = doc;
    // The page's name and tags form follows the board's.
    const meta = d ? [d.configName || "", name, d.tags.join(" ")].join("\n") : "";
    if (meta !== detail.meta) {
      detail.meta = meta;
      if (board) board.metaChanged(detail.id);
    }
  }

  let lastSummary = "";
  function renderSummary() {
    let online = 0;
    let shown = 0;
    for (const d of devices.values()) if (d.online) online++;
    for (const v of views.values()) if (v.shown) shown++;
    const n = devices.size;
    const text = `${n} ${n === 1 ? "board" : "boards"}, ${online} online`;
    const shownText = filtered() && shown !== n ? ` · ${shown} shown` : "";
    const emptyText = n === 0
      ? "No boards yet. A board appears here as soon as it connects" + (role === "admin" ? ", or add one with Add board." : ".")
      : shown === 0 ? "No boards match the filter." : "";
    const key = text + "|" + shownText + "|" + emptyText;
    if (key === lastSummary) return;
    lastSummary = key;
    ui.summaryText.textContent = text;
    ui.summaryShown.textContent = shownText;
    ui.empty.textContent = emptyText;
    ui.empty.hidden = emptyText === "";
    setHidden(ui.tableWrap, layout !== "table" || shown === 0);
  }

  // "Last seen" ticks every second; only texts that change are written.
  setInterval(() => {
    if (document.hidden) return;
    const now = Date.now();
    for (const [id, v] of views) {
      if (!v.shown) continue;
      const d = devices.get(id);
      if (d) setText(v, "seen", relTime(d.lastSeen, now));
    }
    if (detail) {
      const d = devices.get(detail.id);
      if (d) setText(detail.v, "seen", relTime(d.lastSeen, now));
    }
  }, 1000);

  function refilter() {
    const now = Date.now();
    for (const [id, v] of views) {
      const d = devices.get(id);
      if (!d) continue;
      applyFilter(v, d);
      if (v.shown) setText(v, "seen", relTime(d.lastSeen, now));
    }
    renderSummary();
  }

  ui.filter.addEventListener("input", () => {
    list.text = ui.filter.value.trim().toLowerCase();
    refilter();
    // The URL follows the typing once it pauses.
    clearTimeout(urlTimer);
    urlTimer = setTimeout(writeListURL, 300);
  });

  ui.stateFilter.addEventListener("change", () => {
    list.state = states.includes(ui.stateFilter.value) ? ui.stateFilter.value : "";
    refilter();
    writeListURL();
  });

  ui.tagFilter.addEventListener("change", () => {
    list.tag = ui.tagFilter.value;
    refilter();
    writeListURL();
    renderTagOptions();
  });

  // The tags to filter by: every tag of a known board, and the one the URL
  // asks for even while no board has it (yet).
  let tagOptionsKey = null;
  function renderTagOptions() {
    const all = new Set();
    for (const d of devices.values()) for (const t of d.tags) all.add(t);
    if (list.tag) all.add(list.tag);
    const tags = Array.from(all).sort((a, b) => cmp(natKey(a), natKey(b)));
    const key = tags.join("\n") + "|" + list.tag;
    if (key === tagOptionsKey) return;
    tagOptionsKey = key;
    ui.tagFilter.replaceChildren(new Option("Any tag", ""), ...tags.map((t) => new Option("Tag " + t, t)));
    ui.tagFilter.value = list.tag;
    setHidden(ui.tagPick, tags.length === 0);
  }

  // ------------------------------------------------------ sort and layout

  function setSort(col, dir) {
    if (!sortCols.includes(col)) col = "id";
    if (col === list.sort && dir === list.dir) return;
    list.sort = col;
    list.dir = dir;
    resort();
    writeListURL();
  }

  // renderSortControls shows the sort in the select and the table's headers.
  function renderSortControls() {
    if (ui.sort.value !== list.sort) ui.sort.value = list.sort;
    for (const th of ui.table.querySelectorAll("th")) {
      const btn = th.querySelector(`[data-sort="${list.sort}"]`);
      if (btn) th.setAttribute("aria-sort", list.dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    for (const b of ui.table.querySelectorAll("[data-sort]")) {
      const on = b.dataset.sort === list.sort;
      if (on) b.dataset.dir = list.dir > 0 ? "asc" : "desc";
      else delete b.dataset.dir;
    }
  }

  ui.sort.addEventListener("change", () => setSort(ui.sort.value, 1));

  // A column's header sorts by it; again, the other way round.
  ui.table.querySelector("thead").addEventListener("click", (ev) => {
    const btn = ev.target instanceof Element ? ev.target.closest("[data-sort]") : null;
    if (!btn) return;
    const col = btn.dataset.sort;
    setSort(col, col === list.sort ? -list.dir : 1);
  });

  function readLayout() {
    try {
      return localStorage.getItem(layoutKey) === "table" ? "table" : "cards";
    } catch {
      return "cards"; // storage refused (a private window's policy): cards
    }
  }

  // setLayout draws every board as a card or as a row: the views of the
  // other layout are dropped and made anew in the next batch.
  function setLayout(mode, keep) {
    mode = mode === "table" ? "table" : "cards";
    if (keep) {
      try {
        localStorage.setItem(layoutKey, mode);
      } catch {
        // not kept: this page still switches
      }
    }
    for (const b of document.querySelectorAll("[data-layout]")) b.setAttribute("aria-pressed", String(b.dataset.layout === mode));
    if (mode === layout && views.size > 0) return;
    layout = mode;
    for (const v of views.values()) v.root.remove();
    views.clear();
    sortedIds.length = 0;
    ui.cards.hidden = mode !== "cards";
    lastSummary = "";
    markAllDirty();
    flush();
  }

  for (const b of document.querySelectorAll("[data-layout]")) {
    b.addEventListener("click", () => setLayout(b.dataset.layout, true));
  }

  // Another tab of this browser chose the other layout: follow it.
  window.addEventListener("storage", (ev) => {
    if (ev.key === layoutKey) setLayout(readLayout(), false);
  });

  // ------------------------------------------------------------ toast

  let toastTimer = 0;
  function toast(message) {
    ui.toast.textContent = message;
    ui.toast.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      ui.toast.classList.remove("show");
      ui.toast.textContent = "";
    }, 5000);
  }

  // ------------------------------------------------------------ connection

  const conn = {
    ws: null,
    open: false,
    attempt: 0,
    openedAt: 0,
    retryTimer: 0,
    retryAt: 0,
    tickTimer: 0,
    // Per (re)connect "generation": resync bookkeeping.
    gen: 0,
    seen: new Map(), // id -> Set of labels received via WS in this generation
    touched: new Set(), // ids that got a WS event in this generation
    removed: new Set(), // ids removed in this generation
    apiIds: null, // Set of ids from /api/devices once applied in this generation
    fallbackTimer: 0,
  };

  function wsURL() {
    const u = new URL("ws", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.search = token ? "?token=" + encodeURIComponent(token) : "";
    u.hash = "";
    return u.href;
  }

  function apiHeaders() {
    const h = { Accept: "application/json" };
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  function setStatus(state, text) {
    ui.conn.dataset.state = state;
    const offline = navigator.onLine === false && state !== "connected";
    const full = offline ? "offline — " + text : text;
    if (ui.connText.textContent !== full) ui.connText.textContent = full;
    ui.retry.hidden = state !== "reconnecting";
  }

  function connect() {
    clearTimeout(conn.retryTimer);
    clearInterval(conn.tickTimer);
    conn.retryTimer = 0;
    if (conn.ws) return;
    setStatus("connecting", "connecting…");
    let sock;
    try {
      sock = new WebSocket(wsURL());
    } catch (err) {
      scheduleReconnect(false);
      return;
    }
    conn.ws = sock;
    sock.onopen = () => {
      if (sock !== conn.ws) return;
      conn.open = true;
      conn.openedAt = Date.now();
      ui.login.hidden = true;
      setStatus("connected", "connected");
      beginResync();
    };
    sock.onmessage = (ev) => {
      if (sock !== conn.ws) return;
      onFrame(ev.data);
    };
    sock.onerror = () => {}; // a close event always follows
    sock.onclose = () => {
      if (sock !== conn.ws) return;
      const wasOpen = conn.open;
      conn.ws = null;
      conn.open = false;
      clearTimeout(conn.fallbackTimer);
      // A connection that lived a while resets the backoff; a flapping one does not.
      if (wasOpen && Date.now() - conn.openedAt > 5000) conn.attempt = 0;
      markAllDirty(); // buttons off, cards stale
      scheduleReconnect(!wasOpen);
    };
  }

  function scheduleReconnect(neverOpened) {
    const base = Math.min(10000, 500 * 2 ** conn.attempt);
    conn.attempt = Math.min(conn.attempt + 1, 10);
    const delay = Math.min(10000, Math.round(base * (0.75 + Math.random() * 0.5)));
    conn.retryAt = Date.now() + delay;
    conn.retryTimer = setTimeout(connect, delay);
    const tick = () => {
      const s = Math.max(1, Math.ceil((conn.retryAt - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${s} s…`);
    };
    tick();
    clearInterval(conn.tickTimer);
    conn.tickTimer = setInterval(tick, 250);
    // A connection closed by the server may mean the user was disabled or
    // deleted, a handshake refused before opening that the session
    // expired: checked at once after a close, then now and then, not on
    // every retry.
    if (!neverOpened || conn.attempt % 3 === 1) probeAuth();
  }

  function reconnectNow() {
    if (conn.ws || !conn.retryTimer) return;
    conn.attempt = Math.max(0, conn.attempt - 1);
    connect();
  }

  ui.retry.addEventListener("click", reconnectNow);
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && conn.retryAt - Date.now() > 2000) reconnectNow();
  });

  // probeAuth asks the dashboard's own address whether this page may still
  // have it: without credentials it answers with a redirect to /login.
  // Not the API, whose 401 asks for HTTP Basic credentials: a browser
  // answers that with its own login prompt, and the fetch waits for it.
  function probeAuth() {
    fetch("./" + location.search, { method: "HEAD", cache: "no-store", credentials: "same-origin", redirect: "manual" })
      .then((r) => { if (r.type === "opaqueredirect") loggedOut(); })
      .catch(() => {});
  }

  // loggedOut: the control plane no longer takes this page's credentials
  // (logged out elsewhere, the user disabled or deleted, the session
  // expired). A page with a session goes to the login form, as a reload
  // would; one opened with ?token= offers the link and keeps retrying.
  function loggedOut() {
    ui.login.hidden = false;
    if (token) {
      toast("The control plane refused this page's token.");
      return;
    }
    clearTimeout(conn.retryTimer);
    clearInterval(conn.tickTimer);
    conn.retryTimer = 0;
    setStatus("disconnected", "logged out");
    location.replace("login");
  }

  // --------------------------------------------------------------- resync

  // On every (re)connect the server's snapshot plus /api/devices are the
  // truth: every card is stale until either confirms it; cards neither of
  // them knows are dropped once /api/devices has answered.
  function beginResync() {
    loadGroups();
    loadMe();
    if (updates) updates.connected();
    if (board) board.connected();
    if (audit) audit.connected();
    if (users) users.connected();
    conn.gen++;
    conn.seen = new Map();
    conn.touched = new Set();
    conn.removed = new Set();
    conn.apiIds = null;
    for (const d of devices.values()) d.stale = true;
    markAllDirty();
    fetchDevices(conn.gen, 0);
    // Fallback if /api/devices stays unavailable: the snapshot names every
    // known board right after the connection opens, so what it left out is gone.
    clearTimeout(conn.fallbackTimer);
    const gen = conn.gen;
    conn.fallbackTimer = setTimeout(() => {
      if (gen !== conn.gen || !conn.open || conn.apiIds) return;
      for (const [id, d] of devices) if (d.stale && !conn.touched.has(id)) removeDevice(id);
    }, 5000);
  }

  function fetchDevices(gen, tries) {
    fetch("api/devices", { headers: apiHeaders(), cache: "no-store", credentials: "same-origin" })
      .then((r) => {
        if (r.status === 401) {
          ui.login.hidden = false;
          throw new Error("login required");
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then((list) => {
        if (gen !== conn.gen || !conn.open) return;
        applyDeviceList(list);
      })
      .catch((err) => {
        if (gen !== conn.gen || !conn.open) return;
        if (tries === 2) toast("Could not load /api/devices: " + err.message);
        setTimeout(() => {
          if (gen === conn.gen && conn.open) fetchDevices(gen, tries + 1);
        }, Math.min(10000, 1000 * 2 ** tries));
      });
  }

  function applyDeviceList(list) {
    if (!Array.isArray(list)) throw new Error("unexpected answer");
    const ids = new Set();
    for (const item of list) {
      if (!item || typeof item.id !== "string" || item.id === "") continue;
      // Removed after the request left and not heard from since: stay removed.
      if (conn.removed.has(item.id)) continue;
      ids.add(item.id);
      applyDevice(item, false);
    }
    conn.apiIds = ids;
    for (const id of Array.from(devices.keys())) {
      if (!ids.has(id) && !conn.touched.has(id)) removeDevice(id);
    }
    renderTagOptions();
  }

  // applyDevice takes one board of the API; what /ws said of it since the
  // connection opened is newer, except with after, an answer read after
  // this page changed the board (added, adopted): its "new" is the truth.
  function applyDevice(item, after) {
    const id = item.id;
    const d = devices.get(id) || newDevice(id);
    const labels = conn.seen.get(id);
    const fromWS = (l) => labels !== undefined && labels.has(l);

    const info = item.info && typeof item.info === "object" ? item.info : null;
    const name = typeof item.name === "string" ? item.name : "";
    const infoName = info && typeof info.name === "string" ? info.name : "";
    if (!fromWS("meta")) d.configName = name && name !== id && name !== infoName ? name : null;
    if (!fromWS("info")) d.info = info;
    if (!fromWS("online")) d.online = item.online === true;
    if (!fromWS("ledStatus")) d.led = normLed(item.led);
    if (!fromWS("count")) d.count = normCount(item.count);
    if (!fromWS("meta")) d.tags = normTags(item.tags);
    d.firmware = typeof item.firmware === "string" ? item.firmware : null;
    if (after || !fromWS("new")) d.isNew = item.new === true;

    const t = typeof item.last_seen === "string" ? Date.parse(item.last_seen) : NaN;
    const apiSeen = Number.isFinite(t) ? t : null;
    if (d.liveGen === conn.gen && d.lastSeen !== null) {
      if (apiSeen !== null && apiSeen > d.lastSeen) d.lastSeen = apiSeen;
    } else {
      d.lastSeen = apiSeen;
    }
    d.stale = false;
    markDirty(id);
  }

  // refreshDevice reads board id again after this page changed it: added
  // (it shows at once, waiting for its first connection), adopted (no
  // longer new) or forgotten (gone).
  function refreshDevice(id) {
    apiCall("GET", "api/devices/" + encodeURIComponent(id))
      .then((item) => {
        if (!item || item.id !== id) return;
        conn.removed.delete(id);
        conn.touched.add(id); // a list read before this must not drop it
        applyDevice(item, true);
        renderTagOptions();
      })
      .catch((err) => {
        if (err.status === 404) removeDevice(id);
      });
  }

  // --------------------------------------------------------------- events

  function onFrame(data) {
    if (typeof data !== "string") return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (Array.isArray(msg)) for (const e of msg) onEvent(e);
    else onEvent(msg);
  }

  function onEvent(e) {
    if (!e || typeof e !== "object" || Array.isArray(e)) return;
    if (typeof e.event === "string") { // an event of the control plane, not of a board
      if (e.event === "rollout" && updates) updates.onRollout(e);
      return;
    }
    const label = e.label;
    const id = typeof e.device === "string" && e.device !== "" ? e.device : null;

    if (label === "error") {
      const text = typeof e.value === "string" ? e.value : JSON.stringify(e.value);
      toast(id ? `${id}: ${text}` : text);
      const d = id && devices.get(id);
      if (d && d.pending) setPending(d, false);
      return;
    }
    if (id === null) return;
    if (label === "removed") {
      conn.removed.add(id);
      conn.touched.delete(id);
      conn.seen.delete(id);
      removeDevice(id);
      return;
    }

    if (label === "meta") {
      onMeta(id, e.value);
      return;
    }

    if (label === "command") {
      onCommand(id, e.value);
      if (board) board.onEvent(id, label);
      return;
    }

    let value;
    switch (label) {
      case "ledStatus": value = normLed(e.value); break;
      case "count": value = normCount(e.value); break;
      case "online": value = normOnline(e.value); break;
      case "info":
      case "update":
        value = e.value && typeof e.value === "object" && !Array.isArray(e.value) ? e.value : null;
        break;
      default: return; // unknown label: ignore
    }
    if (value === null) return;

    const d = devices.get(id) || newDevice(id);
    conn.removed.delete(id);
    conn.touched.add(id);
    let labels = conn.seen.get(id);
    if (!labels) conn.seen.set(id, (labels = new Set()));
    // The first event per board and label after a (re)connect is most likely
    // the snapshot, which says nothing about when the board last spoke;
    // /api/devices supplies last_seen for those. Everything else is live.
    const snapshot = !labels.has(label) && !(conn.apiIds && !conn.apiIds.has(id));
    labels.add(label);
    // A board declared (Add board) is announced offline: that is not the
    // board speaking, and one never seen stays never seen.
    const declared = label === "online" && value === false && d.lastSeen === null;
    if (!snapshot && !declared) {
      d.lastSeen = Date.now();
      d.liveGen = conn.gen;
    }
    d.stale = false;

    switch (label) {
      case "ledStatus":
        d.led = value;
        if (d.pending) setPending(d, false);
        break;
      case "count": d.count = value; break;
      case "online": d.online = value; break;
      case "info": d.info = value; break;
      case "update": setUpdate(d, value, !snapshot); break;
    }
    markDirty(id);
    if (board && !snapshot) board.onEvent(id, label);
  }

  // meta: the board's name or tags changed (PATCH /api/devices/<id>), or
  // the snapshot gives those set in config or by PATCH. It says nothing of
  // the board itself: no last seen, no staleness.
  function onMeta(id, v) {
    if (!v || typeof v !== "object" || Array.isArray(v)) return;
    const d = devices.get(id) || newDevice(id);
    conn.removed.delete(id);
    conn.touched.add(id);
    let labels = conn.seen.get(id);
    if (!labels) conn.seen.set(id, (labels = new Set()));
    labels.add("meta");
    if (Array.isArray(v.tags)) {
      d.tags = normTags(v.tags);
      tagsChanged = true;
    }
    if (typeof v.name === "string") {
      const infoName = d.info && typeof d.info.name === "string" ? d.info.name : "";
      d.configName = v.name && v.name !== id && v.name !== infoName ? v.name : null;
    }
    if (typeof v.new === "boolean") {
      d.isNew = v.new;
      labels.add("new");
    }
    markDirty(id);
  }

  // --------------------------------------------------------------- toggle

  // The control plane tracks every command until the board confirms it:
  // pending, then applied, timeout or offline. Any browser's command shows
  // as pending on every dashboard.
  function onCommand(id, v) {
    const d = devices.get(id);
    if (!d || !v || typeof v !== "object") return;
    switch (v.state) {
      case "pending": setPending(d, true); break;
      case "applied": setPending(d, false); setNote(d, ""); break;
      case "timeout":
        setPending(d, false);
        setNote(d, "No answer from the board to " + v.command + ".");
        break;
      case "offline":
        setPending(d, false);
        setNote(d, "Not sent: the board is offline.");
        break;
    }
  }

  function setNote(d, text) {
    clearTimeout(d.noteTimer);
    d.note = text;
    d.noteTimer = text ? setTimeout(() => setNote(d, ""), 8000) : 0;
    markDirty(d.id);
  }

  function setPending(d, on) {
    clearTimeout(d.pendingTimer);
    d.pending = on;
    // The server reports a timeout; this only guards against a lost event.
    d.pendingTimer = on ? setTimeout(() => setPending(d, false), 15000) : 0;
    markDirty(d.id);
  }

  // ---------------------------------------------------------------- groups

  function sendGroup(group, action) {
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) {
      toast("Not connected to the control plane.");
      return;
    }
    conn.ws.send(JSON.stringify({ group, action }));
  }

  ui.groups.addEventListener("click", (ev) => {
    const btn = ev.target instanceof Element ? ev.target.closest("[data-group-action]") : null;
    if (!btn) return;
    sendGroup(ui.groupSelect.value, btn.getAttribute("data-group-action"));
  });

  function loadGroups() {
    fetch("api/groups", { headers: apiHeaders(), cache: "no-store", credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((groups) => {
        if (!groups || typeof groups !== "object") return;
        const names = Object.keys(groups).filter((n) => n !== "all").sort();
        if (updates) updates.setGroups(names);
        const keep = ui.groupSelect.value;
        ui.groupSelect.replaceChildren(new Option("All boards", "all"),
          ...names.map((n) => new Option(n + " (" + groups[n].length + ")", n)));
        if (names.includes(keep)) ui.groupSelect.value = keep;
      })
      .catch(() => {}); // the group bar still works for "all"
  }

  // A new board's Adopt (cards, rows, the board page) opens the dialog;
  // Forget (cards) forgets it after a second click.
  ui.main.addEventListener("click", (ev) => {
    const btn = ev.target instanceof Element ? ev.target.closest('[data-action="adopt"], [data-action="forget"]') : null;
    if (!btn || btn.disabled || !onboard) return;
    const card = btn.closest("[data-device]");
    const id = card && card.getAttribute("data-device");
    if (!id) return;
    if (btn.dataset.action === "adopt") onboard.adopt(id);
    else onboard.forget(id, btn);
  });

  // Every toggle (cards, rows, the board page) sends its board's toggle.
  ui.main.addEventListener("click", (ev) => {
    const btn = ev.target instanceof Element ? ev.target.closest('[data-action="toggle"]') : null;
    if (!btn || btn.disabled) return;
    const card = btn.closest("[data-device]");
    const id = card && card.getAttribute("data-device");
    const d = id && devices.get(id);
    if (!d) return;
    if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) {
      toast("Not connected to the control plane.");
      return;
    }
    conn.ws.send(JSON.stringify({ device: id, action: "toggle" }));
    setPending(d, true);
    flush(); // show the pending state at once
  });

  // ------------------------------------------------------------------- api

  // apiCall sends a request to the API and resolves with its JSON answer
  // (null when empty), or rejects with an Error carrying the answer's
  // {"error"} message.
  function apiCall(method, path, body, contentType) {
    const headers = apiHeaders();
    if (contentType) headers["Content-Type"] = contentType;
    return fetch(path, { method, headers, body, cache: "no-store", credentials: "same-origin" })
      .catch((err) => { throw new Error("no answer from the control plane (" + err.message + ")"); })
      .then((r) => r.text().then((text) => answer(r.status, text)));
  }

  // uploadFile POSTs file as the raw body (XMLHttpRequest: fetch cannot
  // report an upload's progress), resolving as apiCall does.
  function uploadFile(path, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      const headers = apiHeaders();
      for (const k in headers) xhr.setRequestHeader(k, headers[k]);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        try {
          resolve(answer(xhr.status, xhr.responseText));
        } catch (err) {
          reject(err);
        }
      };
      xhr.onerror = () => reject(new Error("no answer from the control plane"));
      xhr.send(file);
    });
  }

  // answer decodes an API answer: its JSON for 2xx, else an Error with its
  // message ({"error": …}, else the status and text).
  function answer(status, text) {
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (status >= 200 && status < 300) return data;
    let msg = data && typeof data.error === "string" ? data.error : "HTTP " + status;
    if (status === 401) {
      ui.login.hidden = false;
      msg += " (log in again)";
    }
    const err = new Error(msg);
    err.status = status;
    throw err;
  }

  // ----------------------------------------------------------------- views

  // The caller's role (GET /api/me) decides what the page offers: the
  // Updates view (#updates), the Users page (#users), the audit log
  // (#audit), Add board and the adoption of new boards are for admins.
  let role = "";
  let myName = ""; // "" when anonymous

  function loadMe() {
    apiCall("GET", "api/me")
      .then((me) => {
        const r = me && typeof me.role === "string" ? me.role : "";
        myName = me && typeof me.name === "string" ? me.name : "";
        const changed = r !== role;
        role = r;
        applyView();
        if (board) board.roleKnown();
        if (changed) markAllDirty(); // adopt buttons on the cards
      })
      .catch(() => {}); // an older control plane: no admin views
  }

  const validID = (id) => /^[A-Za-z0-9_-]{1,64}$/.test(id);

  // route reads the hash: "" (the list), "updates", "audit&actor=NAME",
  // "users", "board=ID".
  function route() {
    const h = location.hash.replace(/^#/, "");
    const p = new URLSearchParams(h);
    if (p.has("board")) return { view: "board", id: p.get("board") || "" };
    if (p.has("updates")) return { view: "updates" };
    if (p.has("audit")) return { view: "audit", actor: p.get("actor") || "" };
    if (p.has("users")) return { view: "users" };
    return { view: "boards" };
  }

  // setHash replaces the hash without a history entry (the audit view's
  // actor filter), keeping the list's query string.
  function setHash(hash) {
    const url = location.pathname + location.search + (hash ? "#" + hash : "");
    if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
  }

  let current = ""; // the view shown
  let listScroll = 0; // where the list was scrolled when the page left it
  let backToList = false; // the board page was opened from the list: Back returns there

  function applyView() {
    const admin = role === "admin";
    const r = route();
    let view = r.view;
    if (view === "updates" && !(admin && updates)) view = "boards";
    if (view === "audit" && !(admin && audit)) view = "boards";
    if (view === "users" && !(admin && users)) view = "boards";
    if (view === "board" && !validID(r.id)) view = "boards";
    ui.views.hidden = !admin;
    ui.addBoard.hidden = !(admin && onboard);
    for (const a of ui.views.querySelectorAll("[data-nav]")) {
      a.hidden = (a.dataset.nav === "updates" && !updates) || (a.dataset.nav === "audit" && !audit) ||
        (a.dataset.nav === "users" && !users);
      const on = a.dataset.nav === view || (a.dataset.nav === "boards" && view === "board");
      if (on) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    const previous = current;
    if (previous === "boards" && view !== "boards") listScroll = window.scrollY;
    if (view === "board") backToList = previous === "boards" || (previous === "board" && backToList);
    current = view;
    document.body.dataset.view = view;
    ui.boardsView.hidden = view !== "boards";
    ui.boardView.hidden = view !== "board";

    if (view === "board") showDetail(r.id);
    else hideDetail();
    if (updates) {
      if (view === "updates") updates.show();
      else updates.hide();
    }
    if (audit) {
      if (view === "audit") audit.show(r.actor);
      else audit.hide();
    }
    if (users) {
      if (view === "users") users.show();
      else users.hide();
    }
    if (view !== "board") document.title = "Switchyard";
    if (previous && previous !== view) {
      if (view === "boards") {
        flush();
        window.scrollTo(0, listScroll);
      } else {
        window.scrollTo(0, 0);
      }
    }
  }

  function showDetail(id) {
    if (detail && detail.id === id) return;
    hideDetail();
    detail = { id, v: createView(id, "detail") };
    ui.boardLive.replaceChildren(detail.v.root);
    renderDetail(devices.get(id), Date.now());
    if (board) board.show(id);
  }

  function hideDetail() {
    if (!detail) return;
    detail.v.root.remove();
    detail = null;
    if (board) board.hide();
  }

  // Back from a board page opened from the list goes back in history, so
  // the list comes back as it was (filter, sort, scroll).
  ui.boardBack.addEventListener("click", (ev) => {
    if (!backToList) return; // opened from a bookmark: the link opens the list
    ev.preventDefault();
    history.back();
  });

  window.addEventListener("hashchange", applyView);

  // boardMeta is what the board page and the adopt dialog prefill: the
  // name given the board ("" for none), the name shown, its tags.
  const boardMeta = (id) => {
    const d = devices.get(id);
    return d ? { name: d.configName || "", shown: displayName(d), tags: d.tags } : null;
  };

  const board = S.boardView ? S.boardView({
    api: apiCall,
    toast,
    meta: boardMeta,
    canEdit: () => role === "operator" || role === "admin",
  }) : null;
  const audit = S.auditView ? S.auditView({ api: apiCall, toast, setHash }) : null;
  const users = S.usersView ? S.usersView({ api: apiCall, toast, me: () => myName }) : null;
  const onboard = S.onboardView ? S.onboardView({
    api: apiCall,
    toast,
    meta: boardMeta,
    changed: refreshDevice,
  }) : null;

  if (onboard) ui.addBoard.addEventListener("click", () => onboard.add());

  const updates = S.updatesView ? S.updatesView({
    api: apiCall,
    upload: uploadFile,
    toast,
    deviceUpdate: (id) => {
      const d = devices.get(id);
      return d ? d.update : null;
    },
  }) : null;

  readListURL();
  ui.filter.value = new URLSearchParams(location.search).get("q") || "";
  ui.stateFilter.value = list.state;
  renderTagOptions();
  setLayout(readLayout(), false);
  renderSortControls();
  applyView();
  renderSummary();
  connect();
})();
