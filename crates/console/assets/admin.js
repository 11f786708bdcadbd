// The platform admin's pages (/console/admin/users, /console/admin/quotas,
// /console/admin/audit; ctx.params.page says which):
//   users   every user record with groups, clearance, quota and usage (GET /users);
//   quotas  set or remove a user's or a bucket's quota, the quotas in force with usage bars
//           (GET /users, GET /buckets, GET|PUT|DELETE /users/{name}/quota and
//           /buckets/{name}/quota);
//   audit   the authorization decisions, newest first, filtered by user, bucket, decision and
//           time, page after page (GET /audit). A bucket's admins may see their bucket's
//           decisions here too.
// Anyone else opening them is told plainly that only platform administrators may.

import { api, ApiError, describeError, attempt } from './api.js';
import { h, notify, confirmDialog, formatBytes, formatTime, errorBox, loading, badge, field, nextId } from './ui.js';

const TITLES = { users: 'Users', quotas: 'Quotas', audit: 'Audit log' };
const UNITS = [['1', 'bytes'], [String(1024), 'KB'], [String(1024 ** 2), 'MB'], [String(1024 ** 3), 'GB'], [String(1024 ** 4), 'TB']];
/** With more buckets than this, their quotas are checked only when asked. */
const BUCKET_SCAN_LIMIT = 50;


