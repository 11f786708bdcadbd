// coffer's web console — sharing: who has which role on a bucket (users and groups, added,
// changed and removed by the bucket's admins), and share links (an expiring, revocable,
// read-only URL for a file or a folder, for people without an account): made, copied, revoked.
// REST: GET|PUT /buckets/{name}/grants, DELETE /buckets/{name}/grants/{kind}/{grantee},
// POST|GET /buckets/{name}/links, GET /links, DELETE /links/{id}, GET /buckets/{name}.

import { api, attempt, describeError, ApiError } from './api.js';
import { h, notify, confirmDialog, formDialog, copyButton, formatTime, table, errorBox, replace, badge } from './ui.js';
import { browsePath, roleBadge, classificationBadge, ROLE_WORDS } from './buckets.js';

/** Share-link lifetimes offered, in seconds. */
export const EXPIRIES = [
  [3600, '1 hour'],
  [86400, '1 day'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
  [90 * 86400, '90 days'],
];

const NAME_PATTERN = '[A-Za-z0-9._@:\\-]{1,128}';

/** What a link opens, in words. */
function targetWords(link) {
  if (link.target.kind === 'object') return `the file ${link.target.path}`;
  return link.target.path ? `the folder ${link.target.path}` : 'the whole bucket';
}

/** A link's state, in words: active, expired or revoked. */
function linkState(link) {
  if (link.revoked_at) return ['revoked', `Revoked ${formatTime(link.revoked_at)}`];
  if (link.expires_at * 1000 <= Date.now()) return ['expired', `Expired ${formatTime(link.expires_at)}`];
  return ['active', `Active until ${formatTime(link.expires_at)}`];
}

/** A dialog showing a new share link, its URL ready to copy. */
export function showLinkDialog(link) {
  const titleId = `link-${Math.random().toString(36).slice(2)}`;
  const url = h('input', { id: 'share-url', class: 'share-url', readonly: true, value: link.url, 'aria-label': 'Share link URL' });
  url.addEventListener('focus', () => url.select());
  const close = h('button', { type: 'button', class: 'button' }, 'Close');
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-labelledby': titleId },
    h('h2', { id: titleId, class: 'dialog-title' }, 'Share link made'),
    h('p', null, `Anyone with this link can read ${targetWords(link)} of ${link.bucket}, without signing in, until ${formatTime(link.expires_at)} — or until it is revoked.`),
    h('div', { class: 'copy-row' }, url, copyButton(link.url, 'Copy link')),
    h('p', { class: 'muted' }, 'You can revoke it at any time under ', h('a', { href: '/console/links' }, 'Share links'), '.'),
    h('div', { class: 'dialog-actions' }, close),
  );
  const opener = document.activeElement;
  const finish = () => {
    dialog.close();
    dialog.remove();
    if (opener?.isConnected) opener.focus();
  };
  close.addEventListener('click', finish);
  dialog.addEventListener('cancel', (e) => {
    e.preventDefault();
    finish();
  });
  // A click on the "Share links" page link closes the dialog as the router takes it.
  dialog.addEventListener('click', (e) => {
    if (e.target.closest('a[href]')) finish();
  });
  document.body.append(dialog);
  dialog.showModal();
  url.focus();
  return dialog;
}

/** Ask for an expiry, make a link to `target` ({key} or {prefix}) of `bucket`, show it. */
export async function createLinkFlow(bucket, target) {
  const what = target.key !== undefined ? `the file ${target.key}` : target.prefix ? `the folder ${target.prefix}` : `the whole bucket ${bucket}`;
  const got = await formDialog(
    'New share link',
    [
      {
        name: 'expiry',
        label: 'The link works for',
        options: EXPIRIES.map(([s, l]) => [String(s), l]),
        value: String(7 * 86400),
        help: `Anyone holding the link can read ${what} without signing in.`,
      },
    ],
    { submitLabel: 'Make link' },
  );
  if (!got) return null;
  try {
    const link = await attempt(`make a share link to ${what}`, () =>
      api('POST', `/buckets/${encodeURIComponent(bucket)}/links`, { ...target, expires_in_seconds: Number(got.expiry) }),
    );
    showLinkDialog(link);
    return link;
  } catch (e) {
    notify(describeError(e), 'error');
    return null;
  }
}

