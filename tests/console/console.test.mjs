// The web console's acceptance test, in headless Chromium against a real coffer and the real
// OpenID provider (see harness.mjs; run by tests/python/test_console_e2e.py). alice signs in,
// makes a bucket and a folder, uploads several files (an image, a CSV, JSON) and watches their
// progress, previews them, sends a large file in parts, cancels another, drops files, pages,
// sorts and filters the listing; shares the bucket read-only with bob and makes a share link.
// bob sees the bucket under "Shared with me", downloads the image and is told in words that
// he may not delete it; carol, no member, does not see it; the link opens in a fresh browser
// context until alice revokes it. Screenshots go to the artifacts directory.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { COFFER, launch, signIn, signOut, newContext, screenshot, unique, checkRequests, recorder } from './harness.mjs';
import { png, csv, json, bytes } from './files.mjs';

const MiB = 1024 * 1024;
const alice = unique('alice');
const bob = unique('bob');
const carol = unique('carol');
const bucket = unique('results');
const image = png();
let browser;
let A; // alice's { context, page }
let linkUrl;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

// The steps build on one another: after a failure the rest are skipped, not timed out.
let failed = false;
function step(name, fn) {
  test(name, async (t) => {
    if (failed) {
      t.skip('an earlier step failed');
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

const row = (page, key) => page.locator(`tr[data-key="${key}"]`);
const upload = (page, key) => page.locator(`li.upload[data-key="${key}"]`);
const noticeError = (page) => page.locator('.notice-error .notice-text');

/** Open the browser of `bucket` at `prefix` by its URL (a deep link). */
async function browse(page, prefix = '') {
  const q = prefix ? `?prefix=${encodeURIComponent(prefix)}` : '';
  await page.goto(`${COFFER}/console/buckets/${bucket}/browse${q}`);
  await page.locator('table.objects').waitFor();
}

/** Throttle the page's uploads (bytes per second), or lift it (null). */
async function throttleUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: bytesPerSecond ?? -1,
  });
  return cdp;
}

step('alice signs in and sees her buckets; she makes one', async () => {
  A = await signIn(browser, alice, ['analysts']);
  const { page } = A;
  await page.getByRole('heading', { name: 'My buckets' }).waitFor();
  // Her personal bucket ([personal_buckets]), in "Mine", with her role and classification.
  const personal = page.locator('section[data-group="mine"] tr', { has: page.getByRole('link', { name: `home-${alice}` }) });
  await personal.first().waitFor();
  assert.match(await personal.first().innerText(), /Admin — also share and manage/);
  assert.match(await personal.first().innerText(), /unclassified/);
  await page.locator('section[data-group="shared"]').getByText('Nothing is shared with you yet.').waitFor();
  // The nav: no Admin for her.
  for (const name of ['Buckets', 'Share links', 'Access keys', 'Projects']) {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).waitFor();
  }
  assert.equal(await page.getByRole('group', { name: 'Administration' }).count(), 0);
  // A bad name is refused in words; a good one makes the bucket and opens it.
  await page.getByRole('textbox', { name: 'New bucket' }).fill('Bad_Name');
  await page.getByRole('button', { name: 'Create bucket' }).click();
  assert.equal(await page.locator('#new-bucket-name').evaluate((i) => i.validity.valid), false);
  await page.getByRole('textbox', { name: 'New bucket' }).fill(bucket);
  await page.getByRole('button', { name: 'Create bucket' }).click();
  await page.waitForURL(`${COFFER}/console/buckets/${bucket}/browse`);
  await page.getByRole('heading', { level: 1, name: bucket }).waitFor();
  await page.getByText('This bucket is empty.').waitFor();
  await page.getByRole('link', { name: 'Buckets', exact: true }).first().click();
  await page.locator('section[data-group="mine"]').getByRole('link', { name: bucket, exact: true }).waitFor();
  await screenshot(page, 'buckets');
});

