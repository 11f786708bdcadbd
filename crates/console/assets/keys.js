// "Access keys" (/console/keys): the signed-in user's access keys for S3 clients — create one
// (its secret is shown once, right after creating it, with copy buttons), list them, revoke
// one (after a confirmation). Uses GET|POST /me/keys and DELETE /me/keys/{id} only.
//
// The secret lives in the DOM of the panel shown after creating a key and nowhere else: it
// is not kept in a variable of this module, in the URL, in history state or in storage, so
// leaving or reloading the page loses it (the list shows only key ids, as the API does).

import { api, describeError } from './api.js';
import { h, notify, confirmDialog, copyButton, formatTime, errorBox, loading, field, nextId } from './ui.js';

/** The lifetimes offered for a new key, in seconds (null: until revoked). */
const LIFETIMES = [
  ['', 'Until revoked'],
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
  ['2592000', '30 days'],
  ['7776000', '90 days'],
  ['31536000', '1 year'],
];


/** Unix seconds → a readable time (or a dash). */
const when = (secs) => (secs ? formatTime(secs) : '—');

/** Is this key still usable? 'active', 'revoked' or 'expired'. */
function status(key, now = Date.now() / 1000) {
  if (key.revoked_at) return 'revoked';
  if (key.narrowing?.expires_at && key.narrowing.expires_at <= now) return 'expired';
  return 'active';
}

/** What a key is limited to, in words. */
function limits(n) {
  const out = [];
  if (n?.read_only) out.push('read-only');
  if (n?.buckets?.length) out.push(`only ${n.buckets.join(', ')}`);
  if (n?.classification) out.push(`only ${n.classification} buckets`);
  return out.length ? out.join('; ') : 'none (everything you may do)';
}

/** This page's styles (pages.css), linked once, unless index.html links them already. */
function ensureStyles() {
  if (!document.querySelector('link[href="/console/pages.css"]')) {
    document.head.append(h('link', { rel: 'stylesheet', href: '/console/pages.css' }));
  }
}

export async function render(main, ctx) {
  ensureStyles();
  const heading = h('h1', { tabindex: '-1' }, 'Access keys');
  const secretSlot = h('div', { class: 'secret-slot' });
  const listSlot = h('section', { class: 'keys-list', 'aria-labelledby': 'keys-list-title' });
  main.append(
    heading,
    h('p', { class: 'lede' },
      'Access keys let S3 clients (the aws CLI, boto3, rclone, …) act as you. Point them at ',
      h('code', {}, location.origin),
      ' with any region. A key never reaches further than you do, and can be narrowed further.'),
    secretSlot,
    createForm(ctx, secretSlot, () => loadList(listSlot, ctx)),
    listSlot,
  );
  await loadList(listSlot, ctx);
}