const plural = (n, one, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** This page's styles (pages.css), linked once, unless index.html links them already. */
function ensureStyles() {
  if (!document.querySelector('link[href="/console/pages.css"]')) {
    document.head.append(h('link', { rel: 'stylesheet', href: '/console/pages.css' }));
  }
}

export async function render(main, ctx) {
  ensureStyles();
  const page = ctx.params?.page in TITLES ? ctx.params.page : 'users';
  main.append(h('h1', { tabindex: '-1' }, TITLES[page]));
  if (page === 'audit') return renderAudit(main, ctx);
  if (!ctx.me?.is_admin) return notAllowed(main, ctx, page);
  return page === 'users' ? renderUsers(main, ctx) : renderQuotas(main, ctx);
}

/** What a signed-in user who is not a platform admin sees. */
async function notAllowed(main, ctx, page, detail) {
  const what = {
    users: 'see and manage the users of coffer',
    quotas: 'set and remove quotas',
    audit: 'see the whole audit log',
  }[page];
  main.append(h('div', { class: 'not-allowed', role: 'alert' },
    h('p', {}, h('strong', {}, `Only platform administrators can ${what}.`)),
    h('p', {}, `You are signed in as ${ctx.me?.name ?? 'someone else'}, who is not a platform administrator`,
      detail ? ` (coffer said: ${detail}).` : '.',
      ' If you need this, ask your platform team.')));
  if (page === 'quotas') {
    // What anyone may see: their own quota.
    const mine = h('section', { class: 'form-card my-quota', 'aria-labelledby': 'my-quota-title' },
      h('h2', { id: 'my-quota-title' }, 'Your own quota'), loading());
    main.append(mine);
    try {
      const q = await api('GET', '/me/quota');
      mine.replaceChildren(h('h2', { id: 'my-quota-title' }, 'Your own quota'),
        h('p', {}, q.max_bytes === null && q.max_objects === null
          ? 'No quota limits the buckets you own.'
          : 'Over all the buckets you own:'),
        usageBlock(q));
    } catch (err) {
      mine.replaceChildren(h('h2', { id: 'my-quota-title' }, 'Your own quota'),
        errorBox(`Your quota could not be loaded: ${describeError(err)}`));
    }
  }
}

/** Is this a "you are not the platform admin" refusal? */
const refused = (err) => err instanceof ApiError && err.status === 403;

// ---------------------------------------------------------------------------------------------
// Usage bars
// ---------------------------------------------------------------------------------------------

/**
 * A bar of `used` against `max` (`null`: no limit, no bar), with the numbers in words.
 * `fmt` formats an amount; `what` names the dimension for screen readers ("Storage").
 */
export function usageBar(used, max, fmt, what) {
  const text = max === null || max === undefined
    ? `${fmt(used)} (no limit)`
    : `${fmt(used)} of ${fmt(max)}`;
  if (max === null || max === undefined) {
    return h('div', { class: 'usage unlimited' }, h('span', { class: 'usage-text' }, text));
  }
  const pct = max > 0 ? (used / max) * 100 : (used > 0 ? 100 : 0);
  const level = pct >= 100 ? 'full' : pct >= 80 ? 'high' : 'ok';
  const fill = h('span', { class: 'usage-fill' });
  fill.style.width = `${Math.min(100, pct).toFixed(1)}%`;
  const label = `${text} (${pct < 1 && used > 0 ? '<1' : Math.round(pct)}%)`;
  return h('div', { class: ['usage', `usage-${level}`] },
    h('div', { class: 'usage-track', role: 'meter', 'aria-label': what, 'aria-valuemin': '0',
      'aria-valuemax': String(max), 'aria-valuenow': String(Math.min(used, max)), 'aria-valuetext': label }, fill),
    h('span', { class: 'usage-text' }, label));
}

const count = (n) => Number(n).toLocaleString();

/** Size and object bars of a quota report or user row. */
function usageBlock(q) {
  return h('div', { class: 'usage-block' },
    h('div', { class: 'usage-line' }, h('span', { class: 'usage-dim' }, 'Size'), usageBar(q.bytes, q.max_bytes, formatBytes, 'Storage used')),
    h('div', { class: 'usage-line' }, h('span', { class: 'usage-dim' }, 'Objects'), usageBar(q.objects, q.max_objects, count, 'Objects stored')));
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

async function renderUsers(main, ctx) {
  const slot = h('div', { class: 'users-slot' }, loading('Loading the users…'));
  main.append(h('p', { class: 'lede' },
    'Everyone coffer keeps a record of: users created by an operator, and people who signed in with a token and made an access key. Their usage counts the buckets they own.'),
    slot);
  let users;
  try {
    users = await api('GET', '/users');
  } catch (err) {
    slot.replaceChildren();
    if (refused(err)) return notAllowed(main, ctx, 'users', err.problem?.detail);
    slot.append(errorBox(`The users could not be loaded: ${describeError(err)}`));
    return;
  }
  users.sort((a, b) => a.name.localeCompare(b.name));
  const filter = h('input', { type: 'search', name: 'filter', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'name, group or clearance', value: ctx.query?.get('q') ?? '' });
  const shown = h('p', { class: 'count', role: 'status' });
  const tbody = h('tbody', {});
  const rows = users.map((u) => [u, userRow(u)]);
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    let n = 0;
    tbody.replaceChildren();
    for (const [u, tr] of rows) {
      const hay = [u.name, ...u.groups, ...u.clearance].join(' ').toLowerCase();
      if (!q || hay.includes(q)) {
        tbody.append(tr);
        n += 1;
      }
    }
    shown.textContent = q ? `${plural(n, 'user')} of ${users.length} match.` : `${plural(users.length, 'user')}.`;
  };
  filter.addEventListener('input', apply);
  slot.replaceChildren(
    h('form', { class: 'filter-bar', role: 'search', 'aria-label': 'Filter the users' },
      field('Filter', filter)),
    shown,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table users' },
        h('caption', { class: 'visually-hidden' }, 'Users, with their quotas and usage'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'User'),
          h('th', { scope: 'col' }, 'Groups'),
          h('th', { scope: 'col' }, 'Clearance'),
          h('th', { scope: 'col' }, 'Usage and quota'),
          h('th', { scope: 'col' }, 'Since'),
          h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        tbody)));
  slot.querySelector('form').addEventListener('submit', (e) => e.preventDefault());
  apply();
}

function userRow(u) {
  const untracked = u.untracked_buckets
    ? h('p', { class: 'help small' }, `${plural(u.untracked_buckets, 'bucket')} without a quota not counted.`)
    : null;
  return h('tr', { dataset: { user: u.name } },
    h('th', { scope: 'row', 'data-label': 'User' }, u.name, u.is_admin ? [' ', badge('platform admin', 'role-admin')] : null),
    h('td', { 'data-label': 'Groups' }, u.groups.length ? u.groups.join(', ') : h('span', { class: 'muted' }, 'none')),
    h('td', { 'data-label': 'Clearance' }, u.clearance.join(', ')),
    h('td', { 'data-label': 'Usage and quota' }, usageBlock(u), untracked),
    h('td', { 'data-label': 'Since' }, formatTime(u.created_at)),
    h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' },
      h('a', { class: 'button small', href: `/console/admin/quotas?user=${encodeURIComponent(u.name)}`,
        'aria-label': `Set the quota of ${u.name}` }, u.max_bytes !== null || u.max_objects !== null ? 'Change quota' : 'Set quota'))));
}

