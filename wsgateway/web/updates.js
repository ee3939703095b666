// Switchyard dashboard: firmware updates. The Updates view (admins only)
// uploads builds, starts rollouts and follows them live; updateText words a
// board's update report for its card. app.js owns the page and the /ws
// connection and calls in here (Switchyard.updatesView).
//
// The view's API calls (see CONTRACT "Firmware updates"):
//   GET    api/firmware                         the builds, newest first
//   POST   api/firmware?version=V&platform=P    the raw bytes of a build
//   DELETE api/firmware/<sha256>
//   GET    api/groups                           (app.js) for the target
//   POST   api/rollouts                         {"firmware","target","waves",…}
//   GET    api/rollouts                         every rollout
//   POST   api/rollouts/<id>/pause|resume|abort
// and /ws events {"event":"rollout", …the rollout…} keep it live.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});

  // updateText words a board's update report {"job","state","version",
  // "running","progress","error"}: "downloading 40%", "trial", "confirmed",
  // "failed: checksum", "rolled back: crashed".
  S.updateText = (u) => {
    if (!u || typeof u !== "object" || typeof u.state !== "string") return "";
    const why = typeof u.error === "string" && u.error ? ": " + u.error : "";
    switch (u.state) {
      case "downloading":
        return typeof u.progress === "number" && Number.isFinite(u.progress) ? `downloading ${u.progress}%` : "downloading";
      case "failed": return "failed" + why;
      case "rolled_back": return "rolled back" + why;
      default: return u.state.replace(/_/g, " ");
    }
  };

  // updateFinal reports whether a report's state ends its job.
  S.updateFinal = (u) => !!u && (u.state === "confirmed" || u.state === "failed" || u.state === "rolled_back");

  const { h } = S.kit;

  // setText and setAttr touch the DOM only when the value changes.
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }
  function setAttr(node, attr, value) {
    if (value === null || value === false || value === undefined) {
      if (node.hasAttribute(attr)) node.removeAttribute(attr);
    } else if (node.getAttribute(attr) !== String(value)) {
      node.setAttribute(attr, String(value));
    }
  }

  function bytes(n) {
    if (typeof n !== "number" || !Number.isFinite(n)) return "";
    if (n < 1024) return n + " B";
    if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
    return (n / (1 << 20)).toFixed(1) + " MiB";
  }

  function when(s) {
    const t = typeof s === "string" ? Date.parse(s) : NaN;
    return Number.isFinite(t) ? new Date(t).toLocaleString() : "";
  }

  // The board states of a rollout, in the order their counts are shown.
  const boardStates = ["updated", "checking", "updating", "waiting", "pending", "failed", "skipped"];
  const finalStates = new Set(["updated", "failed", "skipped"]);
  const finishedRollout = new Set(["halted", "aborted", "done"]);

  function targetText(t) {
    if (!t || typeof t !== "object") return "";
    if (t.all) return "all boards";
    if (typeof t.group === "string" && t.group) return "group " + t.group;
    if (typeof t.tag === "string" && t.tag) return "tag " + t.tag;
    if (Array.isArray(t.ids)) return t.ids.length === 1 ? "board " + t.ids[0] : t.ids.length + " boards";
    return "";
  }

  // splitList reads "a, b c" as ["a", "b", "c"].
  const splitList = (s) => s.split(/[\s,]+/).filter((x) => x !== "");
  // numberOr turns "12" into 12 and leaves anything else ("10%") as it is.
  const numberOr = (s) => (/^\d+$/.test(s) ? Number(s) : s);

  /**
   * updatesView runs the Updates view. app gives it:
   *   api(method, path, body, contentType) → Promise of the JSON answer
   *     (rejected with Error(message) for an error answer);
   *   upload(path, file, onProgress) → the same, for a file body;
   *   toast(message); deviceUpdate(id) → the board's last update report.
   */
  S.updatesView = (app) => {
    const $ = (id) => document.getElementById(id);
    const ui = {
      root: $("updates-view"),
      uploadForm: $("upload-form"),
      file: $("fw-file"),
      version: $("fw-version"),
      platform: $("fw-platform"),
      uploadStatus: $("upload-status"),
      fwList: $("fw-list"),
      fwEmpty: $("fw-empty"),
      rolloutForm: $("rollout-form"),
      roFirmware: $("ro-firmware"),
      roGroup: $("ro-group"),
      roTag: $("ro-tag"),
      roIDs: $("ro-ids"),
      roWaves: $("ro-waves"),
      roHealth: $("ro-health"),
      roMaxFail: $("ro-max-failures"),
      roParallel: $("ro-parallel"),
      rolloutStatus: $("rollout-status"),
      rollouts: $("rollouts"),
      rolloutsEmpty: $("rollouts-empty"),
    };

    /** @type {Map<string, object>} rollout id -> the rollout as the API gives it */
    const rollouts = new Map();
    /** @type {Map<string, object>} rollout id -> its view */
    const views = new Map();
    const dirty = new Set();
    let firmware = [];
    let shown = false;
    let queued = false;

    function status(node, text, kind) {
      setText(node, text);
      setAttr(node, "data-status", text ? kind : null);
    }

    // ------------------------------------------------------------ rollouts

    function stamp(r) {
      const t = typeof r.updated === "string" ? Date.parse(r.updated) : NaN;
      return Number.isFinite(t) ? t : 0;
    }

    // upsert keeps r unless an answer already applied is newer (a list
    // fetched before an event may arrive after it).
    function upsert(r) {
      if (!r || typeof r !== "object" || typeof r.id !== "string" || r.id === "") return;
      const old = rollouts.get(r.id);
      if (old && stamp(old) > stamp(r)) return;
      rollouts.set(r.id, r);
      markDirty(r.id);
    }

    function markDirty(id) {
      dirty.add(id);
      schedule();
    }

    function schedule() {
      if (queued || !shown) return;
      queued = true;
      requestAnimationFrame(render);
      setTimeout(render, 500); // rAF does not run in hidden tabs
    }

    function render() {
      queued = false;
      if (!shown) return;
      for (const id of dirty) {
        const r = rollouts.get(id);
        let v = views.get(id);
        if (!r) {
          if (v) v.root.remove();
          views.delete(id);
          continue;
        }
        if (!v) {
          v = newRolloutView(id);
          views.set(id, v);
        }
        renderRollout(v, r);
      }
      dirty.clear();
      // Newest first; the DOM is reordered only when the order changed.
      const order = Array.from(rollouts.values())
        .sort((a, b) => cmpDesc(a.created, b.created) || cmpDesc(a.id, b.id))
        .map((r) => views.get(r.id).root);
      const current = Array.from(ui.rollouts.children);
      if (order.length !== current.length || order.some((e, i) => e !== current[i])) ui.rollouts.replaceChildren(...order);
      ui.rolloutsEmpty.hidden = rollouts.size > 0;
    }

    function cmpDesc(a, b) {
      a = a || "";
      b = b || "";
      return a < b ? 1 : a > b ? -1 : 0;
    }

    // <article class="rollout" data-rollout="ID" data-rollout-state="running">
    //   <header class="rollout-head">
    //     <h4 class="rollout-title">VERSION <span class="rollout-id">ID</span></h4>
    //     <span class="badge" data-field="rollout-state">running</span>
    //   </header>
    //   <p class="rollout-meta">platform · target · started · settings</p>
    //   <p class="rollout-reason" data-field="reason">why it halted</p>
    //   <p class="rollout-counts" data-field="counts">2 updated · 1 updating</p>
    //   <div class="progress"><div class="bar"></div></div>
    //   <div class="rollout-actions"> pause | resume | abort buttons </div>
    //   <p class="rollout-error" data-field="rollout-error" role="alert"></p>
    //   <ol class="waves"> <li class="wave" data-wave="1" data-wave-state="running">
    //     <p class="wave-head">Wave 1 · 1 board · running · 0 of 1 finished</p>
    //     <div class="progress"><div class="bar"></div></div>
    //     <ul class="chips"> <li class="chip" data-board="ID" data-board-state="updating">
    //       <span class="chip-id">ID</span> <span class="chip-state">updating</span>
    //       <span class="chip-detail">downloading 40%</span></li> </ul>
    //   </li> </ol>
    // </article>
    function newRolloutView(id) {
      const v = {
        id,
        title: h("span", { class: "rollout-version" }),
        rid: h("span", { class: "rollout-id" }, id),
        badge: h("span", { class: "badge", "data-field": "rollout-state" }),
        meta: h("p", { class: "rollout-meta" }),
        reason: h("p", { class: "rollout-reason", "data-field": "reason" }),
        counts: h("p", { class: "rollout-counts", "data-field": "counts" }),
        bar: h("div", { class: "bar" }),
        error: h("p", { class: "rollout-error", "data-field": "rollout-error", role: "alert" }),
        buttons: {},
        waves: [],
        waveList: h("ol", { class: "waves" }),
      };
      const actions = h("div", { class: "rollout-actions" });
      for (const [action, label] of [["pause", "Pause"], ["resume", "Resume"], ["abort", "Abort"]]) {
        const b = h("button", { type: "button", class: "action action-" + action, "data-action": action }, label);
        b.addEventListener("click", () => onAction(v, action, b));
        v.buttons[action] = b;
        actions.append(b);
      }
      v.root = h("article", { class: "rollout", "data-rollout": id },
        h("header", { class: "rollout-head" }, h("h4", { class: "rollout-title" }, v.title, " ", v.rid), v.badge),
        v.meta, v.reason, v.counts, h("div", { class: "progress" }, v.bar), actions, v.error, v.waveList);
      v.error.hidden = true;
      return v;
    }

    function renderRollout(v, r) {
      const state = typeof r.state === "string" ? r.state : "";
      setAttr(v.root, "data-rollout-state", state);
      setText(v.badge, state);
      setText(v.title, r.version ? "Version " + r.version : "Build " + String(r.firmware || "").slice(0, 12));
      const meta = [];
      if (r.platform) meta.push(r.platform);
      const target = targetText(r.target);
      if (target) meta.push(target);
      if (r.created) meta.push("started " + when(r.created));
      if (r.health_window) meta.push("health window " + r.health_window);
      if (r.max_failures !== undefined && r.max_failures !== null) meta.push("max failures " + r.max_failures);
      if (r.parallel) meta.push("parallel " + r.parallel);
      setText(v.meta, meta.join(" · "));
      const reason = typeof r.reason === "string" ? r.reason : "";
      setText(v.reason, reason);
      v.reason.hidden = reason === "";

      const waves = Array.isArray(r.waves) ? r.waves : [];
      // The counts: the API's, else counted from the boards.
      let counts = r.counts && typeof r.counts === "object" ? r.counts : null;
      if (!counts) {
        counts = {};
        for (const w of waves) for (const b of w.boards || []) counts[b.state] = (counts[b.state] || 0) + 1;
      }
      let total = 0;
      let finished = 0;
      const parts = [];
      for (const s of Object.keys(counts).sort((a, b) => order(a) - order(b))) {
        const n = Number(counts[s]) || 0;
        total += n;
        if (finalStates.has(s)) finished += n;
        if (n > 0) parts.push(n + " " + s);
      }
      setText(v.counts, parts.join(" · ") || "no boards");
      v.bar.style.width = total ? Math.round((100 * finished) / total) + "%" : "0%";

      const finishedState = finishedRollout.has(state);
      const busy = v.busy === true;
      v.buttons.pause.hidden = state !== "running";
      v.buttons.resume.hidden = state !== "paused";
      v.buttons.abort.hidden = finishedState || state === "";
      for (const b of Object.values(v.buttons)) b.disabled = busy;

      for (let i = 0; i < waves.length; i++) {
        let wv = v.waves[i];
        if (!wv) {
          wv = newWaveView(i + 1);
          v.waves.push(wv);
          v.waveList.append(wv.root);
        }
        renderWave(wv, waves[i]);
      }
      while (v.waves.length > waves.length) v.waves.pop().root.remove();
    }

    function order(state) {
      const i = boardStates.indexOf(state);
      return i < 0 ? boardStates.length : i;
    }

    function newWaveView(n) {
      const wv = {
        head: h("p", { class: "wave-head" }),
        bar: h("div", { class: "bar" }),
        chips: h("ul", { class: "chips" }),
        boards: new Map(), // board id -> chip
      };
      wv.root = h("li", { class: "wave", "data-wave": n }, wv.head, h("div", { class: "progress" }, wv.bar), wv.chips);
      wv.n = n;
      return wv;
    }

    function renderWave(wv, w) {
      const boards = Array.isArray(w.boards) ? w.boards : [];
      const state = typeof w.state === "string" ? w.state : "";
      setAttr(wv.root, "data-wave-state", state);
      let finished = 0;
      for (const b of boards) if (finalStates.has(b.state)) finished++;
      const n = boards.length;
      setText(wv.head, `Wave ${wv.n} · ${n} ${n === 1 ? "board" : "boards"}` +
        (state ? " · " + state : "") + ` · ${finished} of ${n} finished`);
      wv.bar.style.width = n ? Math.round((100 * finished) / n) + "%" : "0%";
      const seen = new Set();
      let prev = null;
      for (const b of boards) {
        if (!b || typeof b.id !== "string") continue;
        seen.add(b.id);
        let chip = wv.boards.get(b.id);
        if (!chip) {
          chip = {
            state: h("span", { class: "chip-state" }),
            detail: h("span", { class: "chip-detail" }),
          };
          chip.root = h("li", { class: "chip", "data-board": b.id }, h("span", { class: "chip-id" }, b.id), " ", chip.state, " ", chip.detail);
          wv.boards.set(b.id, chip);
        }
        // Keep the API's order of the boards (the canary order).
        const next = prev ? prev.nextSibling : wv.chips.firstChild;
        if (next !== chip.root) wv.chips.insertBefore(chip.root, next);
        prev = chip.root;
        setAttr(chip.root, "data-board-state", b.state || "");
        setText(chip.state, b.state || "");
        const detail = boardDetail(b);
        setText(chip.detail, detail);
        chip.detail.hidden = detail === "";
      }
      for (const [id, chip] of wv.boards) {
        if (!seen.has(id)) {
          chip.root.remove();
          wv.boards.delete(id);
        }
      }
    }

    // boardDetail is what a board is doing in its job (its live update
    // report, when it is about this job), or why it failed or was skipped.
    function boardDetail(b) {
      if (b.state === "updating" || b.state === "checking") {
        const u = app.deviceUpdate(b.id);
        if (u && b.job && u.job === b.job) return S.updateText(u);
      }
      if (typeof b.error === "string" && b.error) return b.error;
      if (typeof b.update === "string" && b.update) return b.update.replace(/_/g, " ");
      if (b.update && typeof b.update === "object") return S.updateText(b.update);
      return "";
    }

    const { confirmed } = S.kit;

    function onAction(v, action, button) {
      // Abort ends the rollout for good: the first click asks again.
      if (action === "abort" && !confirmed(button, "Really abort?")) return;
      v.busy = true;
      v.error.hidden = true;
      markDirty(v.id);
      app.api("POST", `api/rollouts/${encodeURIComponent(v.id)}/${action}`)
        .then((r) => upsert(r))
        .catch((err) => {
          setText(v.error, `${action} failed: ${err.message}`);
          v.error.hidden = false;
          app.toast(`Rollout ${v.id}: ${action} failed: ${err.message}`);
        })
        .finally(() => {
          v.busy = false;
          markDirty(v.id);
        });
    }

    function loadRollouts() {
      return app.api("GET", "api/rollouts")
        .then((list) => {
          const items = Array.isArray(list) ? list : list && Array.isArray(list.rollouts) ? list.rollouts : [];
          for (const r of items) upsert(r);
        })
        .catch((err) => app.toast("Could not load the rollouts: " + err.message));
    }

    // ------------------------------------------------------------ firmware

    function loadFirmware() {
      return app.api("GET", "api/firmware")
        .then((list) => {
          firmware = Array.isArray(list) ? list.filter((f) => f && typeof f.sha256 === "string") : [];
          renderFirmware();
        })
        .catch((err) => app.toast("Could not load the builds: " + err.message));
    }

    function renderFirmware() {
      const items = firmware.map((f) => {
        const del = h("button", { type: "button", class: "action", "data-action": "delete-firmware",
          "aria-label": `Delete build ${f.version} (${f.platform})` }, "Delete");
        del.addEventListener("click", () => deleteFirmware(f, del));
        return h("li", { class: "fw-item", "data-firmware": f.sha256 },
          h("span", { class: "fw-version" }, String(f.version || "?")), " ",
          h("span", { class: "fw-platform" }, String(f.platform || "")), " ",
          h("span", { class: "fw-size" }, bytes(f.size)), " ",
          h("span", { class: "fw-when" }, when(f.uploaded)), " ",
          h("code", { class: "fw-sha", title: f.sha256 }, f.sha256.slice(0, 12)), " ",
          del);
      });
      ui.fwList.replaceChildren(...items);
      ui.fwEmpty.hidden = firmware.length > 0;
      // The rollout form's choice of build, kept where it can be.
      const keep = ui.roFirmware.value;
      ui.roFirmware.replaceChildren(...firmware.map((f) =>
        new Option(`${f.version} · ${f.platform} · ${f.sha256.slice(0, 8)}`, f.sha256)));
      if (firmware.some((f) => f.sha256 === keep)) ui.roFirmware.value = keep;
    }

    function deleteFirmware(f, button) {
      if (!confirmed(button, "Really delete?")) return;
      button.disabled = true;
      app.api("DELETE", "api/firmware/" + encodeURIComponent(f.sha256))
        .then(() => {
          app.toast(`Build ${f.version} deleted.`);
          return loadFirmware();
        })
        .catch((err) => {
          button.disabled = false;
          status(ui.uploadStatus, `Delete ${f.version}: ${err.message}`, "error");
          app.toast(`Delete ${f.version}: ${err.message}`);
        });
    }

    ui.uploadForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const file = ui.file.files && ui.file.files[0];
      const version = ui.version.value.trim();
      const platform = ui.platform.value.trim();
      if (!file || !version || !platform) {
        status(ui.uploadStatus, "Choose a file, and give its version and platform.", "error");
        return;
      }
      const button = ui.uploadForm.querySelector('[data-action="upload"]');
      button.disabled = true;
      status(ui.uploadStatus, "Uploading…", "busy");
      const path = `api/firmware?version=${encodeURIComponent(version)}&platform=${encodeURIComponent(platform)}`;
      app.upload(path, file, (part) => status(ui.uploadStatus, `Uploading… ${Math.floor(part * 100)}%`, "busy"))
        .then((f) => {
          status(ui.uploadStatus, `Uploaded ${f && f.version ? f.version : version} (${f && f.sha256 ? f.sha256.slice(0, 12) : ""}).`, "ok");
          ui.uploadForm.reset();
          return loadFirmware().then(() => {
            if (f && f.sha256 && firmware.some((x) => x.sha256 === f.sha256)) ui.roFirmware.value = f.sha256;
          });
        })
        .catch((err) => status(ui.uploadStatus, "Upload failed: " + err.message, "error"))
        .finally(() => { button.disabled = false; });
    });

    // ------------------------------------------------------- start a rollout

    ui.rolloutForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      let body;
      try {
        body = rolloutBody();
      } catch (err) {
        status(ui.rolloutStatus, err.message, "error");
        return;
      }
      const button = ui.rolloutForm.querySelector('[data-action="start-rollout"]');
      button.disabled = true;
      status(ui.rolloutStatus, "Starting…", "busy");
      app.api("POST", "api/rollouts", JSON.stringify(body), "application/json")
        .then((r) => {
          upsert(r);
          status(ui.rolloutStatus, `Rollout ${r && r.id ? r.id : ""} started${r && r.state ? " (" + r.state + ")" : ""}.`, "ok");
        })
        .catch((err) => status(ui.rolloutStatus, "Not started: " + err.message, "error"))
        .finally(() => { button.disabled = false; });
    });

    // rolloutBody reads the form as POST /api/rollouts's body. Empty fields
    // are left out (the control plane's defaults); the control plane checks
    // the rest and its errors are shown as they come.
    function rolloutBody() {
      const sha = ui.roFirmware.value;
      if (!sha) throw new Error("Upload a build first.");
      const kind = (ui.rolloutForm.querySelector('input[name="target"]:checked') || {}).value || "all";
      let target;
      switch (kind) {
        case "group":
          if (!ui.roGroup.value) throw new Error("Choose a group.");
          target = { group: ui.roGroup.value };
          break;
        case "tag":
          if (!ui.roTag.value.trim()) throw new Error("Give a tag.");
          target = { tag: ui.roTag.value.trim() };
          break;
        case "ids": {
          const ids = splitList(ui.roIDs.value);
          if (ids.length === 0) throw new Error("Give the ids of the boards.");
          target = { ids };
          break;
        }
        default:
          target = { all: true };
      }
      const body = { firmware: sha, target };
      const waves = splitList(ui.roWaves.value);
      if (waves.length) body.waves = waves.map(numberOr);
      const health = ui.roHealth.value.trim();
      if (health) body.health_window = health;
      const maxFail = ui.roMaxFail.value.trim();
      if (maxFail) body.max_failures = numberOr(maxFail);
      const parallel = ui.roParallel.value.trim();
      if (parallel) body.parallel = numberOr(parallel);
      return body;
    }

    // A target's own field picks its radio button.
    for (const [field, kind] of [[ui.roGroup, "group"], [ui.roTag, "tag"], [ui.roIDs, "ids"]]) {
      const pick = () => {
        const radio = ui.rolloutForm.querySelector(`input[name="target"][value="${kind}"]`);
        if (radio) radio.checked = true;
      };
      field.addEventListener("focus", pick);
      field.addEventListener("input", pick);
    }

    // ----------------------------------------------------------------- api

    return {
      // show and hide the view; shown, it loads builds and rollouts.
      show() {
        if (shown) return;
        shown = true;
        ui.root.hidden = false;
        for (const id of rollouts.keys()) dirty.add(id);
        schedule();
        loadFirmware();
        loadRollouts();
      },
      hide() {
        shown = false;
        ui.root.hidden = true;
      },
      // connected runs on every (re)connect of /ws: what was missed while
      // the connection was down is read again.
      connected() {
        if (!shown) return;
        loadFirmware();
        loadRollouts();
      },
      // onRollout takes a {"event":"rollout",…} event.
      onRollout(e) { upsert(e); },
      // onDeviceUpdate redraws the rollout of a board's job when its
      // update report changes.
      onDeviceUpdate(u) {
        if (!u || typeof u.job !== "string") return;
        const i = u.job.lastIndexOf("/");
        const id = i > 0 ? u.job.slice(0, i) : u.job;
        if (rollouts.has(id)) markDirty(id);
      },
      // setGroups offers the configured groups as targets.
      setGroups(names) {
        const keep = ui.roGroup.value;
        ui.roGroup.replaceChildren(...names.map((n) => new Option(n, n)));
        if (names.includes(keep)) ui.roGroup.value = keep;
        const radio = ui.rolloutForm.querySelector('input[name="target"][value="group"]');
        radio.disabled = names.length === 0;
        ui.roGroup.disabled = names.length === 0;
      },
    };
  };
})();
