// coffer's web console — small building blocks for the pages: elements, notices, dialogs,
// formatting. No inline styles or handlers anywhere (the Content-Security-Policy forbids them):
// looks come from classes in app.css, behaviour from listeners added here.

/**
 * An element: h('button', { class: 'primary', onClick: fn, 'aria-label': 'Close' }, 'Close').
 * attrs: `class` (string or array), `on<Event>` functions, `dataset` (an object), `hidden`,
 * `disabled`, `checked`, `value` and other properties set as such, booleans as presence,
 * null/undefined/false left out. Children: strings, nodes, arrays of them, null.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') {
      el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'indeterminate') {
      el[k] = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Append `children` to `el` as h() does (null, undefined and false are left out). */
export function add(el, ...children) {
  append(el, children);
  return el;
}

/** Empty an element and put `children` in it. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let region = null;

/** The notices' live region (made on first use). */
function notices() {
  if (!region || !region.isConnected) {
    region = document.getElementById('notices');
    if (!region) {
      region = h('div', { id: 'notices', class: 'notices', 'aria-live': 'polite', 'aria-atomic': 'false' });
      document.body.append(region);
    }
  }
  return region;
}

/**
 * Say something to the user, in an aria-live region: kind 'info', 'success' or 'error'.
 * Errors stay until dismissed; the others fade after a few seconds. Returns the notice.
 */
export function notify(message, kind = 'info') {
  const box = notices();
  const close = h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×');
  const note = h(
    'div',
    { class: ['notice', `notice-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'notice-text' }, message),
    close,
  );
  close.addEventListener('click', () => note.remove());
  box.append(note);
  if (kind !== 'error') setTimeout(() => note.remove(), 6000);
  while (box.children.length > 5) box.firstElementChild.remove();
  return note;
}

/** Remove the notices (on a page change, the errors only: a success fades by itself). */
export function clearNotices({ errorsOnly = false } = {}) {
  if (!errorsOnly) {
    notices().replaceChildren();
    return;
  }
  for (const n of notices().querySelectorAll('.notice-error')) n.remove();
}

/**
 * A modal <dialog> asking to confirm `text`; resolves to true (confirmed) or false. Escape and
 * Cancel say no; focus starts on Cancel, so a stray Enter destroys nothing.
 * options: { confirmLabel = 'OK', cancelLabel = 'Cancel', danger = true, title }.
 */
export function confirmDialog(text, { confirmLabel = 'OK', cancelLabel = 'Cancel', danger = true, title } = {}) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'button', value: 'cancel' }, cancelLabel);
    const ok = h('button', { type: 'button', class: ['button', danger ? 'danger' : 'primary'], value: 'ok' }, confirmLabel);
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      'dialog',
      { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId, class: 'dialog-title' }, title || 'Please confirm'),
      h('p', { class: 'dialog-text' }, text),
      h('div', { class: 'dialog-actions' }, cancel, ok),
    );
    const opener = document.activeElement;
    let answered = false;
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    ok.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(false);
    });
    dialog.addEventListener('close', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * A modal <dialog> with a form: `fields` are [{ name, label, type='text', value, required,
 * pattern, options: [[value, label]…] (a select), help }]. Resolves to { name: value } or null.
 */
export function formDialog(title, fields, { submitLabel = 'OK', cancelLabel = 'Cancel' } = {}) {
  return new Promise((resolve) => {
    const inputs = {};
    const rows = fields.map((f) => {
      const id = `f-${Math.random().toString(36).slice(2)}`;
      let input;
      if (f.options) {
        input = h('select', { id, name: f.name }, f.options.map(([v, l]) => h('option', { value: v, selected: v === f.value }, l)));
      } else {
        input = h('input', {
          id,
          name: f.name,
          type: f.type || 'text',
          value: f.value ?? '',
          required: f.required,
          pattern: f.pattern,
          placeholder: f.placeholder,
          autocomplete: 'off',
          'aria-describedby': f.help ? `${id}-help` : null,
        });
      }
      inputs[f.name] = input;
      return h(
        'div',
        { class: 'field' },
        h('label', { for: id }, f.label),
        input,
        f.help ? h('small', { id: `${id}-help`, class: 'help' }, f.help) : null,
      );
    });
    const cancel = h('button', { type: 'button', class: 'button' }, cancelLabel);
    const submit = h('button', { type: 'submit', class: 'button primary' }, submitLabel);
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const form = h('form', { class: 'dialog-form' }, rows, h('div', { class: 'dialog-actions' }, cancel, submit));
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, h('h2', { id: titleId, class: 'dialog-title' }, title), form);
    const opener = document.activeElement;
    let answered = false;
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(answer);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const values = {};
      for (const [k, el] of Object.entries(inputs)) values[k] = el.value;
      finish(values);
    });
    cancel.addEventListener('click', () => finish(null));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      finish(null);
    });
    document.body.append(dialog);
    dialog.showModal();
    Object.values(inputs)[0]?.focus();
  });
}

/** Put `text` on the clipboard; true when it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (plain http, an old browser): select it in a hidden field.
    const area = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** A button that copies `text` to the clipboard and says so. */
export function copyButton(text, label = 'Copy') {
  const btn = h('button', { type: 'button', class: 'button small copy', dataset: { copy: text } }, label);
  btn.addEventListener('click', async () => {
    const ok = await copyText(text);
    notify(ok ? 'Copied to the clipboard.' : 'Could not copy; select the text and copy it yourself.', ok ? 'success' : 'error');
  });
  return btn;
}

/** 1536 → "1.5 KB" (binary multiples, written the common way). */
export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  n = Number(n);
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let i = -1;
  do {
    n /= 1024;
    i += 1;
  } while (n >= 1024 && i < units.length - 1);
  return `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

/** An RFC 3339 time or Unix seconds → the local date and time, e.g. "2026-03-01 14:05". */
export function formatTime(t) {
  if (t === null || t === undefined || t === '') return '—';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * A table: columns are [{ label, cell: (row) => string|Node, class }], rows any values.
 * Empty rows: a single row saying `empty` (default 'Nothing here yet.').
 */
export function table(columns, rows, { caption, empty = 'Nothing here yet.', class: cls } = {}) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: ['table', cls] },
      caption ? h('caption', null, caption) : null,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h(
        'tbody',
        null,
        rows.length
          ? rows.map((r) => h('tr', null, columns.map((c) => h('td', { class: c.class, dataset: { label: c.label } }, c.cell(r)))))
          : h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, empty)),
      ),
    ),
  );
}

/** A link inside the app: navigates with the History API (ctrl/middle-click still open a tab). */
export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs, dataset: { ...(attrs.dataset || {}), route: '' } }, text);
}

/** A "Loading…" line for a page that waits. */
export function loading(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, what);
}

/** An inline error paragraph (role alert). */
export function errorBox(message) {
  return h('p', { class: 'error-box', role: 'alert' }, message);
}

/** A labelled badge: a role or a classification, said in words. */
export function badge(text, kind = '') {
  return h('span', { class: ['badge', kind && `badge-${kind}`] }, text);
}

let uid = 0;
/** A unique element id (labels and hints need one). */
export const nextId = (stem) => `${stem}-${++uid}`;

/** A labelled form control: `<div class="field"><label>…</label>control hint</div>`. */
export function field(label, control, hint) {
  control.id ||= nextId('f');
  const parts = [h('label', { for: control.id }, label), control];
  if (hint) {
    const hintEl = h('p', { class: 'help', id: nextId('help') }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  return h('div', { class: 'field' }, ...parts);
}