// ---------------------------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------------------------

/** Bytes → [amount, unit multiplier] for the form (the largest unit that gives a whole-ish number). */
function splitBytes(n) {
  for (const [mult] of [...UNITS].reverse()) {
    const m = Number(mult);
    if (n >= m && (n / m) * 100 === Math.round((n / m) * 100)) return [String(n / m), mult];
  }
  return [String(n), '1'];
}

async function renderQuotas(main, ctx) {
  const userSlot = h('section', { class: 'quota-list', 'aria-labelledby': 'user-quotas-title' }, loading('Loading the quotas…'));
  const bucketSlot = h('section', { class: 'quota-list', 'aria-labelledby': 'bucket-quotas-title' });
  const state = { users: [], buckets: [] };
  const form = quotaForm(ctx, state, () => reload());
  main.append(
    h('p', { class: 'lede' },
      'A quota limits the bytes and objects stored in one bucket, or in all the buckets a user owns. Writes that would exceed it are refused.'),
    form.el, userSlot, bucketSlot);

  async function reload() {
    let users;
    let buckets;
    try {
      [users, buckets] = await Promise.all([api('GET', '/users'), api('GET', '/buckets')]);
    } catch (err) {
      if (refused(err)) {
        form.el.remove();
        userSlot.remove();
        bucketSlot.remove();
        main.querySelector('.lede')?.remove();
        return notAllowed(main, ctx, 'quotas', err.problem?.detail);
      }
      userSlot.replaceChildren(errorBox(`The quotas could not be loaded: ${describeError(err)}`));
      return;
    }
    state.users = users;
    state.buckets = buckets;
    form.suggest(users.map((u) => u.name), buckets.map((b) => b.name));
    showUserQuotas(userSlot, users, form, reload);
    showBucketQuotas(bucketSlot, buckets, form, reload);
  }
  await reload();
  await form.prefill(ctx.query);
}