step('a folder, several files with a progress bar each, and their previews', async () => {
  const { page } = A;
  await browse(page);
  await page.getByRole('button', { name: 'New folder' }).click();
  await page.getByLabel('Folder name').fill('figures');
  await page.getByRole('button', { name: 'Create folder' }).click();
  await page.waitForURL(/prefix=figures%2F/);
  await page.getByRole('heading', { level: 1, name: 'figures/' }).waitFor();
  const crumbs = page.getByRole('navigation', { name: 'Breadcrumb' });
  assert.deepEqual(await crumbs.locator('li').allInnerTexts(), ['Buckets', bucket, 'figures']);

  await page.locator('#file-input').setInputFiles([
    { name: 'chart.png', mimeType: 'image/png', buffer: image },
    { name: 'stations.csv', mimeType: 'text/csv', buffer: csv() },
    { name: 'metrics.json', mimeType: 'application/json', buffer: json() },
  ]);
  for (const name of ['chart.png', 'stations.csv', 'metrics.json']) {
    const u = upload(page, `figures/${name}`);
    await u.locator('progress').waitFor();
    await page.locator(`li.upload[data-key="figures/${name}"][data-state="done"]`).waitFor();
    const [value, max] = await u.locator('progress').evaluate((p) => [p.value, p.max]);
    assert.equal(value, max, `${name}: the bar is full`);
    assert.match(await u.innerText(), /Uploaded/);
    await row(page, `figures/${name}`).waitFor();
  }
  assert.match(await row(page, 'figures/chart.png').innerText(), /\d+(\.\d)? KB/);

  // The image.
  await page.getByRole('button', { name: 'Preview chart.png' }).click();
  const dialog = page.locator('dialog.preview');
  const img = dialog.locator('img.preview-image');
  await img.waitFor();
  await page.waitForFunction(() => document.querySelector('dialog.preview img')?.naturalWidth > 0);
  assert.equal(await img.evaluate((i) => i.naturalWidth), 320);
  assert.equal(await img.getAttribute('alt'), 'Preview of chart.png');
  await screenshot(page, 'preview-image');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // The CSV: its first rows, as a table.
  await page.getByRole('button', { name: 'Preview stations.csv' }).click();
  const table = dialog.locator('table.csv-preview');
  await table.waitFor();
  assert.deepEqual(await table.locator('thead th').allInnerTexts(), ['station', 'date', 'temperature_c', 'note']);
  assert.equal(await table.locator('tbody tr').count(), 50);
  assert.equal(await table.locator('tbody tr').nth(1).locator('td').nth(3).innerText(), 'windy, cold');
  await screenshot(page, 'preview-csv');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  // Focus goes back to what opened the dialog.
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Preview stations.csv');
  // JSON, pretty-printed.
  await page.getByRole('button', { name: 'Preview metrics.json' }).click();
  await dialog.locator('pre.json').waitFor();
  assert.match(await dialog.locator('pre.json').innerText(), /"rmse": 1\.42/);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
});

step('a large file goes up in parts with its progress shown; another upload is cancelled', async () => {
  const { page } = A;
  const before = recorder.requests.length;
  const cdp = await throttleUploads(page, 3 * MiB);
  await page.locator('#file-input').setInputFiles([{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: bytes(12 * MiB) }]);
  const bar = upload(page, 'figures/big.bin').locator('progress');
  await page.waitForFunction(() => {
    const p = document.querySelector('li.upload[data-key="figures/big.bin"] progress');
    return p && p.value > p.max * 0.3 && p.value < p.max;
  });
  assert.match(await upload(page, 'figures/big.bin').locator('.upload-status').innerText(), /^\d+% — /);
  await screenshot(page, 'upload-progress');
  await page.locator('li.upload[data-key="figures/big.bin"][data-state="done"]').waitFor({ timeout: 60_000 });
  assert.deepEqual(await bar.evaluate((p) => [p.value, p.max]), [12 * MiB, 12 * MiB]);
  // It went up in parts, through the REST multipart routes.
  const made = recorder.requests.slice(before).map((r) => `${r.method} ${new URL(r.url).pathname}`);
  assert.ok(made.includes(`POST /api/v1/buckets/${bucket}/uploads`), made.join('\n'));
  assert.ok(made.some((m) => /^PUT \/api\/v1\/buckets\/[^/]+\/uploads\/[^/]+\/parts\/2$/.test(m)), made.join('\n'));
  assert.ok(made.some((m) => /^POST \/api\/v1\/buckets\/[^/]+\/uploads\/[^/]+\/complete$/.test(m)), made.join('\n'));
  await row(page, 'figures/big.bin').waitFor();
  assert.match(await row(page, 'figures/big.bin').innerText(), /12\.0 MB/);

  // Cancelled half-way: no object, and the upload is abandoned on the server.
  await page.locator('#file-input').setInputFiles([{ name: 'cancelled.bin', mimeType: 'application/octet-stream', buffer: bytes(12 * MiB) }]);
  await page.waitForFunction(() => {
    const p = document.querySelector('li.upload[data-key="figures/cancelled.bin"] progress');
    return p && p.value > 0;
  });
  await page.getByRole('button', { name: 'Cancel the upload of figures/cancelled.bin' }).click();
  await page.locator('li.upload[data-key="figures/cancelled.bin"][data-state="cancelled"]').waitFor();
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const inProgress = async () =>
    page.evaluate(async (b) => (await (await fetch(`/api/v1/buckets/${b}/uploads`)).json()).uploads.map((u) => u.key), bucket);
  for (let i = 0; i < 50 && (await inProgress()).length; i++) await page.waitForTimeout(100);
  assert.deepEqual(await inProgress(), []);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await row(page, 'figures/big.bin').waitFor();
  assert.equal(await row(page, 'figures/cancelled.bin').count(), 0);
  await page.getByRole('button', { name: 'Clear finished uploads' }).click();
  assert.equal(await page.locator('li.upload').count(), 0);
});

