// The access keys, projects and admin pages in headless Chromium against a real coffer and the
// real OpenID provider (see harness.mjs; run by tests/python/test_console_e2e.py).
// kate makes an access key: its secret is shown once (a reload shows only the key id), the key
// signs S3 requests, and once revoked (after a confirmation) it no longer does. She creates a
// project, adds a user and a group with roles, changes a role and removes members (each removal
// confirmed; one by keyboard only). The admin pages tell her plainly that only platform
// administrators may use them. root, a platform admin, lists the users, sets a user's and a
// bucket's quota and sees their usage bars, and finds kate's actions in the audit log, whose
// filters narrow it. Screenshots of every page go to the artifacts directory.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { COFFER, launch, signIn, screenshot, unique, checkRequests } from './harness.mjs';
import { bytes } from './files.mjs';

const kate = unique('kate');
const root = unique('root');
const bob = unique('bob');
const group = unique('analysts');
const project = unique('atlas');
const vault = unique('vault'); // root's bucket, which kate may not touch
let browser;
let K; // kate's { context, page }
let R; // root's { context, page }
let key; // { id, secret }
const pageErrors = [];

before(async () => {
  browser = await launch();
  R = await signIn(browser, root, ['platform-admins']);
  K = await signIn(browser, kate, ['staff']);
  for (const { page } of [R, K]) {
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // The Content-Security-Policy (no inline script or style) refuses silently but for this.
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  }
  // A bucket of root's, which kate will try (and fail) to list.
  const status = await R.page.evaluate(async (name) => {
    const csrf = document.cookie.split('; ').find((c) => c.startsWith('coffer_csrf='))?.split('=')[1];
    const r = await fetch('/api/v1/buckets', {
      method: 'POST',
      headers: { 'X-CSRF-Token': decodeURIComponent(csrf), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    return r.status;
  }, vault);
  assert.equal(status, 201);
});

after(async () => {
  await browser?.close();
});

// ---- helpers --------------------------------------------------------------------------------

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (k, data) => crypto.createHmac('sha256', k).update(data).digest();
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** An S3 request signed with SigV4 (service s3, us-east-1), as any S3 client would send it. */
async function s3(method, path, query, { id, secret }) {
  const url = new URL(path, COFFER);
  for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, v);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payload = sha256('');
  const headers = { host: url.host, 'x-amz-content-sha256': payload, 'x-amz-date': amzDate };
  const names = Object.keys(headers).sort();
  const canonicalQuery = [...url.searchParams]
    .map(([k, v]) => [enc(k), enc(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonical = [
    method,
    url.pathname.split('/').map((s) => enc(decodeURIComponent(s))).join('/'),
    canonicalQuery,
    names.map((n) => `${n}:${headers[n]}\n`).join(''),
    names.join(';'),
    payload,
  ].join('\n');
  const scope = `${day}/us-east-1/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let k = hmac(`AWS4${secret}`, day);
  for (const part of ['us-east-1', 's3', 'aws4_request']) k = hmac(k, part);
  const signature = hmac(k, toSign).toString('hex');
  const { host: _host, ...sent } = headers;
  sent.authorization = `AWS4-HMAC-SHA256 Credential=${id}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  const r = await fetch(url, { method, headers: sent });
  return { status: r.status, body: await r.text() };
}

/** Poll `fn` until it returns something truthy (or throw after `ms`). */
async function eventually(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

async function open(page, path, heading) {
  await page.goto(`${COFFER}/console${path}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

/** The console's own text must never be a stack trace or a raw error object. */
async function noStackTrace(page) {
  const text = await page.locator('main').innerText();
  assert.doesNotMatch(text, /\bat \S+ \(|TypeError|ReferenceError|\[object Object\]|undefined|null\b/, text);
}

/** Upload `data` to `bucket`/`objectKey` through the REST API from the page (its session). */
async function putObject(page, bucket, objectKey, data) {
  const status = await page.evaluate(async ([b, k, body]) => {
    const csrf = document.cookie.split('; ').find((c) => c.startsWith('coffer_csrf='))?.split('=')[1];
    const r = await fetch(`/api/v1/buckets/${b}/objects/${k}`, {
      method: 'PUT',
      headers: { 'X-CSRF-Token': decodeURIComponent(csrf), 'Content-Type': 'application/octet-stream' },
      body: new Uint8Array(body),
    });
    return r.status;
  }, [bucket, objectKey, [...data]]);
  assert.equal(status, 201);
}

// ---- access keys ----------------------------------------------------------------------------

test('kate creates an access key: the secret is shown once, with copy buttons', async () => {
  const { page } = K;
  await open(page, '/keys', 'Access keys');
  await page.getByText('You have no access keys yet.').waitFor();
  await screenshot(page, 'keys-empty', { fullPage: true });
  await page.getByRole('button', { name: 'Create key' }).click();
  const panel = page.locator('.secret-panel');
  await panel.waitFor();
  // Focus moves to the new key, so a keyboard or screen-reader user lands on it.
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Your new key');
  key = { id: (await panel.locator('.key-id').innerText()).trim(), secret: (await panel.locator('.key-secret').innerText()).trim() };
  assert.match(key.id, /^[A-Z0-9]{16,32}$/);
  assert.equal(key.secret.length, 40);
  await panel.getByText('It is shown only this once').waitFor();
  await panel.getByRole('button', { name: 'Copy secret' }).waitFor();
  await panel.getByRole('button', { name: 'Copy key id' }).waitFor();
  await page.locator(`tr[data-key="${key.id}"][data-status="active"]`).waitFor();
  await screenshot(page, 'keys-created', { fullPage: true });
  // Dismissed: gone from the page.
  await panel.getByRole('button', { name: 'I have saved the secret' }).click();
  assert.equal(await page.locator('.secret-panel').count(), 0);
  assert.equal((await page.content()).includes(key.secret), false);
});

test('a reload shows only the key id; the key signs S3 requests', async () => {
  const { page } = K;
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Access keys' }).waitFor();
  const row = page.locator(`tr[data-key="${key.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /Active/);
  assert.equal((await page.content()).includes(key.secret), false, 'the secret must not come back');
  assert.equal(await page.locator('.secret-panel').count(), 0);
  await screenshot(page, 'keys-list', { fullPage: true });
  // The key works for S3: her own personal bucket lists, root's bucket is refused (and audited).
  const own = await s3('GET', `/home-${kate}`, { 'list-type': '2' }, key);
  assert.equal(own.status, 200, own.body);
  assert.match(own.body, /<ListBucketResult/);
  const all = await s3('GET', '/', {}, key);
  assert.equal(all.status, 200, all.body);
  assert.match(all.body, new RegExp(`<Name>home-${kate}</Name>`));
  const theirs = await s3('GET', `/${vault}`, { 'list-type': '2' }, key);
  assert.equal(theirs.status, 403, theirs.body);
});

test('revoking asks first; once revoked the key stops working', async () => {
  const { page } = K;
  const row = page.locator(`tr[data-key="${key.id}"]`);
  // Cancel: nothing happens.
  await row.getByRole('button', { name: `Revoke key ${key.id}` }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText(`Revoke the access key ${key.id}?`).waitFor();
  await screenshot(page, 'keys-revoke-confirm');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.getByRole('dialog').count(), 0);
  assert.equal(await row.getAttribute('data-status'), 'active');
  assert.equal((await s3('GET', `/home-${kate}`, { 'list-type': '2' }, key)).status, 200);
  // Confirm: revoked.
  await row.getByRole('button', { name: `Revoke key ${key.id}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke key' }).click();
  await page.locator(`tr[data-key="${key.id}"][data-status="revoked"]`).waitFor();
  await page.locator('.notice-success').getByText(`Key ${key.id} revoked.`).waitFor();
  assert.equal(await page.locator(`tr[data-key="${key.id}"]`).getByRole('button', { name: /Revoke/ }).count(), 0);
  await screenshot(page, 'keys-revoked', { fullPage: true });
  await eventually(async () => (await s3('GET', `/home-${kate}`, { 'list-type': '2' }, key)).status === 403, 'the revoked key to be refused');
});

// ---- projects -------------------------------------------------------------------------------

test('kate creates a project; a bad name is refused in words', async () => {
  const { page } = K;
  await open(page, '/projects', 'Projects');
  await page.getByText('You are not a member of any project yet.').waitFor();
  await page.getByLabel('Project name', { exact: true }).fill('Not A Name');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('alert').getByText('"Not A Name" cannot be a project name').waitFor();
  await screenshot(page, 'projects-bad-name', { fullPage: true });
  await page.getByLabel('Project name', { exact: true }).fill(project);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(`${COFFER}/console/projects/${project}`);
  await page.getByRole('heading', { level: 1, name: `Project ${project}` }).waitFor();
  const me = page.locator(`tr[data-member="user:${kate}"]`);
  await me.waitFor();
  assert.equal(await me.getByRole('combobox').inputValue(), 'admin');
  // The last admin can be neither demoted nor removed.
  assert.equal(await me.getByRole('combobox').isDisabled(), true);
  assert.equal(await me.getByRole('button', { name: /Remove/ }).isDisabled(), true);
  // Listed on the projects page.
  await open(page, '/projects', 'Projects');
  const listed = page.locator(`tr[data-project="${project}"]`);
  await listed.waitFor();
  assert.match(await listed.innerText(), /admin/);
  await screenshot(page, 'projects-list', { fullPage: true });
  await listed.getByRole('link', { name: project }).click();
  await page.getByRole('heading', { level: 1, name: `Project ${project}` }).waitFor();
});

test('she adds a user and a group with roles, changes a role, and removes them after confirming', async () => {
  const { page } = K;
  const form = page.locator('form.add-member');
  await form.getByLabel('Name', { exact: true }).fill(bob);
  await form.getByLabel('Role', { exact: true }).selectOption('write');
  await form.getByRole('button', { name: 'Add member' }).click();
  const bobRow = page.locator(`tr[data-member="user:${bob}"]`);
  await bobRow.waitFor();
  assert.equal(await bobRow.getByRole('combobox').inputValue(), 'write');
  await form.getByLabel('group').check();
  await form.getByLabel('Name', { exact: true }).fill(group);
  await form.getByLabel('Role', { exact: true }).selectOption('read');
  await form.getByRole('button', { name: 'Add member' }).click();
  const groupRow = page.locator(`tr[data-member="group:${group}"]`);
  await groupRow.waitFor();
  assert.equal(await groupRow.getByRole('combobox').inputValue(), 'read');
  await page.getByRole('heading', { name: 'Members (3)' }).waitFor();
  // A role changes in place.
  await bobRow.getByRole('combobox').selectOption('admin');
  await page.locator('.notice-success').getByText(`User ${bob} is now admin in ${project}.`).waitFor();
  await page.locator(`tr[data-member="user:${bob}"] select:not([disabled])`).waitFor();
  assert.equal(await page.locator(`tr[data-member="user:${bob}"]`).getByRole('combobox').inputValue(), 'admin');
  await screenshot(page, 'project-members', { fullPage: true });
  // The server agrees (bob's grant on the project's bucket).
  const members = await page.evaluate(async (p) => (await fetch(`/api/v1/projects/${p}/members`)).json(), project);
  assert.deepEqual(
    members.map((g) => `${g.grantee.kind}:${g.grantee.name}:${g.role}`).sort(),
    [`group:${group}:read`, `user:${bob}:admin`, `user:${kate}:admin`].sort(),
  );
  // Removing asks first; Cancel keeps him.
  await page.locator(`tr[data-member="user:${bob}"]`).getByRole('button', { name: `Remove user ${bob} from ${project}` }).click();
  await page.getByRole('dialog').getByText(`Remove user ${bob} from the project ${project}?`).waitFor();
  await screenshot(page, 'project-remove-confirm');
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.locator(`tr[data-member="user:${bob}"]`).count(), 1);
  await page.locator(`tr[data-member="user:${bob}"]`).getByRole('button', { name: /^Remove/ }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove member' }).click();
  await page.getByRole('heading', { name: 'Members (2)' }).waitFor();
  assert.equal(await page.locator(`tr[data-member="user:${bob}"]`).count(), 0);
  // Keyboard only: the group's Remove button, Enter, Tab to the confirmation, Enter.
  await page.locator(`tr[data-member="group:${group}"]`).getByRole('button', { name: /^Remove/ }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'focus starts on Cancel');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Remove member');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Members (1)' }).waitFor();
  await screenshot(page, 'project-members-removed', { fullPage: true });
  const left = await page.evaluate(async (p) => (await fetch(`/api/v1/projects/${p}/members`)).json(), project);
  assert.deepEqual(left.map((g) => `${g.grantee.kind}:${g.grantee.name}`), [`user:${kate}`]);
});

test('a project kate is not in says so in words', async () => {
  const { page } = K;
  await open(page, `/projects/${unique('nope')}`, /^Project /);
  await page.getByRole('alert').getByText(/There is no project named|You are not a member/).waitFor();
  await noStackTrace(page);
});

// ---- the admin pages, as someone else ---------------------------------------------------------

test('to kate, no platform admin, the admin pages say plainly that she may not', async () => {
  const { page } = K;
  for (const [path, heading, says] of [
    ['/admin/users', 'Users', 'Only platform administrators can see and manage the users of coffer.'],
    ['/admin/quotas', 'Quotas', 'Only platform administrators can set and remove quotas.'],
    ['/admin/audit', 'Audit log', 'Only platform administrators can see the whole audit log.'],
  ]) {
    await open(page, path, heading);
    await page.getByText(says).waitFor();
    await page.getByText(`You are signed in as ${kate}`).or(page.getByText('name it below')).first().waitFor();
    await noStackTrace(page);
    assert.equal(await page.locator('table.users, table.quotas').count(), 0);
    await screenshot(page, `admin-denied-${heading.split(' ')[0].toLowerCase()}`, { fullPage: true });
  }
  // Her own quota, at least, she may see.
  await open(page, '/admin/quotas', 'Quotas');
  await page.getByRole('heading', { name: 'Your own quota' }).waitFor();
  await page.getByText('No quota limits the buckets you own.').waitFor();
  // As her project's admin she may see its bucket's audit log.
  await page.goto(`${COFFER}/console/admin/audit?bucket=${project}`);
  const rows = page.locator('table.audit tbody tr');
  await eventually(async () => {
    await page.reload();
    await page.locator('.audit-results .count').waitFor();
    return (await rows.count()) > 0;
  }, 'her project bucket\'s events');
  for (const text of await page.locator('table.audit tbody td:nth-child(4)').allInnerTexts()) assert.match(text, new RegExp(`^${project}`));
  // Another bucket's: refused in words.
  await page.goto(`${COFFER}/console/admin/audit?bucket=${vault}`);
  await page.getByRole('alert').getByText(`You are not an admin of the bucket ${vault}`).waitFor();
});

// ---- the platform admin -----------------------------------------------------------------------

test('root, a platform admin, lists the users and filters them', async () => {
  const { page } = R;
  await page.getByRole('group', { name: 'Administration' }).getByRole('link', { name: 'Users' }).click();
  await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
  const row = page.locator(`tr[data-user="${kate}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /staff/);
  await page.locator('tr[data-user="admin"]').getByText('platform admin').waitFor();
  await screenshot(page, 'admin-users', { fullPage: true });
  await page.getByLabel('Filter', { exact: true }).fill(kate);
  await page.getByText(`1 user of`).waitFor();
  assert.equal(await page.locator('table.users tbody tr').count(), 1);
  await page.getByLabel('Filter', { exact: true }).fill('');
  assert.ok((await page.locator('table.users tbody tr').count()) >= 2);
});

test('he sets a user quota and a bucket quota, and sees their usage bars', async () => {
  const { page } = R;
  // Something to measure: 300 KiB in kate's personal bucket, 2 objects in her project's.
  await putObject(page, `home-${kate}`, 'data/readings.bin', bytes(300 * 1024));
  await putObject(page, project, 'a.txt', Buffer.from('a'));
  await putObject(page, project, 'b.txt', Buffer.from('bb'));
  // From kate's row on the users page to the quota form, filled in for her.
  await page.locator(`tr[data-user="${kate}"]`).getByRole('link', { name: `Set the quota of ${kate}` }).click();
  await page.waitForURL(`${COFFER}/console/admin/quotas?user=${kate}`);
  await page.getByRole('heading', { level: 1, name: 'Quotas' }).waitFor();
  // The form is filled in once her quota has been read: wait for that, then check it.
  await page.getByText(`User ${kate} has no quota now`).waitFor();
  assert.equal(await page.getByLabel('User name', { exact: true }).inputValue(), kate);
  // Neither limit: refused in words, before asking the server.
  await page.getByRole('button', { name: 'Set quota' }).click();
  await page.getByRole('alert').getByText('Give a size limit, an object limit, or both.').waitFor();
  await page.getByLabel('Size limit', { exact: true }).fill('1');
  await page.getByLabel('Unit of the size limit').selectOption({ label: 'MB' });
  await page.getByLabel('Object limit', { exact: true }).fill('10');
  await page.getByRole('button', { name: 'Set quota' }).click();
  await page.locator('.notice-success').getByText(`Quota of user ${kate} set: 1.0 MB, 10 objects.`).waitFor();
  const userRow = page.locator(`table.user-quotas tr[data-user="${kate}"]`);
  await userRow.waitFor();
  const sizeBar = userRow.getByRole('meter', { name: `Storage used by ${kate}` });
  assert.equal(await sizeBar.getAttribute('aria-valuenow'), String(300 * 1024));
  assert.equal(await sizeBar.getAttribute('aria-valuemax'), String(1024 * 1024));
  assert.match(await userRow.innerText(), /300 KB of 1\.0 MB \(29%\)/);
  const width = await sizeBar.locator('.usage-fill').evaluate((el) => el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width);
  assert.ok(width > 0.25 && width < 0.33, `the bar is ${width} full`);
  assert.match(await userRow.innerText(), /1 of 10 \(10%\)/);
  // A bucket's quota: over its object limit already, so the bar is full and says so.
  await page.getByLabel('one bucket').check();
  await page.getByLabel('Bucket name', { exact: true }).fill(project);
  await page.getByLabel('Size limit', { exact: true }).fill('');
  await page.getByLabel('Object limit', { exact: true }).fill('2');
  await page.getByRole('button', { name: 'Set quota' }).click();
  const bucketRow = page.locator(`table.bucket-quotas tr[data-bucket="${project}"]`);
  await bucketRow.waitFor();
  const objectsBar = bucketRow.getByRole('meter', { name: `Objects stored by ${project}` });
  assert.equal(await objectsBar.getAttribute('aria-valuenow'), '2');
  assert.match(await bucketRow.innerText(), /2 of 2 \(100%\)/);
  assert.match(await bucketRow.innerText(), /3 B \(no limit\)/);
  assert.equal(await bucketRow.locator('.usage-full').count(), 1);
  await screenshot(page, 'admin-quotas', { fullPage: true });
  // The users page shows kate's usage against her quota too.
  await open(page, '/admin/users', 'Users');
  const onUsers = page.locator(`tr[data-user="${kate}"]`);
  assert.equal(await onUsers.getByRole('meter', { name: 'Storage used' }).getAttribute('aria-valuemax'), String(1024 * 1024));
  await onUsers.getByRole('link', { name: `Set the quota of ${kate}` }).getByText('Change quota').waitFor();
  await screenshot(page, 'admin-users-with-quota', { fullPage: true });
  // Removing a quota asks first.
  await open(page, '/admin/quotas', 'Quotas');
  await page.locator(`table.bucket-quotas tr[data-bucket="${project}"]`).getByRole('button', { name: `Remove the quota of bucket ${project}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove quota' }).click();
  await page.getByRole('heading', { name: 'Bucket quotas (0)' }).waitFor();
  await page.locator(`table.user-quotas tr[data-user="${kate}"]`).waitFor();
});

test('the audit log shows what kate just did, and its filters narrow it', async () => {
  const { page } = R;
  await open(page, '/admin/audit', 'Audit log');
  const filters = page.locator('form.audit-filters');
  await filters.getByLabel('User', { exact: true }).fill(kate);
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(`${COFFER}/console/admin/audit?user=${kate}`);
  const rows = page.locator('table.audit tbody tr');
  // Decisions reach the log within a few seconds.
  await eventually(async () => {
    await page.reload();
    await page.locator('.audit-results .count').waitFor();
    const text = await page.locator('table.audit').innerText().catch(() => '');
    return text.includes('create-bucket') && text.includes(key.id) && text.includes(vault);
  }, 'kate\'s decisions in the audit log');
  await page.getByText(new RegExp(`decisions? by ${kate}, newest first`)).waitFor();
  for (const who of await page.locator('table.audit tbody td:nth-child(2)').allInnerTexts()) assert.equal(who, kate);
  const all = await rows.count();
  // Her project: create-bucket when she made it, admin when she managed its members.
  const created = rows.filter({ hasText: 'create-bucket' }).filter({ hasText: project });
  assert.ok((await created.count()) >= 1);
  assert.ok((await rows.filter({ hasText: project }).filter({ has: page.locator('td:nth-child(3)', { hasText: /^admin$/ }) }).count()) >= 3);
  // Her key's S3 calls, with the key id as the credential.
  assert.ok((await rows.filter({ hasText: key.id }).count()) >= 2);
  await screenshot(page, 'admin-audit', { fullPage: true });

  // Denied only: the one refusal (listing root's bucket with her key).
  await filters.getByLabel('Decision', { exact: true }).selectOption('deny');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(`${COFFER}/console/admin/audit?user=${kate}&decision=deny`);
  await page.getByText(`by ${kate}, denied, newest first`).waitFor();
  const denied = await rows.count();
  assert.ok(denied >= 1 && denied < all, `${denied} denied of ${all}`);
  assert.equal(await page.locator('table.audit tbody tr.allowed').count(), 0);
  assert.match(await rows.first().innerText(), new RegExp(vault));
  assert.match(await rows.first().innerText(), /denied/);
  await screenshot(page, 'admin-audit-denied', { fullPage: true });

  // One bucket (by clicking it in a row): only its decisions.
  await filters.getByLabel('Decision', { exact: true }).selectOption('');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(`${COFFER}/console/admin/audit?user=${kate}`);
  await rows.first().waitFor();
  await page.locator('table.audit tbody td:nth-child(4)').getByRole('link', { name: project, exact: true }).first().click();
  await page.waitForURL(`${COFFER}/console/admin/audit?user=${kate}&bucket=${project}`);
  await page.getByText(`by ${kate}, on ${project}`).waitFor();
  for (const text of await page.locator('table.audit tbody td:nth-child(4)').allInnerTexts()) assert.match(text, new RegExp(`^${project}`));
  assert.ok((await rows.count()) < all);
  assert.equal(await filters.getByLabel('Bucket', { exact: true }).inputValue(), project);

  // A time window after everything: nothing.
  await filters.getByLabel('From', { exact: true }).fill('2099-01-01T00:00');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByText(/^No decisions by /).waitFor();
  assert.equal(await rows.count(), 0);
  // "From" after "Until" is refused in words.
  await filters.getByLabel('Until', { exact: true }).fill('2098-01-01T00:00');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await page.getByRole('alert').getByText('“From” must be before “Until”.').waitFor();
  // Page after page: 5 at a time, then the older ones below them.
  await page.goto(`${COFFER}/console/admin/audit?user=${kate}&limit=5`);
  await page.getByText(`5 decisions by ${kate}, newest first; there are older ones.`).waitFor();
  assert.equal(await rows.count(), 5);
  await page.getByRole('button', { name: 'Show older decisions' }).click();
  await eventually(async () => (await rows.count()) > 5, 'the older decisions');
  assert.equal(await page.evaluate(() => document.activeElement?.rowIndex), 6, 'focus moves to the first older row');
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.requestId));
  assert.equal(new Set(ids).size, ids.length, 'no decision twice');
  const times = await page.locator('table.audit tbody time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')));
  assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
  // Clearing the filters shows everyone's decisions again.
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await page.waitForURL(`${COFFER}/console/admin/audit`);
  await rows.first().waitFor();
  const principals = new Set(await page.locator('table.audit tbody td:nth-child(2)').allInnerTexts());
  assert.ok(principals.size >= 2, [...principals].join(', '));
});

test('a narrow window: the pages fit, tables become cards', async () => {
  for (const [who, path, heading] of [
    [K, '/keys', 'Access keys'],
    [K, `/projects/${project}`, `Project ${project}`],
    [R, '/admin/users', 'Users'],
    [R, '/admin/quotas', 'Quotas'],
    [R, '/admin/audit', 'Audit log'],
  ]) {
    const { page } = who;
    await page.setViewportSize({ width: 380, height: 800 });
    await open(page, path, heading);
    await page.locator('main table, main .empty-state').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${path} runs ${overflow}px off the side`);
    await screenshot(page, `narrow-${path.split('/').filter(Boolean).join('-').replace(project, 'project')}`, { fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  }
});

test('no page threw, and every request went to the documented REST API', async () => {
  assert.deepEqual(pageErrors, []);
  await checkRequests();
});