function quotaForm(ctx, state, reload) {
  const scopeUser = h('input', { type: 'radio', name: 'scope', value: 'user', checked: true, id: nextId('scope') });
  const scopeBucket = h('input', { type: 'radio', name: 'scope', value: 'bucket', id: nextId('scope') });
  const userList = h('datalist', { id: nextId('users') });
  const bucketList = h('datalist', { id: nextId('buckets') });
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'off', spellcheck: 'false', list: userList.id, 'aria-required': 'true' });
  const amount = h('input', { type: 'number', name: 'max_size', min: '0', step: 'any', inputmode: 'decimal', class: 'amount' });
  const unit = h('select', { name: 'unit', 'aria-label': 'Unit of the size limit' },
    ...UNITS.map(([v, l]) => h('option', { value: v, selected: l === 'GB' }, l)));
  const objects = h('input', { type: 'number', name: 'max_objects', min: '0', step: '1', inputmode: 'numeric' });
  const current = h('div', { class: 'current-quota', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Set quota');
  const problem = h('div', { class: 'form-problem', role: 'alert' });
  amount.id = nextId('amount');

  const scope = () => (scopeBucket.checked ? 'bucket' : 'user');
  const onScope = () => {
    name.setAttribute('list', scope() === 'user' ? userList.id : bucketList.id);
    nameLabel.textContent = scope() === 'user' ? 'User name' : 'Bucket name';
    current.replaceChildren();
  };
  const nameLabel = h('label', { for: (name.id = nextId('name')) }, 'User name');
  scopeUser.addEventListener('change', onScope);
  scopeBucket.addEventListener('change', onScope);

  const el = h('form', { class: 'form-card quota-form', 'aria-labelledby': 'quota-form-title', novalidate: true },
    h('h2', { id: 'quota-form-title', tabindex: '-1' }, 'Set a quota'),
    h('fieldset', { class: 'kind' },
      h('legend', {}, 'Applies to'),
      h('label', { class: 'radio' }, scopeUser, ' a user (all the buckets they own)'),
      h('label', { class: 'radio' }, scopeBucket, ' one bucket')),
    h('div', { class: 'form-row' },
      h('div', { class: 'field' }, nameLabel, name),
      h('div', { class: 'field' },
        h('label', { for: amount.id }, 'Size limit'),
        h('div', { class: 'with-unit' }, amount, unit)),
      field('Object limit', objects)),
    h('p', { class: 'help' }, 'Leave a limit empty for none; give at least one. Setting a quota replaces the one in force.'),
    current,
    h('div', { class: 'actions' }, submit),
    problem, userList, bucketList);

  /** Show the quota in force for what the form names. */
  async function showCurrent() {
    const n = name.value.trim();
    current.replaceChildren();
    if (!n) return null;
    const path = scope() === 'user' ? `/users/${encodeURIComponent(n)}/quota` : `/buckets/${encodeURIComponent(n)}/quota`;
    try {
      const q = await api('GET', path);
      current.replaceChildren(h('p', {}, q.max_bytes === null && q.max_objects === null
        ? `${scope() === 'user' ? 'User' : 'Bucket'} ${n} has no quota now; usage:`
        : `In force for ${scope()} ${n}:`), usageBlock(q));
      return q;
    } catch {
      return null;
    }
  }
  name.addEventListener('change', showCurrent);

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    problem.textContent = '';
    const n = name.value.trim();
    const kind = scope();
    if (!n) {
      problem.textContent = `Name the ${kind} the quota is for.`;
      name.focus();
      return;
    }
    const body = {};
    if (amount.value.trim() !== '') {
      const v = Number(amount.value);
      if (!Number.isFinite(v) || v < 0) {
        problem.textContent = 'The size limit must be a number, 0 or more.';
        amount.focus();
        return;
      }
      body.max_bytes = Math.round(v * Number(unit.value));
    }
    if (objects.value.trim() !== '') {
      const v = Number(objects.value);
      if (!Number.isInteger(v) || v < 0) {
        problem.textContent = 'The object limit must be a whole number, 0 or more.';
        objects.focus();
        return;
      }
      body.max_objects = v;
    }
    if (!('max_bytes' in body) && !('max_objects' in body)) {
      problem.textContent = 'Give a size limit, an object limit, or both. (To remove a quota, use Remove in the lists below.)';
      amount.focus();
      return;
    }
    if (kind === 'bucket' && state.buckets.length && !state.buckets.some((b) => b.name === n)) {
      problem.textContent = `There is no bucket named ${n}.`;
      name.focus();
      return;
    }
    const path = kind === 'user' ? `/users/${encodeURIComponent(n)}/quota` : `/buckets/${encodeURIComponent(n)}/quota`;
    submit.disabled = true;
    try {
      await attempt(`set the quota of ${kind} ${n}`, () => api('PUT', path, body));
      const parts = [];
      if ('max_bytes' in body) parts.push(formatBytes(body.max_bytes));
      if ('max_objects' in body) parts.push(plural(body.max_objects, 'object'));
      notify(`Quota of ${kind} ${n} set: ${parts.join(', ')}.`, 'success');
      await reload();
      await showCurrent();
    } catch (err) {
      problem.textContent = `The quota was not set: ${describeError(err)}`;
    } finally {
      submit.disabled = false;
    }
  });

  return {
    el,
    suggest(users, buckets) {
      userList.replaceChildren(...users.map((u) => h('option', { value: u })));
      bucketList.replaceChildren(...buckets.map((b) => h('option', { value: b })));
    },
    /** Fill the form for a scope (from ?user= or ?bucket=, or an Edit button) with its quota. */
    async prefill(query, { focus = false } = {}) {
      const user = query?.get?.('user');
      const bucket = query?.get?.('bucket');
      if (!user && !bucket) return;
      (bucket ? scopeBucket : scopeUser).checked = true;
      onScope();
      name.value = bucket || user;
      amount.value = '';
      objects.value = '';
      const q = await showCurrent();
      if (q?.max_bytes !== null && q?.max_bytes !== undefined) [amount.value, unit.value] = splitBytes(q.max_bytes);
      if (q?.max_objects !== null && q?.max_objects !== undefined) objects.value = String(q.max_objects);
      if (focus) {
        el.scrollIntoView({ block: 'start' });
        amount.focus();
      }
    },
  };
}

