// Switchyard dashboard: the audit log (#audit, admins only): who logged in
// (or failed to), switched, forgot, renamed, uploaded or rolled out what,
// from where. app.js owns the page and calls in here (Switchyard.auditView).
//
//   GET api/audit?limit=200&actor=NAME[&until=RFC3339]   entries, newest first
//
// The actor filter is kept in the hash (#audit&actor=NAME), so a filtered
// log can be bookmarked; the log is read again every 10 s while shown.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});

  const pageSize = 200;
  const refreshEvery = 10000;

  const { h } = S.kit;

  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
  const fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const str = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));

  function norm(e) {
    if (!e || typeof e !== "object") return null;
    const t = typeof e.at === "string" ? Date.parse(e.at) : NaN;
    if (!Number.isFinite(t)) return null;
    return { at: e.at, t, actor: str(e.actor), action: str(e.action), target: str(e.target), result: str(e.result), remote: str(e.remote) };
  }

  const key = (e) => [e.at, e.actor, e.action, e.target, e.result, e.remote].join("\u0000");

  /**
   * auditView runs the audit view. app gives it api(method, path) (see
   * boardView), toast(message) and setHash(hash), which replaces the hash
   * without a history entry.
   */
  S.auditView = (app) => {
    const $ = (id) => document.getElementById(id);
    const ui = {
      root: $("audit-view"),
      form: $("audit-form"),
      actor: $("audit-actor"),
      actors: $("audit-actors"),
      refresh: $("audit-refresh"),
      status: $("audit-status"),
      rows: $("audit-rows"),
      empty: $("audit-empty"),
      more: $("audit-more"),
    };

    let shown = false;
    let actor = "";
    let entries = []; // newest first
    let complete = false; // no older entries than the last one
    let gen = 0; // bumped when the filter changes: older answers are dropped
    let timer = 0;
    let typing = 0;
    const actorsSeen = new Set();

    function status(text, kind) {
      ui.status.textContent = text;
      if (kind) ui.status.dataset.status = kind;
      else delete ui.status.dataset.status;
    }

    function path(until) {
      let p = `api/audit?limit=${pageSize}`;
      if (actor) p += "&actor=" + encodeURIComponent(actor);
      if (until) p += "&until=" + encodeURIComponent(until);
      return p;
    }

    // load reads the newest page again (what the page has beyond it, read
    // with "Older entries", is kept).
    function load() {
      const g = gen;
      return app.api("GET", path(""))
        .then((answer) => {
          if (g !== gen) return;
          const list = read(answer);
          if (entries.length > pageSize) {
            // Older pages were read: keep them, new entries go on top.
            entries = newer(list).concat(entries);
          } else {
            entries = list;
            complete = list.length < pageSize;
          }
          status("", "");
          render();
        })
        .catch((err) => {
          if (g !== gen) return;
          if (err.status === 404) status("This control plane keeps no audit log (history.enabled: false).", "error");
          else status("Could not load the audit log: " + err.message, "error");
        });
    }

    // newer returns the entries of list (newest first) that are not shown
    // yet: those after the newest shown, and of its second those not
    // shown as many times.
    function newer(list) {
      const newest = entries[0];
      const held = new Map();
      for (const e of entries) {
        if (e.at !== newest.at) break;
        held.set(key(e), (held.get(key(e)) || 0) + 1);
      }
      return list.filter((e) => {
        if (e.t < newest.t) return false;
        const n = e.at === newest.at ? held.get(key(e)) || 0 : 0;
        if (n > 0) held.set(key(e), n - 1);
        return n === 0;
      });
    }

    // older reads the page before the oldest entry shown: until its second
    // plus one (until is exclusive, times are to the second), skipping what
    // is already shown of that second.
    function older() {
      if (entries.length === 0) return;
      const g = gen;
      const oldest = entries[entries.length - 1];
      ui.more.disabled = true;
      app.api("GET", path(iso(Math.floor(oldest.t / 1000) * 1000 + 1000)))
        .then((answer) => {
          if (g !== gen) return;
          const list = read(answer);
          const held = new Map();
          for (let i = entries.length - 1; i >= 0 && entries[i].at === oldest.at; i--) {
            held.set(key(entries[i]), (held.get(key(entries[i])) || 0) + 1);
          }
          const add = [];
          for (const e of list) {
            if (e.t > oldest.t) continue;
            const n = e.at === oldest.at ? held.get(key(e)) || 0 : 0;
            if (n > 0) {
              held.set(key(e), n - 1);
              continue;
            }
            add.push(e);
          }
          entries = entries.concat(add);
          complete = list.length < pageSize;
          render();
        })
        .catch((err) => status("Could not load older entries: " + err.message, "error"))
        .finally(() => { ui.more.disabled = false; });
    }

    function read(answer) {
      const list = (answer && Array.isArray(answer.entries) ? answer.entries : []).map(norm).filter((e) => e);
      list.sort((a, b) => b.t - a.t);
      return list;
    }

    function render() {
      const rows = entries.map((e) => h("tr", { "data-audit": e.action, "data-result": e.result },
        h("td", { "data-field": "at" }, h("time", { datetime: e.at }, fmt.format(new Date(e.t)))),
        h("td", { "data-field": "actor" }, e.actor),
        h("td", { "data-field": "action" }, e.action),
        h("td", { "data-field": "target" }, e.target),
        h("td", { "data-field": "result" }, e.result),
        h("td", { "data-field": "remote" }, e.remote)));
      ui.rows.replaceChildren(...rows);
      ui.empty.hidden = entries.length > 0;
      ui.empty.textContent = actor ? `No entries for ${actor}.` : "No entries.";
      ui.more.hidden = complete || entries.length === 0;
      // Offer the actors seen so far.
      let added = false;
      for (const e of entries) {
        if (e.actor && !actorsSeen.has(e.actor)) {
          actorsSeen.add(e.actor);
          added = true;
        }
      }
      if (added) ui.actors.replaceChildren(...Array.from(actorsSeen).sort().map((a) => h("option", { value: a })));
    }

    function setActor(a) {
      if (a === actor) return;
      actor = a;
      gen++;
      entries = [];
      complete = false;
      render();
      load();
    }

    ui.actor.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        const a = ui.actor.value.trim();
        app.setHash("audit" + (a ? "&actor=" + encodeURIComponent(a) : ""));
        setActor(a);
      }, 300);
    });
    ui.form.addEventListener("submit", (ev) => ev.preventDefault());
    ui.refresh.addEventListener("click", () => load());
    ui.more.addEventListener("click", older);

    return {
      // show opens the view with the actor filter of the hash.
      show(a) {
        a = (a || "").trim();
        if (ui.actor.value.trim() !== a) ui.actor.value = a;
        const first = !shown;
        shown = true;
        ui.root.hidden = false;
        if (a !== actor) setActor(a);
        else if (first) load();
        clearInterval(timer);
        timer = setInterval(() => {
          if (!document.hidden) load();
        }, refreshEvery);
      },
      hide() {
        shown = false;
        ui.root.hidden = true;
        clearInterval(timer);
        timer = 0;
      },
      connected() {
        if (shown) load();
      },
    };
  };
})();
