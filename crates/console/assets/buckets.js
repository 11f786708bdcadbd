// coffer's web console — "My buckets": every bucket I may read, in three groups (mine,
// my projects', shared with me), each with my role and its classification said plainly;
// making a new bucket. REST: GET /buckets, POST /buckets.

import { api, attempt, describeError } from './api.js';
import { h, notify, table, badge, formatTime, errorBox } from './ui.js';

/** What a role lets you do, in words. */
export const ROLE_WORDS = {
  read: 'Read — view and download',
  write: 'Write — also upload and delete',
  admin: 'Admin — also share and manage',
};

/** The app path of a bucket's browser (the name is in the path; dots are fine there). */
export function browsePath(bucket, prefix = '') {
  const base = `/console/buckets/${encodeURIComponent(bucket)}/browse`;
  return prefix ? `${base}?prefix=${encodeURIComponent(prefix)}` : base;
}

/** The app path of a bucket's sharing page. */
export function sharingPath(bucket) {
  return `/console/buckets/${encodeURIComponent(bucket)}/sharing`;
}

export function roleBadge(role) {
  return badge(ROLE_WORDS[role] || role, `role-${role}`);
}

export function classificationBadge(c) {
  return badge(c, c === 'unclassified' ? 'unclassified' : 'classified');
}

function bucketTable(rows, caption, empty) {
  return table(
    [
      {
        label: 'Bucket',
        cell: (b) => h('a', { href: browsePath(b.name), class: 'bucket-link', dataset: { bucket: b.name } }, b.name),
      },
      { label: 'Your role', cell: (b) => roleBadge(b.role) },
      { label: 'Classification', cell: (b) => classificationBadge(b.classification) },
      {
        label: 'Owner',
        cell: (b) => (b.kind === 'personal' ? 'you (personal)' : b.owner === '' ? '—' : b.owner.replace(/^project:/, 'project ')),
      },
      { label: 'Created', cell: (b) => formatTime(b.created_at) },
      {
        label: 'Actions',
        class: 'actions',
        cell: (b) =>
          h(
            'span',
            { class: 'row-actions' },
            h('a', { href: browsePath(b.name), class: 'button small', 'aria-label': `Browse ${b.name}` }, 'Browse'),
            b.role === 'admin'
              ? h('a', { href: sharingPath(b.name), class: 'button small', 'aria-label': `Sharing of ${b.name}` }, 'Sharing')
              : null,
          ),
      },
    ],
    rows,
    { caption, empty, class: 'buckets' },
  );
}

function newBucketForm(ctx) {
  const input = h('input', {
    id: 'new-bucket-name',
    name: 'name',
    required: true,
    pattern: '[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]',
    placeholder: 'e.g. my-results',
    autocomplete: 'off',
    'aria-describedby': 'new-bucket-help',
  });
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': 'New bucket' },
    h('label', { for: 'new-bucket-name' }, 'New bucket'),
    input,
    h('button', { type: 'submit', class: 'button primary' }, 'Create bucket'),
    h('small', { id: 'new-bucket-help', class: 'help' }, '3–63 characters: lower-case letters, digits, dots and hyphens. New buckets are unclassified.'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    try {
      await attempt(`create the bucket “${name}”`, () => api('POST', '/buckets', { name }));
      notify(`Bucket “${name}” created.`, 'success');
      ctx.navigate(browsePath(name));
    } catch (err) {
      notify(describeError(err), 'error');
    }
  });
  return form;
}

export async function render(main, ctx) {
  main.append(h('h1', null, 'My buckets'));
  let buckets;
  try {
    buckets = await api('GET', '/buckets');
  } catch (e) {
    main.append(errorBox(describeError(e)));
    return;
  }
  buckets.sort((a, b) => a.name.localeCompare(b.name));
  const filter = h('input', { id: 'bucket-filter', type: 'search', placeholder: 'Filter by name', autocomplete: 'off' });
  const groups = [
    ['mine', 'Mine', 'Your personal bucket and the buckets you own.', (b) => b.kind === 'personal' || b.kind === 'owned', 'You have no bucket of your own yet.'],
    ['projects', 'Projects', 'Buckets of the projects you are a member of.', (b) => b.kind === 'project', 'You are not a member of a project.'],
    ['shared', 'Shared with me', 'Other people’s buckets you were given a role on (you, or a group you are in).', (b) => b.kind === 'shared', 'Nothing is shared with you yet.'],
  ];
  const sections = h('div', { class: 'bucket-groups' });
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    sections.replaceChildren(
      ...groups.map(([id, title, about, pick, empty]) => {
        const rows = buckets.filter(pick).filter((b) => !q || b.name.toLowerCase().includes(q));
        return h(
          'section',
          { class: 'bucket-group', 'aria-labelledby': `group-${id}`, dataset: { group: id } },
          h('h2', { id: `group-${id}` }, title, ' ', h('span', { class: 'count' }, `(${rows.length})`)),
          h('p', { class: 'muted' }, about),
          bucketTable(rows, null, q ? 'No bucket matches the filter.' : empty),
        );
      }),
    );
  };
  filter.addEventListener('input', draw);
  main.append(
    h(
      'p',
      { class: 'muted' },
      `You are ${ctx.me.name}`,
      ctx.me.groups.length ? `, in ${ctx.me.groups.join(', ')}` : '',
      `; cleared for ${ctx.me.clearance.join(', ')}. `,
      'Your role on a bucket says what you may do there; its classification, what data it may hold.',
    ),
    h('div', { class: 'toolbar' }, h('label', { for: 'bucket-filter' }, 'Filter'), filter),
    sections,
    newBucketForm(ctx),
  );
  draw();
}