/** The form that makes a new key. */
function createForm(ctx, secretSlot, reload) {
  const readOnly = h('input', { type: 'checkbox', name: 'read_only' });
  const buckets = h('input', { type: 'text', name: 'buckets', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. team-data, reports' });
  const classification = h('select', { name: 'classification' },
    h('option', { value: '' }, 'Any I am cleared for'),
    ...(ctx.me?.clearance ?? []).map((c) => h('option', { value: c }, c)));
  const lifetime = h('select', { name: 'expires' }, ...LIFETIMES.map(([v, label]) => h('option', { value: v }, label)));
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Create key');
  const problem = h('div', { class: 'form-problem', role: 'alert' });

  const form = h('form', { class: 'form-card create-key', 'aria-labelledby': 'create-key-title', novalidate: '' },
    h('h2', { id: 'create-key-title' }, 'Create a key'),
    h('div', { class: 'field checkbox' }, readOnly, h('label', { for: (readOnly.id = nextId('ro')) }, 'Read-only (refuse every write)')),
    field('Only these buckets', buckets, 'Optional. Bucket names separated by commas or spaces; empty: every bucket you may use.'),
    field('Only buckets classified', classification),
    field('Expires', lifetime),
    h('div', { class: 'actions' }, submit),
    problem,
  );

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.textContent = '';
    const body = {};
    if (readOnly.checked) body.read_only = true;
    const names = buckets.value.split(/[\s,]+/).filter(Boolean);
    const bad = names.find((n) => !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(n));
    if (bad) {
      problem.textContent = `"${bad}" is not a bucket name: 3–63 lower-case letters, digits, dots and dashes.`;
      buckets.focus();
      return;
    }
    if (names.length) body.buckets = names;
    if (classification.value) body.classification = classification.value;
    if (lifetime.value) body.expires_in_seconds = Number(lifetime.value);
    submit.disabled = true;
    try {
      const created = await api('POST', '/me/keys', body);
      form.reset();
      showSecret(secretSlot, created);
      notify(`Key ${created.access_key_id} created.`, 'success');
      await reload();
    } catch (err) {
      problem.textContent = `The key was not created: ${describeError(err)}`;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** The one-time panel with the new key's id and secret. */
function showSecret(slot, created) {
  const id = created.access_key_id;
  const secret = created.secret_access_key;
  const title = h('h2', { tabindex: '-1', id: 'new-key-title' }, 'Your new key');
  const profile = `[coffer]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}\n`;
  const done = h('button', { type: 'button', class: 'button' }, 'I have saved the secret');
  const panel = h('section', { class: 'form-card secret-panel', 'aria-labelledby': 'new-key-title', dataset: { testid: 'new-key' } },
    title,
    h('p', { class: 'hint' },
      h('strong', {}, 'Copy the secret now. '),
      'It is shown only this once: coffer keeps it sealed and cannot show it again. If you lose it, revoke the key and create another.'),
    h('dl', { class: 'secret-values' },
      h('dt', {}, 'Access key id'),
      h('dd', {}, h('code', { class: 'key-id' }, id), ' ', copyButton(id, 'Copy key id')),
      h('dt', {}, 'Secret access key'),
      h('dd', {}, h('code', { class: 'key-secret' }, secret), ' ', copyButton(secret, 'Copy secret')),
    ),
    h('details', {},
      h('summary', {}, 'As an aws CLI profile (~/.aws/credentials)'),
      h('pre', {}, profile),
      copyButton(profile, 'Copy profile')),
    h('div', { class: 'actions' }, done),
  );
  done.addEventListener('click', () => {
    slot.replaceChildren();
    document.querySelector('main h1')?.focus();
  });
  slot.replaceChildren(panel);
  title.focus();
}

/** (Re)load the list of keys into `slot`. */
async function loadList(slot, ctx) {
  slot.replaceChildren(h('h2', { id: 'keys-list-title' }, 'Your keys'), loading('Loading your keys…'));
  let keys;
  try {
    keys = await api('GET', '/me/keys');
  } catch (err) {
    slot.replaceChildren(h('h2', { id: 'keys-list-title' }, 'Your keys'), errorBox(`Your keys could not be loaded: ${describeError(err)}`));
    return;
  }
  const now = Date.now() / 1000;
  const order = { active: 0, expired: 1, revoked: 2 };
  keys.sort((a, b) => order[status(a, now)] - order[status(b, now)] || b.created_at - a.created_at);
  const active = keys.filter((k) => status(k, now) === 'active').length;
  const summary = keys.length
    ? `${active} active key${active === 1 ? '' : 's'}${keys.length > active ? `, ${keys.length - active} revoked or expired` : ''}.`
    : 'You have no access keys yet.';
  const parts = [h('h2', { id: 'keys-list-title' }, 'Your keys'), h('p', {}, summary)];
  if (keys.length) {
    const rows = keys.map((k) => keyRow(k, now, slot, ctx));
    parts.push(h('div', { class: 'table-wrap' },
      h('table', { class: 'table keys' },
        h('caption', { class: 'visually-hidden' }, 'Your access keys'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Access key id'),
          h('th', { scope: 'col' }, 'Status'),
          h('th', { scope: 'col' }, 'Limited to'),
          h('th', { scope: 'col' }, 'Created'),
          h('th', { scope: 'col' }, 'Expires'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, ...rows))));
  }
  slot.replaceChildren(...parts);
}

function keyRow(k, now, slot, ctx) {
  const st = status(k, now);
  const label = { active: 'Active', revoked: `Revoked ${when(k.revoked_at)}`, expired: 'Expired' }[st];
  let action = '';
  if (st === 'active') {
    action = h('button', { type: 'button', class: 'button danger', 'aria-label': `Revoke key ${k.access_key_id}` }, 'Revoke');
    action.addEventListener('click', () => revoke(k, action, slot, ctx));
  }
  return h('tr', { dataset: { key: k.access_key_id, status: st } },
    h('td', { 'data-label': 'Access key id' }, h('code', {}, k.access_key_id)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${st}` }, label)),
    h('td', { 'data-label': 'Limited to' }, limits(k.narrowing)),
    h('td', { 'data-label': 'Created' }, when(k.created_at)),
    h('td', { 'data-label': 'Expires' }, k.narrowing?.expires_at ? when(k.narrowing.expires_at) : 'never'),
    h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' }, action)));
}

async function revoke(k, button, slot, ctx) {
  const ok = await confirmDialog(
    `Revoke the access key ${k.access_key_id}? Every program using it stops working within a second. This cannot be undone.`,
    { confirmLabel: 'Revoke key' });
  if (!ok) {
    button.focus();
    return;
  }
  button.disabled = true;
  try {
    await api('DELETE', `/me/keys/${encodeURIComponent(k.access_key_id)}`);
    notify(`Key ${k.access_key_id} revoked.`, 'success');
  } catch (err) {
    notify(`The key was not revoked: ${describeError(err)}`, 'error');
    button.disabled = false;
    return;
  }
  await loadList(slot, ctx);
  slot.querySelector('h2')?.setAttribute('tabindex', '-1');
  slot.querySelector('h2')?.focus();
}
