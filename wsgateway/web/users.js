// Switchyard dashboard: the Users page (#users, admins only). Every user,
// from config.yaml (read-only: no controls, it says why) and from the
// database (role, password, disabled, delete, API tokens), each change
// taking effect at once. app.js owns the page and calls in here
// (Switchyard.usersView). The API (see CONTRACT "Onboarding"):
//
//   GET    api/users                          [{"name","role","source","disabled","tokens":[{"id","created"}]}]
//   POST   api/users {"name","role","password"}
//   PATCH  api/users/<name> {"role"} | {"password"} | {"disabled"}
//   DELETE api/users/<name>
//   POST   api/users/<name>/tokens            201 {"id","token"}: the token, shown once
//   DELETE api/users/<name>/tokens/<id>
//
// A refusal (409: a user from config.yaml, the last admin) is shown on the
// user's own row. A new token is shown once, on its user's row, until
// Done: reading the list again keeps it.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});

  const roles = ["viewer", "operator", "admin"];
  const minPassword = 10;
  const str = (v) => (typeof v === "string" ? v : "");
  const fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  function norm(u) {
    if (!u || typeof u !== "object" || typeof u.name !== "string" || u.name === "") return null;
    const tokens = (Array.isArray(u.tokens) ? u.tokens : [])
      .filter((t) => t && typeof t.id === "string" && t.id !== "")
      .map((t) => ({ id: t.id, created: str(t.created) }));
    return {
      name: u.name,
      role: str(u.role),
      source: u.source === "config" ? "config" : "database",
      disabled: u.disabled === true,
      tokens,
    };
  }

  function created(s) {
    const t = Date.parse(s);
    // Config tokens have no creation time (zero): say nothing.
    return Number.isFinite(t) && t > 0 ? "created " + fmt.format(new Date(t)) : "";
  }

  /**
   * usersView runs the Users page. app gives it api(method, path, body,
   * contentType) (see boardView), toast(message) and me() → the caller's
   * name.
   */
  S.usersView = (app) => {
    const { h, confirmed, copy, copyNote } = S.kit;
    const $ = (id) => document.getElementById(id);
    const ui = {
      root: $("users-view"),
      form: $("user-form"),
      name: $("nu-name"),
      role: $("nu-role"),
      password: $("nu-password"),
      formStatus: $("nu-status"),
      list: $("user-list"),
      status: $("users-status"),
      empty: $("users-empty"),
      refresh: $("users-refresh"),
    };

    let shown = false;
    let gen = 0; // bumped on every read: older answers are dropped
    /** @type {Map<string, object>} name -> row (its element, parts and the user it shows) */
    const rows = new Map();

    function setStatus(node, text, kind) {
      node.textContent = text;
      if (kind) node.dataset.status = kind;
      else delete node.dataset.status;
    }

    function load() {
      const g = ++gen;
      return app.api("GET", "api/users")
        .then((list) => {
          if (g !== gen) return;
          const users = (Array.isArray(list) ? list : []).map(norm).filter((u) => u);
          users.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          render(users);
          if (ui.status.dataset.status === "error") setStatus(ui.status, "", "");
        })
        .catch((err) => {
          if (g !== gen) return;
          if (err.status === 404) setStatus(ui.status, "This control plane manages no users from the dashboard.", "error");
          else setStatus(ui.status, "Could not load the users: " + err.message, "error");
        });
    }

    // render keeps a row per user, in name order: a row whose user did not
    // change is left alone, and a changed one keeps its note, open
    // password form and new token.
    function render(users) {
      const names = new Set(users.map((u) => u.name));
      for (const [name, row] of rows) {
        if (!names.has(name)) {
          row.root.remove();
          rows.delete(name);
        }
      }
      let prev = null;
      for (const u of users) {
        let row = rows.get(u.name);
        if (!row) {
          row = newRow(u.name);
          rows.set(u.name, row);
        }
        const key = JSON.stringify(u) + "\n" + app.me();
        if (row.key !== key) {
          row.key = key;
          row.user = u;
          draw(row);
        }
        const want = prev ? prev.root.nextSibling : ui.list.firstChild;
        if (want !== row.root) ui.list.insertBefore(row.root, want);
        prev = row;
      }
      ui.empty.hidden = users.length > 0;
    }

    // <li class="user" data-user="NAME" data-source="config|database" data-role="ROLE" data-disabled="false">
    //   <div class="user-head"> name, "you", role (a select for a database user), source, disabled </div>
    //   <p class="user-note">  (config users: why there are no controls; board accounts) </p>
    //   <div class="user-actions"> reset password, disable|enable, new token, delete </div>
    //   <form class="user-password"> new password, Save, Cancel </form>      (made by Reset password)
    //   <div class="token-new"> the new token, shown once, Copy, Done </div>  (after New token)
    //   <ul class="tokens"> <li data-token="ID"> id, created, Revoke </li> </ul>
    //   <p class="form-status" data-field="user-status" role="status"></p>
    // </li>
    function newRow(name) {
      const row = {
        name,
        key: "",
        user: null,
        root: h("li", { class: "user", "data-user": name }),
        head: h("div", { class: "user-head" }),
        note: h("p", { class: "user-note", hidden: true }),
        actions: h("div", { class: "user-actions" }),
        password: null, // the form of Reset password, made when first asked for
        token: h("div", { class: "token-new", hidden: true }),
        tokens: h("ul", { class: "tokens", "aria-label": "Tokens of " + name }),
        status: h("p", { class: "form-status", "data-field": "user-status", role: "status" }),
      };
      row.root.append(row.head, row.note, row.actions, row.token, row.tokens, row.status);
      row.root.addEventListener("click", (ev) => onClick(row, ev));
      row.root.addEventListener("change", (ev) => {
        if (ev.target instanceof HTMLSelectElement && ev.target.dataset.action === "role") changeRole(row, ev.target);
      });
      return row;
    }

    // passwordForm shows the form of Reset password on row, made the first
    // time.
    function passwordForm(row) {
      if (!row.password) {
        const input = h("input", { type: "password", minlength: String(minPassword), required: true, autocomplete: "new-password", "data-field": "new-password" });
        const form = h("form", { class: "user-password", novalidate: true },
          h("label", { class: "field" }, "New password for " + row.name, input),
          h("button", { type: "submit", class: "primary", "data-action": "save-password" }, "Save"),
          h("button", { type: "button", class: "action", "data-action": "cancel-password" }, "Cancel"));
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          const pw = input.value;
          if (pw.length < minPassword) {
            setStatus(row.status, `Not changed: a password has at least ${minPassword} characters.`, "error");
            input.focus();
            return;
          }
          act(row, "PATCH", "", { password: pw }, `Password of ${row.name} changed.`).then((ok) => {
            if (!ok) return;
            input.value = "";
            form.hidden = true;
          });
        });
        form.querySelector('[data-action="cancel-password"]').addEventListener("click", () => {
          input.value = "";
          form.hidden = true;
        });
        row.actions.after(form);
        row.password = form;
      }
      row.password.hidden = false;
      row.password.querySelector("input").focus();
    }

    function pill(cls, text, attrs) {
      return h("span", Object.assign({ class: "pill " + cls }, attrs || {}), text);
    }

    function draw(row) {
      const u = row.user;
      const fromConfig = u.source === "config";
      const board = u.role === "device";
      const editable = !fromConfig;
      row.root.dataset.source = u.source;
      row.root.dataset.role = u.role;
      row.root.dataset.disabled = String(u.disabled);

      const role = editable && !board
        ? h("select", { class: "role-pick", "data-action": "role", "aria-label": "Role of " + u.name },
          ...roles.map((r) => h("option", { value: r, selected: r === u.role }, r)))
        : pill("role", u.role || "?", { "data-field": "role" });
      if (role instanceof HTMLSelectElement) role.value = u.role; // a role this page does not offer shows empty
      row.head.replaceChildren(...[
        h("span", { class: "user-name", "data-field": "name" }, u.name),
        u.name === app.me() ? pill("you", "you") : null,
        role,
        pill("source", fromConfig ? "config.yaml · read-only" : "database", { "data-field": "source" }),
        u.disabled ? pill("disabled", "disabled", { "data-field": "disabled" }) : null,
      ].filter((e) => e));

      if (fromConfig) {
        row.note.textContent = "From config.yaml: change it in the file and restart the control plane. It cannot be changed or deleted here.";
      } else if (board) {
        row.note.textContent = "A board’s account. Forgetting the board deletes it too.";
      }
      row.note.hidden = !fromConfig && !board;

      const button = (action, text, label) => h("button", { type: "button", class: "action", "data-action": action, "aria-label": label }, text);
      row.actions.replaceChildren(...(editable ? [
        board ? null : button("reset-password", "Reset password…", "Reset the password of " + u.name),
        button(u.disabled ? "enable" : "disable", u.disabled ? "Enable" : "Disable", (u.disabled ? "Enable " : "Disable ") + u.name),
        board ? null : button("new-token", "New token", "New API token for " + u.name),
        button("delete-user", "Delete", "Delete " + u.name),
      ].filter((b) => b) : []));
      row.actions.hidden = !editable;
      if (!editable && row.password) row.password.hidden = true;

      row.tokens.replaceChildren(...u.tokens.map((t) => h("li", { class: "token", "data-token": t.id },
        h("span", null, "Token ", h("code", { "data-field": "token-id" }, t.id)),
        " ",
        h("span", { class: "token-created" }, created(t.created)),
        editable ? h("button", { type: "button", class: "action", "data-action": "revoke-token", "data-token": t.id, "aria-label": `Revoke token ${t.id} of ${u.name}` }, "Revoke") : null)));
      row.tokens.hidden = u.tokens.length === 0;
    }

    // act sends one change of row's user (path after api/users/<name>)
    // and reads the list again; it resolves true when it was made. A
    // refusal is shown on the row.
    function act(row, method, path, body, done) {
      const name = row.name;
      const buttons = Array.from(row.root.querySelectorAll("button, select"));
      for (const b of buttons) b.disabled = true;
      setStatus(row.status, "…", "busy");
      return app.api(method, "api/users/" + encodeURIComponent(name) + path, body ? JSON.stringify(body) : undefined, body ? "application/json" : undefined)
        .then((answer) => {
          setStatus(row.status, done, "ok");
          load();
          return answer === null ? true : answer;
        })
        .catch((err) => {
          setStatus(row.status, refusal(err, row.user), "error");
          return false;
        })
        .finally(() => { for (const b of buttons) b.disabled = false; });
    }

    // refusal words an error answer about user u.
    function refusal(err, u) {
      if (err.status === 409) {
        if (u && u.source === "config") return `Refused: ${u.name} is from config.yaml, read-only here (${err.message}).`;
        return `Refused: ${err.message}. There must always be an enabled admin.`;
      }
      if (err.status === 404) return `Refused: no such user any more (${err.message}).`;
      return "Refused: " + err.message;
    }

    function changeRole(row, select) {
      const old = row.user.role;
      const role = select.value;
      if (role === old) return;
      act(row, "PATCH", "", { role }, `${row.name} is now ${role}.`).then((ok) => {
        if (!ok) select.value = old; // refused: show the role it has
      });
    }

    function onClick(row, ev) {
      const b = ev.target instanceof Element ? ev.target.closest("button[data-action]") : null;
      if (!b || b.disabled) return;
      const name = row.name;
      switch (b.dataset.action) {
        case "reset-password":
          passwordForm(row);
          break;
        case "disable":
          act(row, "PATCH", "", { disabled: true }, `${name} disabled: logged out, its tokens refused.`);
          break;
        case "enable":
          act(row, "PATCH", "", { disabled: false }, `${name} enabled.`);
          break;
        case "delete-user":
          if (confirmed(b, "Really delete?")) act(row, "DELETE", "", null, `${name} deleted.`);
          break;
        case "new-token":
          act(row, "POST", "/tokens", null, "").then((t) => {
            if (t && typeof t === "object" && typeof t.token === "string") showToken(row, str(t.id), t.token);
          });
          break;
        case "revoke-token": {
          const id = b.dataset.token;
          if (confirmed(b, "Really revoke?")) act(row, "DELETE", "/tokens/" + encodeURIComponent(id), null, `Token ${id} revoked.`);
          break;
        }
        case "token-done":
          row.token.replaceChildren();
          row.token.hidden = true;
          break;
      }
    }

    // showToken shows a token just made, once, until Done.
    function showToken(row, id, token) {
      const code = h("code", { class: "cred", "data-cred": "token" }, token);
      const note = h("span", { class: "copy-note", role: "status" });
      const copyBtn = h("button", { type: "button", class: "action copy", "data-copy": "token", "aria-label": "Copy the token" }, "Copy");
      copyBtn.addEventListener("click", () => copy(token, code).then((outcome) => {
        note.textContent = copyNote(outcome, "Token");
        note.dataset.outcome = outcome;
      }));
      row.token.replaceChildren(
        h("p", { class: "once", role: "alert" }, h("strong", null, `New token ${id} for ${row.name}, shown only now.`),
          " Use it as ", h("code", null, "Authorization: Bearer …"), " or ", h("code", null, "?token=…"), "."),
        h("p", { class: "cred-line" }, code, " ", copyBtn, " ", note),
        h("button", { type: "button", class: "action", "data-action": "token-done" }, "Done"),
      );
      row.token.hidden = false;
      setStatus(row.status, "", "");
    }

    ui.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = ui.name.value.trim();
      const role = ui.role.value;
      const password = ui.password.value;
      if (!name) {
        setStatus(ui.formStatus, "Give the user a name.", "error");
        ui.name.focus();
        return;
      }
      if (password.length < minPassword) {
        setStatus(ui.formStatus, `A password has at least ${minPassword} characters.`, "error");
        ui.password.focus();
        return;
      }
      const button = ui.form.querySelector('[data-action="create-user"]');
      button.disabled = true;
      setStatus(ui.formStatus, "Adding…", "busy");
      app.api("POST", "api/users", JSON.stringify({ name, role, password }), "application/json")
        .then(() => {
          setStatus(ui.formStatus, `${name} added as ${role}: it can log in now.`, "ok");
          ui.name.value = "";
          ui.password.value = "";
          load();
        })
        .catch((err) => {
          const why = err.status === 409 ? `the name ${name} is taken (${err.message})` : err.message;
          setStatus(ui.formStatus, "Not added: " + why, "error");
        })
        .finally(() => { button.disabled = false; });
    });
    ui.refresh.addEventListener("click", () => load());

    return {
      show() {
        const first = !shown;
        shown = true;
        ui.root.hidden = false;
        if (first || rows.size === 0) load();
      },
      hide() {
        shown = false;
        ui.root.hidden = true;
      },
      connected() {
        if (shown) load();
      },
    };
  };
})();