async function revoke(link, after) {
  const yes = await confirmDialog(`Revoke the share link to ${targetWords(link)} of ${link.bucket}? Whoever holds it will no longer be able to open it.`, {
    confirmLabel: 'Revoke',
    title: 'Revoke this link?',
  });
  if (!yes) return;
  try {
    await attempt('revoke this share link', () => api('DELETE', `/links/${encodeURIComponent(link.id)}`));
    notify('The share link was revoked; it no longer opens.', 'success');
    await after();
  } catch (e) {
    notify(describeError(e), 'error');
  }
}

function linksTable(links, after, { showBucket }) {
  return table(
    [
      ...(showBucket ? [{ label: 'Bucket', cell: (l) => h('a', { href: browsePath(l.bucket) }, l.bucket) }] : []),
      { label: 'Shares', cell: (l) => targetWords(l) },
      { label: 'Made by', cell: (l) => l.creator },
      { label: 'Made', cell: (l) => formatTime(l.created_at) },
      {
        label: 'State',
        cell: (l) => {
          const [state, words] = linkState(l);
          return badge(words, `link-${state}`);
        },
      },
      {
        label: 'Link',
        class: 'actions',
        cell: (l) => {
          const [state] = linkState(l);
          return h(
            'span',
            { class: 'row-actions', dataset: { linkId: l.id } },
            state === 'active' ? copyButton(l.url, 'Copy link') : null,
            state === 'active'
              ? h('button', { type: 'button', class: 'button small danger', 'aria-label': `Revoke the link to ${targetWords(l)}`, onClick: () => revoke(l, after) }, 'Revoke')
              : null,
          );
        },
      },
    ],
    links,
    { empty: 'No share links.', class: 'links' },
  );
}

/** `/console/links`: the share links I made. */
export async function renderMyLinks(main) {
  main.append(
    h('h1', null, 'Share links'),
    h('p', { class: 'muted' }, 'The links you made, newest first. A link lets anyone holding it read a file or a folder without signing in, until it expires or you revoke it. Make new ones from a bucket’s files.'),
  );
  const box = h('div', { class: 'links-box' });
  main.append(box);
  const load = async () => {
    try {
      replace(box, linksTable(await api('GET', '/links'), load, { showBucket: true }));
    } catch (e) {
      replace(box, errorBox(describeError(e)));
    }
  };
  await load();
}

