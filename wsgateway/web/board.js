// Switchyard dashboard: a board's page (#board=<id>). app.js owns the page,
// draws the board's live summary at its top and calls in here
// (Switchyard.boardView) for its past, read from the API (see CONTRACT
// "History, audit log, tags"):
//   GET api/devices/<id>/history?since=<24 h ago>&limit=1000   events, newest first
//   GET api/devices/<id>/history?until=<24 h ago>&limit=100    the state the window starts in
//   GET api/devices/<id>/counts?since=<24 h ago>&step=5m       [[at, count]…], oldest first
//
// What it draws, and how: everything is plain DOM and hand-written SVG made
// here, no chart library and nothing from a CDN (boards often live on
// networks without internet, and the whole dashboard ships in the binary).
// The page needs two pictures only, and each is a handful of SVG elements:
//   - the online timeline: one <rect> per online or offline stretch of the
//     last 24 h on a 1000-unit wide bar stretched to the panel's width;
//   - the count sparkline: one <polyline> of at most 288 points (one per
//     5 minutes: the panel is a few hundred pixels wide, finer steps would
//     not show), its stroke kept thin by vector-effect: non-scaling-stroke.
// Texts (axis labels, figures) are HTML next to the SVG, so they neither
// stretch nor need a font inside the drawing. LED changes (with who made
// them), commands with their outcome and firmware history (info and update
// events) are tables.
//
// It stays current while shown: new events are read every few seconds
// (since the newest one it has) and soon after a live event of the board;
// the counts once a minute.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});

  const day = 24 * 3600 * 1000;
  const limit = 1000; // the API's maximum
  const countStep = "5m";
  const countStepMs = 5 * 60 * 1000;
  const pollEvery = 3000; // new events, while shown
  const countsEvery = 60000; // the sampler keeps one count a minute
  const afterLive = 1200; // a live event is in the history once the recorder wrote it (batched)
  const listMax = 50; // rows per table

  const { h } = S.kit;

  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(svgNS, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    for (const c of children) e.append(c);
    return e;
  }

  // iso writes ms as the API's RFC 3339, to the second.
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const hourFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });

  // when writes a time of the last days: the clock time today, else with
  // its date.
  function when(ms, now) {
    const d = new Date(ms);
    return d.toDateString() === new Date(now).toDateString() ? timeFmt.format(d) : dateFmt.format(d);
  }

  function span(ms) {
    const m = Math.round(ms / 60000);
    if (m < 1) return Math.max(0, Math.round(ms / 1000)) + " s";
    if (m < 60) return m + " min";
    const hrs = Math.floor(m / 60);
    return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  }

  const offlineWhy = {
    will: "connection lost",
    clean: "clean shutdown",
    restart: "control plane restarted",
  };

  // key names an event for spotting one already read.
  const key = (e) => e.at + "\u0000" + e.kind + "\u0000" + e.value + "\u0000" + e.by;

  // norm checks an event of the API and adds t, its time in ms.
  function norm(e) {
    if (!e || typeof e !== "object" || typeof e.kind !== "string") return null;
    const t = typeof e.at === "string" ? Date.parse(e.at) : NaN;
    if (!Number.isFinite(t)) return null;
    return {
      at: e.at,
      t,
      kind: e.kind,
      value: typeof e.value === "string" ? e.value : e.value === null || e.value === undefined ? "" : String(e.value),
      by: typeof e.by === "string" ? e.by : "",
    };
  }

  // splitTags reads "kitchen, floor-1 porch" as ["kitchen", "floor-1", "porch"].
  const splitTags = (s) => s.split(/[\s,]+/).filter((t) => t !== "");

  /**
   * boardView runs a board's page. app gives it:
   *   api(method, path, body, contentType) → Promise of the JSON answer
   *     (rejected with Error(message), .status set, for an error answer);
   *   toast(message);
   *   meta(id) → {name, shown, tags}: the name given the board (config or
   *     PATCH; "" for none), the name shown, its tags; null when unknown;
   *   canEdit() → whether the caller may rename and retag (operator, admin).
   */
  S.boardView = (app) => {
    const $ = (id) => document.getElementById(id);
    const ui = {
      status: $("board-status"),
      timeline: $("board-timeline"),
      uptime: $("board-uptime"),
      counts: $("board-counts"),
      countsNote: $("board-counts-note"),
      led: $("board-led"),
      commands: $("board-commands"),
      firmware: $("board-firmware"),
      edit: $("board-edit"),
      editForm: $("board-edit-form"),
      name: $("board-name"),
      tags: $("board-tags"),
      editStatus: $("board-edit-status"),
    };

    let id = null; // the board shown; null when hidden
    let gen = 0; // bumped on every show and hide: answers for an older one are dropped
    let events = []; // newest first, as the API gives them
    let covered = 0; // ms: events are complete from here (the window's start, unless the limit cut it)
    let loaded = false; // the first history answer arrived
    // prior is the board's state when the window starts, from its last
    // online or offline event before: {state, why, by}; "none" when it has
    // no event before the window (no record), null while unknown.
    let prior = null;
    let points = [];
    let pollTimer = 0;
    let countsTimer = 0;
    let liveTimer = 0;
    let drawTimer = 0;
    let busy = false; // a history request is out
    let again = ""; // and another is wanted once it is back: "more" or "all"

    function status(text, kind) {
      ui.status.textContent = text;
      if (kind) ui.status.dataset.status = kind;
      else delete ui.status.dataset.status;
    }

    // ------------------------------------------------------------ history

    // loadHistory reads the events of the last 24 h, or (more) only those
    // since the newest it has, and draws them.
    function loadHistory(more) {
      if (id === null) return;
      if (busy) {
        if (again !== "all") again = more ? "more" : "all";
        return;
      }
      busy = true;
      const g = gen;
      const now = Date.now();
      const since = more && events.length ? events[0].at : iso(now - day);
      const path = `api/devices/${encodeURIComponent(id)}/history?since=${encodeURIComponent(since)}&limit=${limit}`;
      app.api("GET", path)
        .then((answer) => {
          if (g !== gen) return;
          const list = (answer && Array.isArray(answer.events) ? answer.events : []).map(norm).filter((e) => e);
          if (more && events.length && list.length >= limit) {
            again = "all"; // a burst bigger than a page: read the window again
            return;
          }
          if (more && events.length) merge(list);
          else {
            events = list;
            covered = list.length >= limit ? list[list.length - 1].t : now - day;
          }
          loaded = true;
          status("", "");
          draw();
        })
        .catch((err) => {
          if (g !== gen) return;
          if (err.status === 404 && !loaded) {
            events = [];
            loaded = true;
            status("No history for this board: the control plane never saw it, or keeps no history (history.enabled: false).", "");
            draw();
            return;
          }
          status("Could not load the history: " + err.message, "error");
        })
        .finally(() => {
          if (g !== gen) return;
          busy = false;
          if (again) {
            const more = again === "more";
            again = "";
            loadHistory(more);
          }
        });
    }

    // merge adds newer events (newest first, from since = the newest one
    // held, inclusive): those of that very second already held are skipped,
    // as many times as they are held.
    function merge(list) {
      const edge = events[0].at;
      const held = new Map();
      for (const e of events) {
        if (e.at !== edge) break;
        held.set(key(e), (held.get(key(e)) || 0) + 1);
      }
      const fresh = [];
      for (const e of list) {
        if (e.t < events[0].t) continue;
        if (e.at === edge) {
          const n = held.get(key(e)) || 0;
          if (n > 0) {
            held.set(key(e), n - 1);
            continue;
          }
        }
        fresh.push(e);
      }
      if (fresh.length === 0) return;
      events = fresh.concat(events);
      // Drop what fell out of the window, keeping the page's size bounded;
      // the state it leaves is the window's first.
      const start = Date.now() - day;
      while (events.length > limit || (events.length && events[events.length - 1].t < start)) {
        const e = events.pop();
        if (e.kind === "online" || e.kind === "offline" || e.kind === "forgotten") prior = mark(e);
      }
      covered = Math.max(covered, events.length >= limit ? events[events.length - 1].t : covered);
    }

    // loadPrior reads the last events before the window for the state it
    // starts in.
    function loadPrior() {
      if (id === null) return;
      const g = gen;
      const until = iso(Date.now() - day);
      app.api("GET", `api/devices/${encodeURIComponent(id)}/history?until=${encodeURIComponent(until)}&limit=100`)
        .then((answer) => {
          if (g !== gen) return;
          const list = (answer && Array.isArray(answer.events) ? answer.events : []).map(norm).filter((e) => e);
          const last = list.find((e) => e.kind === "online" || e.kind === "offline" || e.kind === "forgotten");
          if (last) prior = mark(last);
          else prior = list.length < 100 ? "none" : null; // 100 events and none of them: unknown
          if (loaded) drawTimeline(Date.now());
        })
        .catch((err) => {
          if (g !== gen) return;
          prior = err.status === 404 ? "none" : null;
          if (loaded) drawTimeline(Date.now());
        });
    }

    // mark is the state an online, offline or forgotten event leaves.
    function mark(e) {
      return {
        state: e.kind === "online" ? "online" : e.kind === "offline" ? "offline" : "unknown",
        why: e.kind === "offline" ? e.value : "",
        by: e.by,
      };
    }

    function loadCounts() {
      if (id === null) return;
      const g = gen;
      const since = iso(Date.now() - day);
      app.api("GET", `api/devices/${encodeURIComponent(id)}/counts?since=${encodeURIComponent(since)}&step=${countStep}`)
        .then((answer) => {
          if (g !== gen) return;
          const list = answer && Array.isArray(answer.points) ? answer.points : [];
          points = [];
          for (const p of list) {
            if (!Array.isArray(p) || p.length < 2) continue;
            const t = typeof p[0] === "string" ? Date.parse(p[0]) : NaN;
            const c = typeof p[1] === "number" ? p[1] : Number(p[1]);
            if (Number.isFinite(t) && Number.isFinite(c)) points.push([t, c]);
          }
          points.sort((a, b) => a[0] - b[0]);
          drawCounts(Date.now());
        })
        .catch((err) => {
          if (g !== gen) return;
          points = [];
          drawCounts(Date.now(), err.status === 404 ? "No counts recorded for this board." : "Could not load the counts: " + err.message);
        });
    }

    // ------------------------------------------------------------ drawing

    function draw() {
      const now = Date.now();
      drawTimeline(now);
      drawLists(now);
    }

    // segments cuts the last 24 h into stretches online, offline or
    // unknown (no record) from the online and offline events. The window
    // starts in the state of the last such event before it (prior); while
    // that is not known, in the other state than its first event's (an
    // online event ends an offline stretch), or unknown. Before `covered`
    // (the 1000 events did not reach back 24 h) it is unknown.
    function segments(now) {
      const start = now - day;
      const marks = [];
      for (let i = events.length - 1; i >= 0; i--) {
        const e = events[i];
        if (e.kind === "online" || e.kind === "offline" || e.kind === "forgotten") marks.push(e);
      }
      const segs = [];
      const add = (state, from, to, why, by) => {
        from = Math.max(from, start);
        to = Math.min(to, now);
        if (to <= from) return;
        const last = segs[segs.length - 1];
        if (last && last.state === state && last.why === why) last.to = to;
        else segs.push({ state, from, to, why, by });
      };
      let t = start;
      let cur = { state: "unknown", why: "", by: "" };
      if (covered > start) {
        add("unknown", start, covered, "", "");
        t = covered;
        if (marks.length > 0) cur = { state: marks[0].kind === "online" ? "offline" : marks[0].kind === "offline" ? "online" : "unknown", why: "", by: "" };
      } else if (prior && prior !== "none") {
        cur = prior;
      } else if (prior === null && marks.length > 0) {
        cur = { state: marks[0].kind === "online" ? "offline" : marks[0].kind === "offline" ? "online" : "unknown", why: "", by: "" };
      }
      for (const m of marks) {
        const at = Math.max(m.t, t);
        add(cur.state, t, at, cur.why, cur.by);
        t = at;
        cur = mark(m);
      }
      add(cur.state, t, now, cur.why, cur.by);
      return segs;
    }

    function drawTimeline(now) {
      const start = now - day;
      const segs = segments(now);
      const bar = svg("svg", { class: "timeline-bar", viewBox: "0 0 1000 24", preserveAspectRatio: "none", role: "img" });
      let online = 0;
      let known = 0;
      const outages = [];
      for (const s of segs) {
        // A stretch of seconds stays visible (a pixel or two).
        const w = Math.max(((s.to - s.from) / day) * 1000, s.state === "unknown" ? 0 : 3);
        const x = Math.min(((s.from - start) / day) * 1000, 1000 - w);
        const what = s.state === "offline" && s.why ? `offline (${offlineWhy[s.why] || s.why})` : s.state === "unknown" ? "no record" : s.state;
        const title = `${what} ${when(s.from, now)} – ${s.to >= now - 1000 ? "now" : when(s.to, now)} (${span(s.to - s.from)})`;
        bar.append(svg("rect", {
          class: "seg seg-" + s.state, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 24,
          "data-state": s.state, "data-from": iso(s.from), "data-to": iso(s.to),
        }, svg("title", {}, title)));
        if (s.state !== "unknown") known += s.to - s.from;
        if (s.state === "online") online += s.to - s.from;
        if (s.state === "offline") outages.push(s);
      }
      const pct = known > 0 ? (100 * online) / known : null;
      // Measured against the time on record: a board seen first an hour
      // ago was not offline for the 23 before.
      const label = pct === null ? "Nothing on record for the last 24 h"
        : known >= day - 60000 ? `Online ${fmtPct(pct)} of the last 24 h`
        : `Online ${fmtPct(pct)} of the ${span(known)} on record in the last 24 h`;
      bar.setAttribute("aria-label", label);

      const ticks = h("div", { class: "ticks", "aria-hidden": "true" });
      for (let i = 0; i <= 4; i++) {
        const t = start + (i * day) / 4;
        ticks.append(h("span", { style: `left: ${i * 25}%` }, i === 4 ? "now" : hourFmt.format(new Date(t))));
      }

      const legend = h("p", { class: "legend", "aria-hidden": "true" },
        h("span", { class: "key key-online" }, "online"), " ",
        h("span", { class: "key key-offline" }, "offline"), " ",
        h("span", { class: "key key-unknown" }, "no record"));

      const list = h("ul", { class: "outages" });
      for (const s of outages.slice(-8).reverse()) {
        const why = s.why ? " · " + (offlineWhy[s.why] || s.why) : "";
        list.append(h("li", { "data-state": "offline", "data-why": s.why || null },
          `offline ${when(s.from, now)} – ${s.to >= now - 1000 ? "now" : when(s.to, now)} (${span(s.to - s.from)})${why}`));
      }
      ui.timeline.replaceChildren(bar, ticks, legend);
      if (outages.length) ui.timeline.append(list);

      let note = label;
      if (pct !== null) {
        note += outages.length === 0 ? " · never offline" : ` · ${outages.length} ${outages.length === 1 ? "time" : "times"} offline`;
        const n = {};
        for (const s of outages) if (s.why) n[s.why] = (n[s.why] || 0) + 1;
        const whys = Object.keys(n).map((w) => `${n[w]} ${offlineWhy[w] || w}`);
        if (whys.length) note += ` (${whys.join(", ")})`;
      }
      if (covered > start) note += ` · only the latest ${limit} events were read; before ${when(covered, now)} unknown`;
      ui.uptime.textContent = loaded ? note + "." : "Loading…";
    }

    function fmtPct(p) {
      return (p >= 99.95 || p < 0.05 ? p.toFixed(0) : p.toFixed(1)) + " %";
    }

    function drawCounts(now, problem) {
      const start = now - day;
      const pts = points.filter((p) => p[0] >= start - countStepMs);
      if (pts.length === 0) {
        ui.counts.replaceChildren();
        ui.countsNote.textContent = problem || "No counts in the last 24 h.";
        ui.counts.dataset.points = "0";
        return;
      }
      let min = Infinity;
      let max = -Infinity;
      for (const [, c] of pts) {
        min = Math.min(min, c);
        max = Math.max(max, c);
      }
      const range = max - min || 1;
      const xy = pts.map(([t, c]) => {
        const x = Math.min(1000, Math.max(0, ((t - start) / day) * 1000));
        const y = 95 - ((c - min) / range) * 90;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      if (xy.length === 1) xy.push((Number(xy[0].split(",")[0]) + 4).toFixed(1) + "," + xy[0].split(",")[1]);
      const last = pts[pts.length - 1];
      const line = svg("svg", {
        class: "spark-line", viewBox: "0 0 1000 100", preserveAspectRatio: "none", role: "img",
        "aria-label": `Count over the last 24 h: from ${pts[0][1]} to ${last[1]}`,
      },
      svg("polyline", { points: xy.join(" "), "vector-effect": "non-scaling-stroke" }));
      const ticks = h("div", { class: "ticks", "aria-hidden": "true" });
      for (let i = 0; i <= 4; i++) {
        ticks.append(h("span", { style: `left: ${i * 25}%` }, i === 4 ? "now" : hourFmt.format(new Date(start + (i * day) / 4))));
      }
      ui.counts.replaceChildren(line, ticks);
      ui.counts.dataset.points = String(pts.length);
      ui.countsNote.textContent = `Last ${last[1]} at ${when(last[0], now)} · lowest ${min} · highest ${max} · ` +
        `${pts.length} ${pts.length === 1 ? "sample" : "samples"} (one per ${countStep}).`;
    }

    // table draws events (newest first) as a table of columns, each
    // [header, field, text of an event].
    function table(list, columns, empty, now) {
      if (list.length === 0) return [h("p", { class: "empty-small" }, empty)];
      const head = h("tr", null, ...columns.map(([title]) => h("th", { scope: "col" }, title)));
      const rows = list.slice(0, listMax).map((e) => h("tr", { "data-kind": e.kind },
        ...columns.map(([, field, text]) => field === "at"
          ? h("td", { "data-field": "at" }, h("time", { datetime: e.at }, when(e.t, now)))
          : h("td", { "data-field": field }, text(e)))));
      const out = [h("table", { class: "events-table" }, h("thead", null, head), h("tbody", null, ...rows))];
      if (list.length > listMax) out.push(h("p", { class: "empty-small" }, `and ${list.length - listMax} older in the last 24 h`));
      return out;
    }

    const byText = (e) => e.by || "—";

    function drawLists(now) {
      const of = (...kinds) => events.filter((e) => kinds.includes(e.kind));
      ui.led.replaceChildren(...table(of("led"), [["When", "at"], ["LED", "value", (e) => e.value], ["By", "by", byText]],
        loaded ? "No LED changes in the last 24 h." : "Loading…", now));
      ui.commands.replaceChildren(...table(of("command"), [["When", "at"], ["Command", "value", (e) => e.value], ["By", "by", byText]],
        loaded ? "No commands in the last 24 h." : "Loading…", now));
      ui.firmware.replaceChildren(...table(of("info", "update", "forgotten"),
        [["When", "at"], ["What", "kind", (e) => (e.kind === "info" ? "board" : e.kind)], ["Change", "value", (e) => e.value.replace(/_/g, " ")]],
        loaded ? "No firmware changes or updates in the last 24 h." : "Loading…", now));
    }

    // ------------------------------------------------------- name and tags

    // The form shows what the board has; a field is sent only when changed,
    // so saving tags does not pin a name that came from the config file.
    let filled = { name: "", tags: "" };

    function fillEdit() {
      const m = id === null ? null : app.meta(id);
      filled = { name: m ? m.name : "", tags: m ? m.tags.join(" ") : "" };
      ui.name.value = filled.name;
      ui.name.placeholder = m && !m.name ? m.shown : "";
      ui.tags.value = filled.tags;
    }

    function editStatus(text, kind) {
      ui.editStatus.textContent = text;
      if (kind) ui.editStatus.dataset.status = kind;
      else delete ui.editStatus.dataset.status;
    }

    ui.editForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (id === null) return;
      const body = {};
      const name = ui.name.value.trim();
      if (name !== filled.name) body.name = name;
      const tags = splitTags(ui.tags.value.toLowerCase());
      if (tags.join(" ") !== filled.tags) body.tags = tags;
      if (Object.keys(body).length === 0) {
        editStatus("Nothing changed.", "");
        return;
      }
      const g = gen;
      const button = ui.editForm.querySelector('[data-action="save-board"]');
      button.disabled = true;
      editStatus("Saving…", "busy");
      app.api("PATCH", "api/devices/" + encodeURIComponent(id), JSON.stringify(body), "application/json")
        .then((d) => {
          if (g !== gen) return;
          filled = { name: body.name !== undefined ? body.name : filled.name, tags: Array.isArray(d && d.tags) ? d.tags.join(" ") : tags.join(" ") };
          ui.name.value = filled.name;
          ui.tags.value = filled.tags;
          editStatus("Saved.", "ok");
        })
        .catch((err) => {
          if (g === gen) editStatus("Not saved: " + err.message, "error");
        })
        .finally(() => { button.disabled = false; });
    });

    // ------------------------------------------------------------- timers

    function startTimers() {
      stopTimers();
      pollTimer = setInterval(() => {
        if (!document.hidden) loadHistory(true);
      }, pollEvery);
      countsTimer = setInterval(() => {
        if (!document.hidden) loadCounts();
      }, countsEvery);
      // The window slides: redraw what depends on now.
      drawTimer = setInterval(() => {
        if (document.hidden || !loaded) return;
        drawTimeline(Date.now());
      }, 30000);
    }

    function stopTimers() {
      clearInterval(pollTimer);
      clearInterval(countsTimer);
      clearInterval(drawTimer);
      clearTimeout(liveTimer);
      pollTimer = countsTimer = drawTimer = liveTimer = 0;
    }

    function reset() {
      gen++;
      events = [];
      points = [];
      covered = 0;
      loaded = false;
      prior = null;
      busy = false;
      again = "";
    }

    return {
      // show opens board id's page.
      show(newID) {
        reset();
        id = newID;
        status("", "");
        editStatus("", "");
        ui.edit.hidden = !app.canEdit();
        fillEdit();
        draw();
        drawCounts(Date.now(), "Loading…");
        loadHistory(false);
        loadPrior();
        loadCounts();
        startTimers();
      },
      hide() {
        if (id === null) return;
        reset();
        id = null;
        stopTimers();
        for (const n of [ui.timeline, ui.counts, ui.led, ui.commands, ui.firmware]) n.replaceChildren();
      },
      // onEvent takes a live event of a board: the page reads its history
      // soon after one of the board it shows.
      onEvent(dev, label) {
        if (dev !== id || label === "count" || liveTimer) return;
        liveTimer = setTimeout(() => {
          liveTimer = 0;
          loadHistory(true);
        }, afterLive);
      },
      // roleKnown runs when the caller's role is known (or changed).
      roleKnown() {
        if (id !== null) ui.edit.hidden = !app.canEdit();
      },
      // metaChanged runs when the board's name or tags changed elsewhere;
      // the form follows unless it is being edited.
      metaChanged(dev) {
        if (dev !== id || ui.editForm.contains(document.activeElement)) return;
        fillEdit();
      },
      // connected runs on every (re)connect of /ws: read it all again.
      connected() {
        if (id === null) return;
        loadHistory(events.length > 0);
        if (prior === null) loadPrior();
        loadCounts();
      },
    };
  };
})();
