// Switchyard dashboard: small DOM helpers the views share (updates.js,
// board.js, audit.js, onboard.js, users.js), as Switchyard.kit. Loaded
// first.
"use strict";

(() => {
  const S = (window.Switchyard = window.Switchyard || {});

  // h builds an element: h("p", {class: "x", "data-a": "b"}, "text", child…);
  // an attribute whose value is null, undefined or false is left out, and
  // so is a child that is null or undefined.
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k in attrs) {
        const v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // confirmed makes a button whose action cannot be undone ask again: the
  // first click turns its text into question (data-confirm set) for 5 s,
  // and only a second click within them is confirmed.
  function confirmed(button, question) {
    clearTimeout(button.confirmTimer);
    if (button.dataset.confirm === "true") {
      delete button.dataset.confirm;
      button.textContent = button.dataset.label;
      return true;
    }
    button.dataset.label = button.textContent;
    button.dataset.confirm = "true";
    button.textContent = question;
    button.confirmTimer = setTimeout(() => {
      delete button.dataset.confirm;
      button.textContent = button.dataset.label;
    }, 5000);
    return false;
  }

  // selectAll selects the text of node (an input, a textarea or any
  // element), so that Ctrl+C copies it.
  function selectAll(node) {
    if (node instanceof HTMLInputElement || node instanceof HTMLTextAreaElement) {
      node.focus();
      node.select();
      return;
    }
    const range = document.createRange();
    range.selectNodeContents(node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // copy puts text on the clipboard and resolves with "copied", or with
  // "selected" when it could only select it in node (which shows text):
  // the async clipboard exists only in a secure context (https, or
  // localhost), and the dashboard is often served over plain http on a
  // LAN, where the older execCommand("copy") may still work, or not. That
  // copies text from a textarea made for the purpose, not node's
  // selection, which would lose a final newline.
  function copy(text, node) {
    const fallback = () => {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      (node.closest("dialog") || document.body).append(area); // inside a modal dialog, or it cannot be focused
      area.select();
      let ok = false;
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
      selectAll(node);
      return ok ? "copied" : "selected";
    };
    if (window.isSecureContext && navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
      return navigator.clipboard.writeText(text).then(() => {
        selectAll(node); // shows what was copied
        return "copied";
      }, fallback);
    }
    return Promise.resolve(fallback());
  }

  // copyNote is what a copy button's status says of copy's outcome.
  const copyNote = (outcome, what) => (outcome === "copied"
    ? `${what} copied.`
    : `${what} selected: press Ctrl+C (⌘C on a Mac) to copy it.`);

  S.kit = { h, confirmed, copy, copyNote, selectAll };
})();