function grantsSection(bucket) {
  const section = h('section', { class: 'grants', 'aria-labelledby': 'grants-title' }, h('h2', { id: 'grants-title' }, 'People and groups'));
  const box = h('div');
  const b = encodeURIComponent(bucket.name);
  const load = async () => {
    let grants;
    try {
      grants = await api('GET', `/buckets/${b}/grants`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        replace(box, h('p', { class: 'hint' }, `Only the admins of ${bucket.name} can see and change who has access to it. Your role is ${bucket.role}.`));
      } else {
        replace(box, errorBox(describeError(e)));
      }
      return;
    }
    grants.sort((x, y) => x.grantee.kind.localeCompare(y.grantee.kind) || x.grantee.name.localeCompare(y.grantee.name));
    replace(
      box,
      table(
        [
          { label: 'Who', cell: (g) => h('span', null, h('span', { class: 'muted' }, g.grantee.kind === 'group' ? 'group ' : 'user '), h('strong', null, g.grantee.name)) },
          {
            label: 'Role',
            cell: (g) => {
              const id = `role-${g.grantee.kind}-${g.grantee.name}`;
              const select = h(
                'select',
                { id, 'aria-label': `Role of ${g.grantee.kind} ${g.grantee.name}` },
                Object.entries(ROLE_WORDS).map(([r, words]) => h('option', { value: r, selected: r === g.role }, words)),
              );
              select.addEventListener('change', async () => {
                try {
                  await attempt(`change the role of ${g.grantee.name}`, () => api('PUT', `/buckets/${b}/grants`, { [g.grantee.kind]: g.grantee.name, role: select.value }));
                  notify(`${g.grantee.name} now has the role ${select.value} on ${bucket.name}.`, 'success');
                } catch (e) {
                  notify(describeError(e), 'error');
                }
                await load();
              });
              return select;
            },
          },
          { label: 'Since', cell: (g) => formatTime(g.created_at) },
          {
            label: 'Actions',
            class: 'actions',
            cell: (g) =>
              h('button', {
                type: 'button',
                class: 'button small danger',
                'aria-label': `Remove the access of ${g.grantee.kind} ${g.grantee.name}`,
                onClick: async () => {
                  const yes = await confirmDialog(`Remove the access of ${g.grantee.kind} ${g.grantee.name} to ${bucket.name}?`, { confirmLabel: 'Remove', title: 'Remove access?' });
                  if (!yes) return;
                  try {
                    await attempt(`remove the access of ${g.grantee.name}`, () =>
                      api('DELETE', `/buckets/${b}/grants/${g.grantee.kind}/${encodeURIComponent(g.grantee.name)}`),
                    );
                    notify(`${g.grantee.name} no longer has access to ${bucket.name}.`, 'success');
                  } catch (e) {
                    notify(describeError(e), 'error');
                  }
                  await load();
                },
              }, 'Remove'),
          },
        ],
        grants,
        { empty: 'Nobody else has a role on this bucket yet.', class: 'grants-table' },
      ),
    );
  };

  const kind = h('select', { id: 'grant-kind', name: 'kind' }, h('option', { value: 'user' }, 'User'), h('option', { value: 'group' }, 'Group'));
  const name = h('input', { id: 'grant-name', name: 'name', required: true, pattern: NAME_PATTERN, autocomplete: 'off', placeholder: 'user or group name' });
  const role = h('select', { id: 'grant-role', name: 'role' }, Object.entries(ROLE_WORDS).map(([r, words]) => h('option', { value: r }, words)));
  const form = h(
    'form',
    { class: 'grant-form', 'aria-label': 'Share with a user or group' },
    h('div', { class: 'field' }, h('label', { for: 'grant-kind' }, 'Share with a'), kind),
    h('div', { class: 'field' }, h('label', { for: 'grant-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 'grant-role' }, 'Role'), role),
    h('button', { type: 'submit', class: 'button primary' }, 'Share'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const who = name.value.trim();
    try {
      await attempt(`share ${bucket.name}`, () => api('PUT', `/buckets/${b}/grants`, { [kind.value]: who, role: role.value }));
      notify(`Shared ${bucket.name} with ${kind.value} ${who} (${role.value}).`, 'success');
      name.value = '';
    } catch (err) {
      notify(describeError(err), 'error');
    }
    await load();
  });
  section.append(
    h('p', { class: 'muted' }, bucket.classification === 'unclassified'
      ? 'A role applies at once, to everything in the bucket.'
      : `A role applies at once, to everything in the bucket — but this bucket is ${bucket.classification}: only people cleared for ${bucket.classification} can use it, whatever their role.`),
    box,
    form,
  );
  return { section, load };
}

function linksSection(bucket) {
  const section = h('section', { class: 'bucket-links', 'aria-labelledby': 'links-title' }, h('h2', { id: 'links-title' }, 'Share links'));
  const box = h('div');
  const load = async () => {
    try {
      replace(box, linksTable(await api('GET', `/buckets/${encodeURIComponent(bucket.name)}/links`), load, { showBucket: false }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        replace(box, h('p', { class: 'hint' }, 'Only the bucket’s admins see all its links; yours are under ', h('a', { href: '/console/links' }, 'Share links'), '.'));
      } else {
        replace(box, errorBox(describeError(e)));
      }
    }
  };
  const make = h('button', { type: 'button', class: 'button' }, 'New link to the whole bucket');
  make.addEventListener('click', async () => {
    if (await createLinkFlow(bucket.name, { prefix: '' })) await load();
  });
  section.append(h('p', { class: 'muted' }, 'Links to single files and folders are made from the bucket’s browser.'), box, make);
  return { section, load };
}

/** `/console/buckets/<name>/sharing`. */
export async function render(main, ctx) {
  const name = ctx.params.name;
  main.append(
    h('nav', { 'aria-label': 'Breadcrumb', class: 'breadcrumbs' }, h('ol', null,
      h('li', null, h('a', { href: '/console/buckets' }, 'Buckets')),
      h('li', null, h('a', { href: browsePath(name) }, name)),
      h('li', null, h('span', { 'aria-current': 'page' }, 'Sharing')))),
    h('h1', null, `Sharing ${name}`),
  );
  let bucket;
  try {
    bucket = await api('GET', `/buckets/${encodeURIComponent(name)}`);
  } catch (e) {
    main.append(errorBox(e instanceof ApiError && (e.status === 404 || e.status === 403) ? `There is no bucket “${name}” that you have access to.` : describeError(e)));
    return;
  }
  main.append(h('p', { class: 'bucket-facts' }, h('span', null, 'Your role: ', roleBadge(bucket.role)), ' ', h('span', null, 'Classification: ', classificationBadge(bucket.classification))));
  const grants = grantsSection(bucket);
  const links = linksSection(bucket);
  main.append(grants.section, links.section);
  await Promise.all([grants.load(), links.load()]);
}