function removeButton(kind, name, reload) {
  const btn = h('button', { type: 'button', class: 'button danger small', 'aria-label': `Remove the quota of ${kind} ${name}` }, 'Remove');
  btn.addEventListener('click', async () => {
    const ok = await confirmDialog(`Remove the quota of ${kind} ${name}? Nothing will limit ${kind === 'user' ? 'their buckets' : 'the bucket'} any more.`,
      { confirmLabel: 'Remove quota', title: 'Remove a quota' });
    if (!ok) return;
    btn.disabled = true;
    const path = kind === 'user' ? `/users/${encodeURIComponent(name)}/quota` : `/buckets/${encodeURIComponent(name)}/quota`;
    try {
      await attempt(`remove the quota of ${kind} ${name}`, () => api('DELETE', path));
      notify(`Quota of ${kind} ${name} removed.`, 'success');
      await reload();
      document.getElementById(kind === 'user' ? 'user-quotas-title' : 'bucket-quotas-title')?.focus();
    } catch (err) {
      notify(`The quota was not removed: ${describeError(err)}`, 'error');
      btn.disabled = false;
    }
  });
  return btn;
}

function editButton(kind, name, form) {
  const btn = h('button', { type: 'button', class: 'button small', 'aria-label': `Change the quota of ${kind} ${name}` }, 'Change');
  btn.addEventListener('click', () => form.prefill(new URLSearchParams({ [kind]: name }), { focus: true }));
  return btn;
}

