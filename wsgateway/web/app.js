// Switchyard dashboard: one card per board, live over the /ws WebSocket.
//
// Model: `devices` (id -> plain object) is the truth; the DOM is a view of it.
// Every change marks an id dirty; one requestAnimationFrame batch then
// creates, updates (only the text nodes that changed) or removes cards.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    cards: $("cards"),
    empty: $("empty"),
    conn: $("conn"),
    connText: $("conn-text"),
    retry: $("retry"),
    login: $("login"),
    filter: $("filter"),
    summaryText: $("summary-text"),
    summaryShown: $("summary-shown"),
    toast: $("toast"),
    groups: $("groups"),
    groupSelect: $("group"),
    sort: $("sort"),
    views: $("views"),
    boardsView: $("boards-view"),
  };

  // Cards and the Updates view share these words (updates.js).
  const S = window.Switchyard || {};
  const updateText = S.updateText || (() => "");
  // A confirmed update is news for this long after it arrives; then the
  // card's update field goes quiet (see cardUpdate).
  const confirmedFor = 60000;

  // A page opened as /?token=... passes the API token on (see CONTRACT "Access").
  const token = new URLSearchParams(location.search).get("token");

  // Go's sort.Strings order (byte-wise for ASCII ids), not localeCompare.
  const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  // ---------------------------------------------------------------- model

  /** @type {Map<string, object>} */
  const devices = new Map();

  function newDevice(id) {
    const d = {
      id,
      configName: null, // name given by /api/devices that did not come from info
      info: null,
      online: false,
      led: null, // "ON" | "OFF" | null (unknown)
      count: null,
      lastSeen: null, // ms since epoch
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
    devices.set(id, d);
    return d;
  }

  function displayName(d) {
    if (d.configName) return d.configName;
    const n = d.info && typeof d.info.name === "string" ? d.info.name.trim() : "";
    return n || d.id;
  }

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
    queueFlush();
  }

  function queueFlush() {
    if (flushQueued) return;
    flushQueued = true;
    rafHandle = requestAnimationFrame(flush);
    // rAF does not run in hidden tabs; keep the DOM roughly current anyway.
    fallbackHandle = setTimeout(flush, 500);
  }

  // ------------------------------------------------------------------ view

  /** @type {Map<string, object>} id -> view (card element and cached texts) */
  const views = new Map();
  /** ids that have a card, sorted by their views' sortKey; mirrors DOM order */
  const sortedIds = [];
  let filterText = "";
  let sortMode = "id"; // "id" or "name"

  // sortKey orders cards: by id (Go's byte order), or by name then id.
  function sortKey(d) {
    return sortMode === "name" ? displayName(d).toLowerCase() + "\u0000" + d.id : d.id;
  }

  function lowerBound(key) {
    let lo = 0;
    let hi = sortedIds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(views.get(sortedIds[mid]).sortKey, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // place puts v's card where its sortKey belongs (it is not in sortedIds).
  function place(v, id) {
    const i = lowerBound(v.sortKey);
    sortedIds.splice(i, 0, id);
    const next = i + 1 < sortedIds.length ? views.get(sortedIds[i + 1]).root : null;
    if (v.root.nextSibling !== next || v.root.parentNode !== ui.cards) ui.cards.insertBefore(v.root, next);
  }

  function unplace(id) {
    const i = sortedIds.indexOf(id);
    if (i >= 0) sortedIds.splice(i, 1);
  }

  function resort() {
    for (const id of sortedIds) {
      const d = devices.get(id);
      if (d) views.get(id).sortKey = sortKey(d);
    }
    sortedIds.sort((a, b) => cmp(views.get(a).sortKey, views.get(b).sortKey));
    const frag = document.createDocumentFragment();
    for (const id of sortedIds) frag.append(views.get(id).root);
    ui.cards.append(frag);
  }

  const cardProto = buildCardPrototype();

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
  //       <span class="card-name" data-field="name">NAME</span>
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
  //   <footer class="card-foot">
  //     <p class="seen">Last seen <time data-field="last-seen">never</time></p>
  //     <button type="button" class="toggle" data-action="toggle" aria-label="Toggle LED of NAME">Toggle LED</button>
  //   </footer>
  // </article>
  function buildCardPrototype() {
    const card = box("article", "card");

    const head = box("header", "card-head");
    const title = box("h2", "card-title");
    title.append(el("span", "card-name", { "data-field": "name" }), " ",
      el("span", "card-id", { "data-field": "id" }));
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
    const note = el("p", "note", { "data-field": "command", role: "status" });

    const foot = box("footer", "card-foot");
    const seen = box("p", "seen");
    seen.append("Last seen ", el("time", null, { "data-field": "last-seen" }));
    const btn = box("button", "toggle", { type: "button", "data-action": "toggle" });
    btn.textContent = "Toggle LED";
    foot.append(seen, btn);

    card.append(head, body, meta, fwLine, note, foot);
    return card;
  }

  function createView(id) {
    const root = cardProto.cloneNode(true);
    root.setAttribute("data-device", id);
    const f = (name) => root.querySelector(`[data-field="${name}"]`);
    const v = {
      root,
      name: f("name"),
      id: f("id"),
      online: f("online"),
      led: f("led"),
      count: f("count"),
      info: f("info"),
      firmware: f("firmware"),
      update: f("update"),
      fwLine: root.querySelector(".fw-line"),
      note: f("command"),
      seen: f("last-seen"),
      button: root.querySelector('[data-action="toggle"]'),
      c: Object.create(null), // cache of what the DOM currently shows
      searchKey: "",
      shown: true,
    };
    v.id.firstChild.data = id;
    return v;
  }

  function setText(v, key, text) {
    if (v.c[key] === text) return false;
    v.c[key] = text;
    v[key].firstChild.data = text;
    return true;
  }

  function setAttr(v, key, node, attr, value) {
    if (v.c[key] === value) return;
    v.c[key] = value;
    if (value === null || value === false) node.removeAttribute(attr);
    else node.setAttribute(attr, value === true ? "" : value);
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

  function matches(v) {
    return filterText === "" || v.searchKey.includes(filterText);
  }

  function applyFilter(v) {
    const show = matches(v);
    if (show === v.shown) return;
    v.shown = show;
    v.root.hidden = !show;
  }

  function render(v, d, now) {
    const name = displayName(d);
    if (setText(v, "name", name)) {
      v.id.hidden = name === d.id;
      v.button.setAttribute("aria-label", "Toggle LED of " + name);
      v.searchKey = (d.id + "\n" + name).toLowerCase();
      applyFilter(v);
    }
    setText(v, "online", d.online ? "online" : "offline");
    setAttr(v, "a-online", v.root, "data-online", d.online ? "true" : "false");
    setText(v, "led", d.led ? "LED " + d.led : "LED ?");
    setAttr(v, "a-led", v.root, "data-led", d.led ? d.led.toLowerCase() : "unknown");
    setText(v, "count", d.count === null ? "–" : String(d.count));
    const meta = infoText(d.info);
    if (setText(v, "info", meta)) v.info.hidden = meta === "";
    const fw = d.info && typeof d.info.firmware === "string" ? d.info.firmware : "";
    if (setText(v, "firmware", fw)) v.firmware.hidden = fw === "";
    const up = cardUpdate(d, now);
    if (setText(v, "update", up)) v.update.hidden = up === "";
    setAttr(v, "a-update", v.root, "data-update", up ? d.update.state : null);
    setAttr(v, "a-update-title", v.update, "title",
      up && typeof d.update.version === "string" && d.update.version ? "update to " + d.update.version : null);
    setAttr(v, "a-fw-line", v.fwLine, "hidden", fw === "" && up === "");
    setText(v, "seen", relTime(d.lastSeen, now));
    setAttr(v, "a-seen", v.seen, "datetime",
      d.lastSeen === null ? null : new Date(d.lastSeen).toISOString());
    setAttr(v, "a-stale", v.root, "data-stale", d.stale || !conn.open);
    setAttr(v, "a-disabled", v.button, "disabled", !(conn.open && d.online));
    setAttr(v, "a-busy", v.button, "aria-busy", d.pending ? "true" : null);
    setAttr(v, "a-pending", v.root, "data-pending", d.pending ? "true" : null);
    if (setText(v, "note", d.note)) v.note.hidden = d.note === "";
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

  function flush() {
    cancelAnimationFrame(rafHandle);
    clearTimeout(fallbackHandle);
    flushQueued = false;
    const now = Date.now();
    for (const id of dirty) {
      const d = devices.get(id);
      let v = views.get(id);
      if (!d) {
        if (v) {
          v.root.remove();
          unplace(id);
          views.delete(id);
        }
        continue;
      }
      if (!v) {
        v = createView(id);
        views.set(id, v);
        v.sortKey = sortKey(d);
        place(v, id);
      }
      render(v, d, now);
      const key = sortKey(d);
      if (key !== v.sortKey) { // a name changed while sorted by name
        unplace(id);
        v.sortKey = key;
        place(v, id);
      }
    }
    dirty.clear();
    renderSummary();
  }

  let lastSummary = "";
  function renderSummary() {
    let online = 0;
    let shown = 0;
    for (const d of devices.values()) if (d.online) online++;
    for (const v of views.values()) if (v.shown) shown++;
    const n = devices.size;
    const text = `${n} ${n === 1 ? "board" : "boards"}, ${online} online`;
    const shownText = filterText && shown !== n ? ` · ${shown} shown` : "";
    const emptyText = n === 0
      ? "No boards yet. A board appears here as soon as it connects."
      : shown === 0 ? "No boards match the filter." : "";
    const key = text + "|" + shownText + "|" + emptyText;
    if (key === lastSummary) return;
    lastSummary = key;
    ui.summaryText.textContent = text;
    ui.summaryShown.textContent = shownText;
    ui.empty.textContent = emptyText;
    ui.empty.hidden = emptyText === "";
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
  }, 1000);

  ui.filter.addEventListener("input", () => {
    filterText = ui.filter.value.trim().toLowerCase();
    const now = Date.now();
    for (const [id, v] of views) {
      applyFilter(v);
      const d = devices.get(id);
      if (v.shown && d) setText(v, "seen", relTime(d.lastSeen, now));
    }
    renderSummary();
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
    // A handshake refused before opening may mean the session expired
    // (checked now and then, not on every retry).
    if (neverOpened && conn.attempt % 3 === 1) probeAuth();
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

  function probeAuth() {
    fetch("api/devices", { headers: apiHeaders(), cache: "no-store", credentials: "same-origin" })
      .then((r) => { if (r.status === 401) ui.login.hidden = false; })
      .catch(() => {});
  }

  // --------------------------------------------------------------- resync

  // On every (re)connect the server's snapshot plus /api/devices are the
  // truth: every card is stale until either confirms it; cards neither of
  // them knows are dropped once /api/devices has answered.
  function beginResync() {
    loadGroups();
    loadMe();
    if (updates) updates.connected();
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
      const id = item.id;
      // Removed after the request left and not heard from since: stay removed.
      if (conn.removed.has(id)) continue;
      ids.add(id);
      const d = devices.get(id) || newDevice(id);
      const labels = conn.seen.get(id);
      const fromWS = (l) => labels !== undefined && labels.has(l);

      const info = item.info && typeof item.info === "object" ? item.info : null;
      const name = typeof item.name === "string" ? item.name : "";
      const infoName = info && typeof info.name === "string" ? info.name : "";
      d.configName = name && name !== id && name !== infoName ? name : null;
      if (!fromWS("info")) d.info = info;
      if (!fromWS("online")) d.online = item.online === true;
      if (!fromWS("ledStatus")) d.led = normLed(item.led);
      if (!fromWS("count")) d.count = normCount(item.count);

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
    conn.apiIds = ids;
    for (const id of Array.from(devices.keys())) {
      if (!ids.has(id) && !conn.touched.has(id)) removeDevice(id);
    }
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

    if (label === "command") {
      onCommand(id, e.value);
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
    if (!snapshot) {
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

  ui.sort.addEventListener("change", () => {
    sortMode = ui.sort.value === "name" ? "name" : "id";
    resort();
  });

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

  ui.cards.addEventListener("click", (ev) => {
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
  // Updates view (#updates) is for admins.
  let role = "";

  function loadMe() {
    apiCall("GET", "api/me")
      .then((me) => {
        role = me && typeof me.role === "string" ? me.role : "";
        applyView();
      })
      .catch(() => {}); // an older control plane: no Updates view
  }

  function applyView() {
    const admin = role === "admin" && updates !== null;
    ui.views.hidden = !admin;
    const view = admin && location.hash === "#updates" ? "updates" : "boards";
    document.body.dataset.view = view;
    ui.boardsView.hidden = view !== "boards";
    for (const a of ui.views.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === view) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    if (!updates) return;
    if (view === "updates") updates.show();
    else updates.hide();
  }

  window.addEventListener("hashchange", applyView);

  const updates = S.updatesView ? S.updatesView({
    api: apiCall,
    upload: uploadFile,
    toast,
    deviceUpdate: (id) => {
      const d = devices.get(id);
      return d ? d.update : null;
    },
  }) : null;

  applyView();
  renderSummary();
  connect();
})();