step('dropped files upload; the listing pages, sorts and filters', async () => {
  const { page } = A;
  await browse(page);
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['dropped on the zone\n'], 'notes.txt', { type: 'text/plain' }));
    dt.items.add(new File(['# readme\n'], 'README.md', { type: 'text/markdown' }));
    const zone = document.getElementById('dropzone');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }
  });
  await page.locator('li.upload[data-key="notes.txt"][data-state="done"]').waitFor();
  await page.locator('li.upload[data-key="README.md"][data-state="done"]').waitFor();
  await row(page, 'notes.txt').waitFor();
  // A text preview.
  await page.getByRole('button', { name: 'Preview notes.txt' }).click();
  assert.equal(await page.locator('dialog.preview pre').innerText(), 'dropped on the zone\n');
  await page.keyboard.press('Escape');

  // 25 files in a folder of their own: pages of 10.
  await page.getByRole('button', { name: 'New folder' }).click();
  await page.getByLabel('Folder name').fill('many');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'many/' }).waitFor();
  const files = Array.from({ length: 25 }, (_, i) => ({
    name: `item-${String(i + 1).padStart(2, '0')}.txt`,
    mimeType: 'text/plain',
    buffer: Buffer.from('x'.repeat(i + 1)),
  }));
  await page.locator('#file-input').setInputFiles(files);
  await page.waitForFunction(() => document.querySelectorAll('li.upload[data-state="done"]').length === 25, null, { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelectorAll('tr.file').length === 25);
  const names = () => page.locator('tr.file td.name').allInnerTexts();
  await page.getByLabel('Per page').selectOption('10');
  await page.locator('.page-no', { hasText: 'Page 1 — 10 entries' }).waitFor();
  assert.deepEqual((await names()).slice(0, 2), ['item-01.txt', 'item-02.txt']);
  assert.equal((await names()).length, 10);
  await page.getByRole('button', { name: 'Next page →' }).click();
  await page.locator('.page-no', { hasText: 'Page 2 ' }).waitFor();
  assert.equal((await names())[0], 'item-11.txt');
  await page.getByRole('button', { name: 'Next page →' }).click();
  await page.locator('.page-no', { hasText: 'Page 3 (last)' }).waitFor();
  assert.deepEqual(await names(), ['item-21.txt', 'item-22.txt', 'item-23.txt', 'item-24.txt', 'item-25.txt']);
  assert.equal(await page.getByRole('button', { name: 'Next page →' }).isDisabled(), true);
  await page.getByRole('button', { name: '← Previous page' }).click();
  await page.locator('.page-no', { hasText: 'Page 2 ' }).waitFor();
  await page.getByLabel('Per page').selectOption('50');
  await page.locator('.page-no', { hasText: 'Page 1 (last)' }).waitFor();
  // Sorting: by name, then reversed; by size (largest first when reversed).
  const sortBy = (label) => page.locator('th button.sort', { hasText: label }).click();
  await sortBy('Name');
  assert.equal((await names())[0], 'item-25.txt');
  assert.equal(await page.locator('th[aria-sort="descending"]').innerText(), 'Name ▼');
  await sortBy('Size');
  assert.equal((await names())[0], 'item-01.txt');
  await sortBy('Size');
  assert.equal((await names())[0], 'item-25.txt');
  // Filtering by name.
  await page.getByLabel('Filter').fill('item-07');
  assert.deepEqual(await names(), ['item-07.txt']);
  await page.getByLabel('Filter').fill('nothing-like-this');
  await page.getByText('Nothing on this page matches the filter.').waitFor();
  await page.getByLabel('Filter').fill('');
  await browse(page);
  assert.deepEqual(await page.locator('tr.folder td.name').allInnerTexts(), ['📁 figures/', '📁 many/']);
  await screenshot(page, 'listing');
});

