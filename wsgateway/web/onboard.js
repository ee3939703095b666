// Switchyard dashboard: the Add board dialog (admins). Id, name and tags
// make a board's account; the answer is shown once: its username and
// password, the devicefw command line that connects it and the
// environment file for devicefw.service, each with a copy button. The
// same dialog adopts a "new" board (one that connected without an
// account): its id is given, and it may be forgotten instead.
// app.js owns the page and calls in here (Switchyard.onboardView).
//
//   POST   api/boards {"id","name","tags"}   201 {"id","username","password","broker","update_key","command","env"}
//   DELETE api/devices/<id>                  forget a new board
//
// The password is in the page only while the dialog shows it: closing
// the dialog (Done, Cancel, Esc) drops it, and opening it again shows an
// empty form. The control plane keeps only a digest of it.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});
  const validID = (id) => /^[A-Za-z0-9_-]{1,64}$/.test(id);
  const splitTags = (s) => s.split(/[\s,]+/).filter((t) => t !== "");
  const str = (v) => (typeof v === "string" ? v : "");

  /**
   * onboardView runs the dialog. app gives it:
   *   api(method, path, body, contentType) → Promise of the JSON answer
   *     (rejected with Error(message), .status set, for an error answer);
   *   toast(message);
   *   meta(id) → {name, shown, tags} of a known board, or null;
   *   changed(id): the board was added, adopted or forgotten: read it again.
   */
  S.onboardView = (app) => {
    const { h, confirmed, copy, copyNote } = S.kit;
    const $ = (id) => document.getElementById(id);
    const ui = {
      dialog: $("board-dialog"),
      title: $("bd-title"),
      intro: $("bd-intro"),
      form: $("bd-form"),
      id: $("bd-id"),
      name: $("bd-name"),
      idNote: $("bd-id-note"),
      tags: $("bd-tags"),
      status: $("bd-status"),
      create: document.querySelector('#bd-form [data-action="create-board"]'),
      forget: document.querySelector('#bd-form [data-action="forget-board"]'),
      result: $("bd-result"),
    };

    let adopting = ""; // the id of the new board being adopted; "" when adding one
    let gen = 0; // bumped when the dialog closes: a late answer is dropped

    function status(text, kind) {
      ui.status.textContent = text;
      if (kind) ui.status.dataset.status = kind;
      else delete ui.status.dataset.status;
    }

    // open shows the empty form, for a new board or to adopt board id.
    function open(id) {
      reset();
      adopting = id || "";
      ui.dialog.dataset.mode = adopting ? "adopt" : "add";
      ui.id.readOnly = adopting !== "";
      ui.forget.hidden = adopting === "";
      ui.idNote.hidden = adopting !== "";
      if (adopting) {
        const m = app.meta(adopting);
        const shown = m ? m.shown : adopting;
        ui.title.textContent = "Adopt " + (shown === adopting ? adopting : `${shown} (${adopting})`);
        ui.intro.textContent = `${adopting} connected without an account (anonymous access allowed it). ` +
          "Adopting it makes its account: it keeps working now, and with the credentials shown next " +
          "it also connects where anonymous access is off. Or forget it, if it is not one of yours.";
        ui.id.value = adopting;
        ui.name.value = m && m.name ? m.name : "";
        ui.name.placeholder = shown;
        ui.tags.value = m ? m.tags.join(" ") : "";
        ui.create.textContent = "Adopt";
      } else {
        ui.title.textContent = "Add a board";
        ui.name.placeholder = "Kitchen light";
        ui.intro.textContent = "The board gets its own account. Its password is shown once, " +
          "with the command that connects it and the file for its service.";
        ui.create.textContent = "Add board";
      }
      if (typeof ui.dialog.showModal === "function") ui.dialog.showModal();
      else ui.dialog.setAttribute("open", "");
      (adopting ? ui.name : ui.id).focus();
    }

    function close() {
      if (typeof ui.dialog.close === "function") ui.dialog.close();
      else {
        ui.dialog.removeAttribute("open");
        reset();
      }
    }

    // reset drops what the dialog showed, the password above all.
    function reset() {
      gen++;
      ui.result.replaceChildren();
      ui.result.hidden = true;
      ui.form.hidden = false;
      ui.form.reset();
      ui.id.readOnly = false;
      ui.create.disabled = false;
      ui.forget.disabled = false;
      status("", "");
    }

    ui.dialog.addEventListener("close", reset);
    ui.dialog.addEventListener("click", (ev) => {
      const b = ev.target instanceof Element ? ev.target.closest('[data-action="close-dialog"]') : null;
      if (b) close();
    });

    ui.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = ui.id.value.trim();
      if (!validID(id)) {
        status("The id takes letters, digits, - and _ only, 1 to 64 of them.", "error");
        ui.id.focus();
        return;
      }
      const body = { id, tags: splitTags(ui.tags.value.toLowerCase()) };
      const name = ui.name.value.trim();
      if (name) body.name = name;
      const g = gen;
      ui.create.disabled = true;
      status(adopting ? "Adopting…" : "Adding…", "busy");
      app.api("POST", "api/boards", JSON.stringify(body), "application/json")
        .then((creds) => {
          if (g !== gen) return;
          app.changed(id);
          showCredentials(creds || {}, id);
        })
        .catch((err) => {
          if (g !== gen) return;
          ui.create.disabled = false;
          const verb = adopting ? "Not adopted" : "Not added";
          switch (err.status) {
            case 409: status(`${verb}: the id ${id} is taken (${err.message}).`, "error"); break;
            case 403: status(`${verb}: only admins may add boards.`, "error"); break;
            default: status(`${verb}: ${err.message}`, "error");
          }
          if (!adopting) ui.id.focus();
        });
    });

    ui.forget.addEventListener("click", () => {
      if (!adopting || !confirmed(ui.forget, "Really forget?")) return;
      const id = adopting;
      const g = gen;
      ui.forget.disabled = true;
      app.api("DELETE", "api/devices/" + encodeURIComponent(id))
        .then(() => {
          app.changed(id);
          app.toast(`${id} forgotten.`);
          if (g === gen) close();
        })
        .catch((err) => {
          if (g !== gen) return;
          ui.forget.disabled = false;
          status("Not forgotten: " + err.message, "error");
        });
    });

    // copyButton is a button (its text label) copying text, which node
    // shows, and a note saying what became of it.
    function copyButton(text, node, what, label) {
      const note = h("span", { class: "copy-note", role: "status" });
      const button = h("button", { type: "button", class: "action copy", "data-copy": node.dataset.cred, "aria-label": "Copy the " + what.toLowerCase() }, label);
      button.addEventListener("click", () => {
        copy(text, node).then((outcome) => {
          note.textContent = copyNote(outcome, what);
          note.dataset.outcome = outcome;
        });
      });
      return [button, note];
    }

    function showCredentials(c, id) {
      const username = str(c.username);
      const password = str(c.password);
      const command = str(c.command);
      const env = str(c.env);
      const field = (label, value, key) => {
        const code = h("code", { class: "cred", "data-cred": key }, value);
        return h("div", { class: "cred-row" }, h("dt", null, label), h("dd", null, code, ...copyButton(value, code, label, "Copy")));
      };
      const block = (value, key, what) => {
        const pre = h("pre", { class: "cred-block", "data-cred": key, tabindex: "0" }, value);
        return [pre, h("p", { class: "copy-line" }, ...copyButton(value, pre, what, "Copy " + what.toLowerCase()))];
      };
      const done = h("button", { type: "button", class: "primary", "data-action": "close-dialog" }, "Done");
      ui.title.textContent = (adopting ? "Adopted " : "Added ") + str(c.id || id);
      ui.intro.textContent = `${str(c.id || id)} appears on the dashboard now, waiting for its first connection.`;
      ui.result.replaceChildren(
        h("p", { class: "once", role: "alert" },
          h("strong", null, "This password is shown only now."),
          " Copy it, or the command or file below that hold it, before you close this dialog: " +
          "the control plane keeps only a digest of it. Lost it? Forget the board and add it again."),
        h("dl", { class: "cred-list" }, field("Username", username, "username"), field("Password", password, "password")),
        h("h3", null, "Run it on the board"),
        ...block(command, "command", "Command"),
        h("h3", null, "Or run it as a service"),
        h("p", { class: "creds-note" }, "Save this as ", h("code", null, "/etc/default/devicefw"),
          " (devicefw.service reads it), then ", h("code", null, "systemctl restart devicefw"), ":"),
        ...block(env, "env", "File"),
        c.broker ? h("p", { class: "creds-note" }, "The board connects to ", h("code", null, str(c.broker)),
          ": the host of ", h("code", null, "http.public_url"), " when it is set, else the one this page was opened at.") : null,
        h("div", { class: "form-foot" }, done),
      );
      ui.form.hidden = true;
      ui.result.hidden = false;
      done.focus();
    }

    return {
      // add opens the dialog for a new board.
      add() { open(""); },
      // adopt opens it for board id, which connected without an account.
      adopt(id) { open(id); },
      // forget forgets board id (a new one) after a second click on button.
      forget(id, button) {
        if (!confirmed(button, "Really forget?")) return;
        button.disabled = true;
        app.api("DELETE", "api/devices/" + encodeURIComponent(id))
          .then(() => {
            app.changed(id);
            app.toast(`${id} forgotten.`);
          })
          .catch((err) => app.toast(`Forget ${id}: ${err.message}`))
          .finally(() => { button.disabled = false; });
      },
    };
  };
})();