function quotaTable(kind, rows, form, reload) {
  const label = kind === 'user' ? 'User' : 'Bucket';
  return h('div', { class: 'table-wrap' },
    h('table', { class: `table quotas ${kind}-quotas` },
      h('caption', { class: 'visually-hidden' }, `${label} quotas with their usage`),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, label),
        h('th', { scope: 'col' }, 'Size'),
        h('th', { scope: 'col' }, 'Objects'),
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, ...rows.map(({ name, q }) => h('tr', { dataset: { [kind]: name } },
        h('th', { scope: 'row', 'data-label': label }, name),
        h('td', { 'data-label': 'Size' }, usageBar(q.bytes, q.max_bytes, formatBytes, `Storage used by ${name}`)),
        h('td', { 'data-label': 'Objects' }, usageBar(q.objects, q.max_objects, count, `Objects stored by ${name}`)),
        h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' }, editButton(kind, name, form), ' ', removeButton(kind, name, reload))))))));
}

function showUserQuotas(slot, users, form, reload) {
  const rows = users
    .filter((u) => u.max_bytes !== null || u.max_objects !== null)
    .map((u) => ({ name: u.name, q: u }));
  slot.replaceChildren(
    h('h2', { id: 'user-quotas-title', tabindex: '-1' }, `User quotas (${rows.length})`),
    rows.length ? quotaTable('user', rows, form, reload) : h('p', { class: 'empty-state' }, 'No user has a quota.'));
}

/** Bucket quotas: there is no list of them in the API, so each bucket's is asked for. */
function showBucketQuotas(slot, buckets, form, reload) {
  const title = h('h2', { id: 'bucket-quotas-title', tabindex: '-1' }, 'Bucket quotas');
  const body = h('div', {});
  slot.replaceChildren(title, body);
  const scan = async () => {
    body.replaceChildren(loading(`Checking ${plural(buckets.length, 'bucket')}…`));
    const rows = [];
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < buckets.length) {
        const b = buckets[next++];
        try {
          const q = await api('GET', `/buckets/${encodeURIComponent(b.name)}/quota`);
          if (q.max_bytes !== null || q.max_objects !== null) rows.push({ name: b.name, q });
        } catch {
          failed += 1;
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    rows.sort((a, b) => a.name.localeCompare(b.name));
    title.textContent = `Bucket quotas (${rows.length})`;
    body.replaceChildren(
      rows.length ? quotaTable('bucket', rows, form, reload) : h('p', { class: 'empty-state' }, 'No bucket has a quota.'),
      ...(failed ? [h('p', { class: 'help' }, `${plural(failed, 'bucket')} could not be checked.`)] : []));
  };
  if (buckets.length <= BUCKET_SCAN_LIMIT) {
    scan();
  } else {
    const btn = h('button', { type: 'button', class: 'button' }, `Check the quotas of ${plural(buckets.length, 'bucket')}`);
    btn.addEventListener('click', scan);
    body.append(h('p', {}, `There are ${plural(buckets.length, 'bucket')}; checking each one’s quota takes a while.`), btn);
  }
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

const pad = (x) => String(x).padStart(2, '0');
/** RFC 3339 → the value of a datetime-local input (local time). */
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** A datetime-local value (local time) → RFC 3339, or null. */
function fromLocalInput(v) {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** An RFC 3339 time with milliseconds → local date and time with seconds. */
function auditTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${formatTime(iso)}:${pad(d.getSeconds())}`;
}

const FILTERS = ['user', 'bucket', 'decision', 'since', 'until', 'limit'];

async function renderAudit(main, ctx) {
  const admin = !!ctx.me?.is_admin;
  const q = ctx.query ?? new URLSearchParams();
  const filters = Object.fromEntries(FILTERS.map((k) => [k, q.get(k) ?? '']));
  if (!admin) {
    main.append(h('div', { class: 'not-allowed', role: 'note' },
      h('p', {}, h('strong', {}, 'Only platform administrators can see the whole audit log.')),
      h('p', {}, 'As an admin of a bucket you can see the decisions on that bucket: name it below.')));
  } else {
    main.append(h('p', { class: 'lede' },
      'Every authorization decision — who did what to which bucket and object, allowed or denied, and the rule that decided — newest first. Decisions reach the log within a few seconds.'));
  }
  main.append(auditFilters(ctx, filters, admin));
  const results = h('section', { class: 'audit-results', 'aria-labelledby': 'audit-results-title' });
  main.append(results);
  if (!admin && !filters.bucket) return;

  const query = {};
  for (const k of FILTERS) if (filters[k]) query[k] = filters[k];
  query.limit = filters.limit || '100';
  results.replaceChildren(loading('Loading the audit log…'));
  let page;
  try {
    page = await api('GET', '/audit', null, { query });
  } catch (err) {
    results.replaceChildren();
    if (refused(err) && admin) return notAllowed(main, ctx, 'audit', err.problem?.detail);
    if (refused(err)) {
      results.append(errorBox(`You are not an admin of the bucket ${filters.bucket}, so you cannot see its audit log.`));
      return;
    }
    if (err instanceof ApiError && err.status === 400) {
      results.append(errorBox(`Those filters do not work: ${err.problem?.detail ?? describeError(err)}.`));
      return;
    }
    results.append(errorBox(`The audit log could not be loaded: ${describeError(err)}`));
    return;
  }
  const tbody = h('tbody', {});
  const summary = h('p', { class: 'count', role: 'status' });
  const more = h('div', { class: 'actions more' });
  let shown = 0;
  const add = (p) => {
    tbody.append(...p.events.map((e) => auditRow(e, filters)));
    shown += p.events.length;
    const described = describeFilters(filters);
    summary.textContent = shown
      ? `${plural(shown, 'decision')}${described}, newest first${p.next_until ? '; there are older ones' : ''}.`
      : `No decisions${described}.`;
    more.replaceChildren();
    if (p.next_until) {
      const btn = h('button', { type: 'button', class: 'button' }, 'Show older decisions');
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        const first = tbody.children.length;
        try {
          add(await api('GET', '/audit', null, { query: { ...query, until: p.next_until } }));
          const row = tbody.children[first];
          if (row) {
            row.setAttribute('tabindex', '-1');
            row.focus();
          } else {
            more.querySelector('button')?.focus();
          }
        } catch (err) {
          btn.disabled = false;
          notify(`Older decisions could not be loaded: ${describeError(err)}`, 'error');
        }
      });
      more.append(btn);
    }
  };
  results.replaceChildren(
    h('h2', { id: 'audit-results-title', class: 'visually-hidden' }, 'Decisions'),
    summary,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'table audit' },
        h('caption', { class: 'visually-hidden' }, 'Authorization decisions, newest first'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Time'),
          h('th', { scope: 'col' }, 'Who'),
          h('th', { scope: 'col' }, 'Action'),
          h('th', { scope: 'col' }, 'Bucket and key'),
          h('th', { scope: 'col' }, 'Decision'),
          h('th', { scope: 'col' }, 'Rule'),
          h('th', { scope: 'col' }, 'Credential and source'))),
        tbody)),
    more);
  add(page);
}

function describeFilters(f) {
  const parts = [];
  if (f.user) parts.push(`by ${f.user}`);
  if (f.bucket) parts.push(`on ${f.bucket}`);
  if (f.decision) parts.push(f.decision === 'deny' ? 'denied' : 'allowed');
  if (f.since) parts.push(`since ${auditTime(f.since)}`);
  if (f.until) parts.push(`before ${auditTime(f.until)}`);
  return parts.length ? ` ${parts.join(', ')}` : '';
}

/** A link to the audit log with one more filter. */
function narrowed(filters, key, value, text) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (filters[k] && k !== 'until') q.set(k, filters[k]);
  q.set(key, value);
  return h('a', { href: `/console/admin/audit?${q}`, title: `Only ${key === 'user' ? 'decisions by' : 'decisions on'} ${value}` }, text ?? value);
}

function auditRow(e, filters) {
  return h('tr', { class: e.allowed ? 'allowed' : 'denied', dataset: { requestId: e.request_id } },
    h('td', { 'data-label': 'Time' }, h('time', { datetime: e.time, title: e.time }, auditTime(e.time))),
    h('td', { 'data-label': 'Who' }, e.principal ? narrowed(filters, 'user', e.principal) : '—'),
    h('td', { 'data-label': 'Action' }, e.action),
    h('td', { 'data-label': 'Bucket and key', class: 'object' },
      e.bucket ? narrowed(filters, 'bucket', e.bucket) : '—',
      e.key ? [' / ', h('span', { class: 'key' }, e.key)] : null),
    h('td', { 'data-label': 'Decision' }, badge(e.allowed ? 'allowed' : 'denied', e.allowed ? 'allow' : 'deny')),
    h('td', { 'data-label': 'Rule', class: 'rule' }, e.rule),
    h('td', { 'data-label': 'Credential and source', class: 'source' },
      e.access_key_id ? h('code', {}, e.access_key_id) : '—', h('br', {}),
      h('span', { class: 'muted' }, e.source || ''),
      e.request_id ? h('span', { class: 'muted request-id' }, ` · request ${e.request_id}`) : null));
}

function auditFilters(ctx, f, admin) {
  const user = h('input', { type: 'text', name: 'user', value: f.user, autocomplete: 'off', spellcheck: 'false' });
  const bucket = h('input', { type: 'text', name: 'bucket', value: f.bucket, autocomplete: 'off', spellcheck: 'false', 'aria-required': admin ? null : 'true' });
  const decision = h('select', { name: 'decision' },
    h('option', { value: '', selected: !f.decision }, 'Allowed and denied'),
    h('option', { value: 'allow', selected: f.decision === 'allow' }, 'Allowed only'),
    h('option', { value: 'deny', selected: f.decision === 'deny' }, 'Denied only'));
  const since = h('input', { type: 'datetime-local', name: 'since', value: f.since ? toLocalInput(f.since) : '' });
  const until = h('input', { type: 'datetime-local', name: 'until', value: f.until ? toLocalInput(f.until) : '' });
  const sizes = ['50', '100', '500', '1000'];
  if (f.limit && !sizes.includes(f.limit)) sizes.unshift(f.limit);
  const limit = h('select', { name: 'limit' },
    ...sizes.map((n) => h('option', { value: n, selected: (f.limit || '100') === n }, n)));
  const problem = h('div', { class: 'form-problem', role: 'alert' });
  const form = h('form', { class: 'form-card filters audit-filters', role: 'search', 'aria-labelledby': 'audit-filters-title', novalidate: true },
    h('h2', { id: 'audit-filters-title' }, 'Filters'),
    h('div', { class: 'form-row' },
      field('User', user),
      field(admin ? 'Bucket' : 'Bucket (required)', bucket),
      field('Decision', decision),
      field('From', since),
      field('Until', until),
      field('Rows per page', limit)),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button primary' }, 'Apply filters'),
      ' ',
      h('a', { class: 'button', href: '/console/admin/audit' }, 'Clear filters')),
    problem);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    problem.textContent = '';
    if (!admin && !bucket.value.trim()) {
      problem.textContent = 'Name a bucket you administer.';
      bucket.focus();
      return;
    }
    const q = new URLSearchParams();
    if (user.value.trim()) q.set('user', user.value.trim());
    if (bucket.value.trim()) q.set('bucket', bucket.value.trim());
    if (decision.value) q.set('decision', decision.value);
    const s = fromLocalInput(since.value);
    const u = fromLocalInput(until.value);
    if (since.value && !s) {
      problem.textContent = 'The “From” time is not a date and time.';
      since.focus();
      return;
    }
    if (until.value && !u) {
      problem.textContent = 'The “Until” time is not a date and time.';
      until.focus();
      return;
    }
    if (s && u && s >= u) {
      problem.textContent = '“From” must be before “Until”.';
      since.focus();
      return;
    }
    if (s) q.set('since', s);
    if (u) q.set('until', u);
    if (limit.value !== '100') q.set('limit', limit.value);
    const qs = q.toString();
    ctx.navigate(`/console/admin/audit${qs ? `?${qs}` : ''}`);
  });
  return form;
}