step('alice shares the bucket read-only with bob, and makes a share link to the image', async () => {
  const { page } = A;
  await browse(page);
  await page.getByRole('link', { name: 'Sharing and links' }).click();
  await page.getByRole('heading', { level: 1, name: `Sharing ${bucket}` }).waitFor();
  await page.getByText('Nobody else has a role on this bucket yet.').waitFor();
  await page.getByLabel('Share with a', { exact: true }).selectOption('user');
  await page.getByLabel('Name', { exact: true }).fill(bob);
  await page.getByLabel('Role', { exact: true }).selectOption('read');
  await page.getByRole('button', { name: 'Share', exact: true }).click();
  const role = page.getByLabel(`Role of user ${bob}`);
  await role.waitFor();
  assert.equal(await role.inputValue(), 'read');
  await page.locator('.notice-success', { hasText: `Shared ${bucket} with user ${bob} (read).` }).waitFor();
  // A group too, then removed again.
  await page.getByLabel('Share with a', { exact: true }).selectOption('group');
  await page.getByLabel('Name', { exact: true }).fill('interns');
  await page.getByRole('button', { name: 'Share', exact: true }).click();
  await page.getByLabel('Role of group interns').waitFor();
  await page.getByRole('button', { name: 'Remove the access of group interns' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await page.getByLabel('Role of group interns').waitFor({ state: 'detached' });
  await screenshot(page, 'sharing');

  await browse(page, 'figures/');
  await page.getByRole('button', { name: 'Make a share link to chart.png' }).click();
  await page.getByLabel('The link works for').selectOption(String(86400));
  await page.getByRole('button', { name: 'Make link' }).click();
  const url = page.locator('#share-url');
  await url.waitFor();
  linkUrl = await url.inputValue();
  assert.match(linkUrl, new RegExp(`^${COFFER}/api/v1/share/[^/]+$`));
  await screenshot(page, 'share-link');
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();

  // Anyone with the link: a fresh context, no cookies.
  const fresh = await newContext(browser);
  const p = await fresh.newPage();
  const resp = await p.goto(linkUrl);
  assert.equal(resp.status(), 200);
  assert.equal(resp.headers()['content-type'], 'image/png');
  assert.deepEqual(Buffer.from(await resp.body()), image);
  assert.equal((await fresh.cookies()).length, 0);
  await fresh.close();
  await signOut(page);
  await A.context.close();
});

step('bob sees the bucket shared with him, downloads the image, and may not delete it', async () => {
  const { context, page } = await signIn(browser, bob);
  const shared = page.locator('section[data-group="shared"] tr', { has: page.getByRole('link', { name: bucket, exact: true }) });
  await shared.waitFor();
  const text = await shared.innerText();
  assert.match(text, /Read — view and download/);
  assert.match(text, /unclassified/);
  assert.match(text, new RegExp(alice));
  await shared.getByRole('link', { name: bucket, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: bucket }).waitFor();
  assert.match(await page.locator('#role-hint').innerText(), /Your role here is read/);
  assert.equal(await page.locator('#dropzone').count(), 0, 'no upload for a reader');
  await page.getByRole('link', { name: 'figures/' }).click();
  await row(page, 'figures/chart.png').waitFor();

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download chart.png' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'chart.png');
  assert.deepEqual(await readFile(await download.path()), image);

  await page.getByRole('button', { name: 'Delete chart.png' }).click();
  const dialog = page.getByRole('dialog');
  assert.match(await dialog.innerText(), /Delete “chart.png”/);
  await dialog.getByRole('button', { name: 'Delete' }).click();
  const said = noticeError(page);
  await said.waitFor();
  assert.match(await said.innerText(), /^You are not allowed to delete “chart.png”/);
  assert.doesNotMatch(await said.innerText(), /Error|at .*\.js|undefined/);
  await screenshot(page, 'denied');
  await page.getByRole('button', { name: 'Refresh' }).click();
  await row(page, 'figures/chart.png').waitFor();
  // bob sees no sharing controls.
  assert.equal(await page.getByRole('link', { name: 'Sharing and links' }).count(), 0);
  await context.close();
});

step('carol, no member, does not see the bucket', async () => {
  const { context, page } = await signIn(browser, carol);
  await page.getByRole('heading', { name: 'My buckets' }).waitFor();
  await page.locator('section[data-group="shared"]').getByText('Nothing is shared with you yet.').waitFor();
  assert.equal(await page.getByRole('link', { name: bucket, exact: true }).count(), 0);
  await page.goto(`${COFFER}/console/buckets/${bucket}/browse`);
  const box = page.locator('.error-box');
  await box.waitFor();
  assert.match(await box.innerText(), /There is no bucket “.*” that you have access to\./);
  assert.equal(await page.locator('table.objects').count(), 0);
  await context.close();
});

step('the share link opens until alice revokes it', async () => {
  A = await signIn(browser, alice, ['analysts']);
  const { page } = A;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Share links' }).click();
  await page.getByRole('heading', { level: 1, name: 'Share links' }).waitFor();
  const revoke = page.getByRole('button', { name: 'Revoke the link to the file figures/chart.png' });
  await revoke.click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.locator('.notice-success', { hasText: 'The share link was revoked' }).waitFor();
  await page.locator('.badge-link-revoked').first().waitFor();
  const fresh = await newContext(browser);
  const p = await fresh.newPage();
  const resp = await p.goto(linkUrl);
  assert.equal(resp.status(), 410);
  await fresh.close();
});

step('keyboard only: the file picker is reachable, dialogs answer to Escape, focus is visible', async () => {
  const { page } = A;
  await browse(page, 'figures/');
  await page.locator('body').focus();
  await page.evaluate(() => document.activeElement?.blur());
  // The first Tab lands on the skip link.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.id === 'file-input');
  }
  assert.ok(reached, 'the file input is reachable with Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.querySelector('label.file-label')).outlineStyle);
  assert.notEqual(outline, 'none', 'the picker shows focus');
  // A delete asked from the keyboard, and refused with Escape: nothing deleted.
  await page.getByRole('button', { name: 'Delete metrics.json' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Delete metrics.json');
  await row(page, 'figures/metrics.json').waitFor();
  // Deleted for real, after confirming from the keyboard.
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.locator('.notice-success', { hasText: 'Deleted “metrics.json”.' }).waitFor();
  await row(page, 'figures/metrics.json').waitFor({ state: 'detached' });
});

step('a narrow window: nothing runs off the side', async () => {
  const { page } = A;
  await page.setViewportSize({ width: 390, height: 844 });
  for (const where of [`/console/buckets`, `/console/buckets/${bucket}/sharing`, `/console/buckets/${bucket}/browse?prefix=figures%2F`]) {
    await page.goto(`${COFFER}${where}`);
    await page.locator('main h1').waitFor();
    await page.locator('main table').first().waitFor();
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width + 1, `${where}: ${scroll}px wide in a ${width}px window`);
  }
  await screenshot(page, 'narrow', { fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await signOut(page);
  await A.context.close();
});

step('every request went to the documented REST API, the console or the issuer', async () => {
  const summary = await checkRequests();
  for (const op of [
    'GET /api/v1/me',
    'GET /api/v1/buckets',
    'POST /api/v1/buckets',
    'GET /api/v1/buckets/{name}/objects',
    'PUT /api/v1/buckets/{name}/objects/{key}',
    'GET /api/v1/buckets/{name}/objects/{key}',
    'DELETE /api/v1/buckets/{name}/objects/{key}',
    'POST /api/v1/buckets/{name}/uploads',
    'PUT /api/v1/buckets/{name}/uploads/{upload_id}/parts/{part_number}',
    'POST /api/v1/buckets/{name}/uploads/{upload_id}/complete',
    'DELETE /api/v1/buckets/{name}/uploads/{upload_id}',
    'PUT /api/v1/buckets/{name}/grants',
    'DELETE /api/v1/buckets/{name}/grants/{kind}/{grantee}',
    'POST /api/v1/buckets/{name}/links',
    'GET /api/v1/links',
    'DELETE /api/v1/links/{id}',
    'GET /api/v1/share/{token}',
  ]) {
    assert.ok(summary.operations.includes(op), `${op} was used (${summary.operations.join(', ')})`);
  }
  assert.ok(summary.issuer > 0, 'signed in through the issuer');
  console.log(`checked ${summary.total} requests: ${summary.api} to the REST API, ${summary.console} to the console, ${summary.issuer} to the issuer`);
});
