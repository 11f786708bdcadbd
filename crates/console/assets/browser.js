// coffer's web console — a bucket's browser: folders (common prefixes) with breadcrumbs,
// sorting, a name filter and pages for large listings; uploads (drag and drop or a file
// picker, several files, a progress bar each, multipart for large files, cancel); download,
// delete with confirmation, new folders, previews (images, text, CSV, JSON) and share links.
// REST: GET /buckets/{name}, GET /buckets/{name}/objects, PUT|GET|DELETE
// /buckets/{name}/objects/{key}, POST /buckets/{name}/uploads, PUT …/uploads/{id}/parts/{n},
// POST …/uploads/{id}/complete, DELETE …/uploads/{id}, POST /buckets/{name}/links.

import { api, upload, attempt, describeError, encodeKey, API, ApiError } from './api.js';
import { h, add, notify, confirmDialog, formDialog, formatBytes, formatTime, errorBox, replace } from './ui.js';
import { browsePath, sharingPath, roleBadge, classificationBadge } from './buckets.js';
import { createLinkFlow } from './sharing.js';

/** Files larger than this go up in parts (multipart upload). */
export const MULTIPART_THRESHOLD = 8 * 1024 * 1024;
/** The size of each part but the last (coffer asks at least 5 MiB). */
export const PART_SIZE = 8 * 1024 * 1024;
/** Parts sent at once. */
const PART_CONCURRENCY = 3;
/** Files sent at once. */
const FILE_CONCURRENCY = 2;
/** What a text preview reads at most. */
const TEXT_PREVIEW_BYTES = 256 * 1024;
/** The largest image previewed. */
const IMAGE_PREVIEW_BYTES = 25 * 1024 * 1024;
/** The largest JSON document parsed for its preview. */
const JSON_PREVIEW_BYTES = 2 * 1024 * 1024;
/** Rows of a CSV preview. */
const CSV_PREVIEW_ROWS = 50;
const PAGE_SIZES = [10, 20, 50, 100, 200, 500, 1000];

const IMAGE_EXT = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'svg', 'bmp', 'avif', 'ico'];
const TEXT_EXT = [
  'txt', 'md', 'markdown', 'log', 'py', 'r', 'js', 'mjs', 'ts', 'java', 'scala', 'go', 'rs', 'c', 'h', 'cpp', 'sh',
  'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'sql', 'xml', 'html', 'htm', 'css', 'tex', 'rst', 'env', 'properties',
];

const objectPath = (bucket, key) => `/buckets/${encodeURIComponent(bucket)}/objects/${encodeKey(key)}`;
/** The URL that downloads an object as an attachment (a plain link: the browser saves it). */
export const downloadUrl = (bucket, key) => `${API}${objectPath(bucket, key)}?download=1`;

const extOf = (key) => {
  const last = key.split('/').pop() || '';
  const i = last.lastIndexOf('.');
  return i > 0 ? last.slice(i + 1).toLowerCase() : '';
};
const baseName = (key) => key.replace(/\/$/, '').split('/').pop();

/** What kind of preview an object gets: image, csv, json, text or null. */
export function previewKind(key, contentType) {
  const ext = extOf(key);
  const type = (contentType || '').toLowerCase().split(';')[0].trim();
  if (type.startsWith('image/') || IMAGE_EXT.includes(ext)) return 'image';
  if (type === 'text/csv' || type === 'text/tab-separated-values' || ext === 'csv' || ext === 'tsv') return 'csv';
  if (type === 'application/json' || type.endsWith('+json') || ['json', 'geojson', 'ipynb'].includes(ext)) return 'json';
  if (type === 'application/x-ndjson' || ext === 'jsonl' || ext === 'ndjson') return 'text';
  if (type.startsWith('text/') || TEXT_EXT.includes(ext) || ['application/xml', 'application/yaml', 'application/x-yaml', 'application/toml'].includes(type)) {
    return 'text';
  }
  return null;
}

/** Split CSV text into rows (quotes, doubled quotes, CR/LF); at most `limit` rows. */
export function parseCsv(text, limit = Infinity, sep = ',') {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < limit; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === sep) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if ((field !== '' || row.length) && rows.length < limit) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Everything under a dropped folder, as [relative path, File]. */
async function filesOfEntry(entry, path = '') {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    return [[path + file.name, file]];
  }
  if (!entry.isDirectory) return [];
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const child of batch) out.push(...(await filesOfEntry(child, `${path}${entry.name}/`)));
  }
  return out;
}

/** What was dropped: [relative path, File], folders walked. */
async function droppedFiles(dt) {
  const items = [...(dt.items || [])].filter((i) => i.kind === 'file');
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean)) {
    const out = [];
    for (const e of entries) out.push(...(await filesOfEntry(e)));
    return out;
  }
  return [...dt.files].map((f) => [f.name, f]);
}

/** One file going up: its row in the uploads list, its progress and its cancel. */
class Transfer {
  constructor(bucket, key, file, onDone) {
    this.bucket = bucket;
    this.key = key;
    this.file = file;
    this.onDone = onDone;
    this.controller = new AbortController();
    this.state = 'waiting';
    const name = key;
    this.bar = h('progress', { max: Math.max(file.size, 1), value: 0, 'aria-label': `Upload progress of ${name}` });
    this.text = h('span', { class: 'upload-status' }, 'Waiting…');
    this.cancel = h('button', { type: 'button', class: 'button small', 'aria-label': `Cancel the upload of ${name}` }, 'Cancel');
    this.cancel.addEventListener('click', () => this.abort());
    this.row = h(
      'li',
      { class: 'upload', dataset: { key, state: 'waiting' } },
      h('span', { class: 'upload-name' }, name),
      h('span', { class: 'upload-size' }, formatBytes(file.size)),
      this.bar,
      this.text,
      this.cancel,
    );
  }

  setState(state, text) {
    this.state = state;
    this.row.dataset.state = state;
    this.text.textContent = text;
    if (['done', 'failed', 'cancelled'].includes(state)) {
      this.cancel.hidden = true;
    }
  }

  progress(loaded) {
    const total = this.file.size;
    this.bar.value = Math.min(loaded, Math.max(total, 1));
    const pct = total ? Math.floor((Math.min(loaded, total) / total) * 100) : 100;
    this.bar.setAttribute('aria-valuetext', `${pct}%`);
    this.text.textContent = `${pct}% — ${formatBytes(Math.min(loaded, total))} of ${formatBytes(total)}`;
  }

  abort() {
    if (['done', 'failed', 'cancelled'].includes(this.state)) return;
    this.controller.abort();
    this.setState('cancelled', 'Cancelled');
  }

  async run() {
    if (this.state === 'cancelled') return;
    this.setState('uploading', 'Starting…');
    this.progress(0);
    try {
      if (this.file.size > MULTIPART_THRESHOLD) await this.multipart();
      else await this.single();
      this.bar.value = Math.max(this.file.size, 1);
      this.setState('done', `Uploaded (${formatBytes(this.file.size)})`);
      this.onDone(this, null);
    } catch (e) {
      if (e?.name === 'AbortError' || this.controller.signal.aborted) {
        this.setState('cancelled', 'Cancelled');
        this.onDone(this, e);
        return;
      }
      if (e instanceof ApiError && !e.action) e.action = `upload “${this.key}” here`;
      this.setState('failed', `Failed: ${describeError(e)}`);
      this.onDone(this, e);
    }
  }

  contentType() {
    return this.file.type || 'application/octet-stream';
  }

  async single() {
    await upload('PUT', objectPath(this.bucket, this.key), this.file, {
      headers: { 'Content-Type': this.contentType() },
      onProgress: (n) => this.progress(n),
      signal: this.controller.signal,
    });
  }

  async multipart() {
    const b = encodeURIComponent(this.bucket);
    const started = await api('POST', `/buckets/${b}/uploads`, { key: this.key, content_type: this.contentType() }, { signal: this.controller.signal });
    const id = encodeURIComponent(started.upload_id);
    const count = Math.ceil(this.file.size / PART_SIZE);
    const loaded = new Array(count).fill(0);
    const done = new Array(count);
    let next = 0;
    const report = () => this.progress(loaded.reduce((a, x) => a + x, 0));
    const worker = async () => {
      while (next < count && !this.controller.signal.aborted) {
        const i = next++;
        const blob = this.file.slice(i * PART_SIZE, Math.min((i + 1) * PART_SIZE, this.file.size));
        const part = await upload('PUT', `/buckets/${b}/uploads/${id}/parts/${i + 1}`, blob, {
          query: { key: this.key },
          onProgress: (n) => {
            loaded[i] = n;
            report();
          },
          signal: this.controller.signal,
        });
        loaded[i] = blob.size;
        report();
        done[i] = { part_number: part.part_number, etag: part.etag };
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, worker));
      if (this.controller.signal.aborted) throw new DOMException('cancelled', 'AbortError');
      this.text.textContent = 'Putting the parts together…';
      await api('POST', `/buckets/${b}/uploads/${id}/complete`, { key: this.key, parts: done });
    } catch (e) {
      // Abandon the upload so that its parts do not linger (best effort).
      api('DELETE', `/buckets/${b}/uploads/${id}`, null, { query: { key: this.key } }).catch(() => {});
      throw e;
    }
  }
}

export async function render(main, ctx) {
  const bucketName = ctx.params.name;
  const prefix = ctx.query.get('prefix') || '';
  let bucket;
  try {
    bucket = await api('GET', `/buckets/${encodeURIComponent(bucketName)}`);
  } catch (e) {
    main.append(h('h1', null, bucketName));
    if (e instanceof ApiError && (e.status === 404 || e.status === 403)) {
      main.append(errorBox(`There is no bucket “${bucketName}” that you have access to.`));
    } else {
      main.append(errorBox(describeError(e)));
    }
    main.append(h('p', null, h('a', { href: '/console/buckets' }, 'Back to your buckets')));
    return;
  }
  const canWrite = bucket.role === 'write' || bucket.role === 'admin';

  // Breadcrumbs: Buckets / bucket / a / b
  const parts = prefix.split('/').filter(Boolean);
  const crumbs = [h('li', null, h('a', { href: '/console/buckets' }, 'Buckets')), h('li', null, parts.length ? h('a', { href: browsePath(bucketName) }, bucketName) : h('span', { 'aria-current': 'page' }, bucketName))];
  parts.forEach((p, i) => {
    const to = `${parts.slice(0, i + 1).join('/')}/`;
    crumbs.push(h('li', null, i === parts.length - 1 ? h('span', { 'aria-current': 'page' }, p) : h('a', { href: browsePath(bucketName, to) }, p)));
  });

  add(
    main,
    h('nav', { 'aria-label': 'Breadcrumb', class: 'breadcrumbs' }, h('ol', null, crumbs)),
    h('h1', null, parts.length ? `${parts[parts.length - 1]}/` : bucketName),
    h(
      'p',
      { class: 'bucket-facts' },
      h('span', null, 'Your role: ', roleBadge(bucket.role)),
      ' ',
      h('span', null, 'Classification: ', classificationBadge(bucket.classification)),
      ' ',
      bucket.role === 'admin' ? h('a', { href: sharingPath(bucketName), class: 'button small' }, 'Sharing and links') : null,
    ),
    canWrite
      ? null
      : h('p', { class: 'hint', id: 'role-hint' }, `Your role here is ${bucket.role}: you can view and download, and make share links, but not upload, make folders or delete.`),
  );

  // ---- the listing -----------------------------------------------------------------
  // Pages start after the folder's own marker object (the key `prefix` itself, made by "New
  // folder"), so that it takes no place on the first page.
  const view = { sort: 'name', dir: 1, filter: '', pageSize: 100, stack: [prefix], page: null };
  const listing = h('div', { class: 'listing', 'aria-live': 'polite', 'aria-busy': 'false' });
  const pager = h('div', { class: 'pager' });
  const filter = h('input', { id: 'object-filter', type: 'search', placeholder: 'Filter by name', autocomplete: 'off' });
  const size = h('select', { id: 'page-size' }, PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === view.pageSize }, String(n))));

  const load = async () => {
    listing.setAttribute('aria-busy', 'true');
    try {
      view.page = await api('GET', `/buckets/${encodeURIComponent(bucketName)}/objects`, undefined, {
        query: { prefix, delimiter: '/', max_keys: view.pageSize, start_after: view.stack[view.stack.length - 1] },
      });
      draw();
    } catch (e) {
      replace(listing, errorBox(describeError(e)));
    } finally {
      listing.setAttribute('aria-busy', 'false');
    }
  };

  const sortButton = (key, label) => {
    const active = view.sort === key;
    const btn = h('button', { type: 'button', class: 'sort', dataset: { sort: key } }, label, active ? (view.dir > 0 ? ' ▲' : ' ▼') : '');
    btn.addEventListener('click', () => {
      if (view.sort === key) view.dir = -view.dir;
      else {
        view.sort = key;
        view.dir = 1;
      }
      draw();
      listing.querySelector(`button.sort[data-sort="${key}"]`)?.focus();
    });
    return h('th', { scope: 'col', 'aria-sort': active ? (view.dir > 0 ? 'ascending' : 'descending') : 'none' }, btn);
  };

  const draw = () => {
    const page = view.page;
    const q = view.filter.toLowerCase();
    const folders = page.prefixes.map((p) => ({ folder: true, key: p, name: baseName(p) }));
    const files = page.objects
      .filter((o) => o.key !== prefix) // the folder's own marker
      .map((o) => ({ ...o, folder: false, name: o.key.slice(prefix.length) }));
    const cmp = {
      name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }),
      size: (a, b) => (a.size ?? -1) - (b.size ?? -1) || a.name.localeCompare(b.name),
      modified: (a, b) => (a.last_modified || '').localeCompare(b.last_modified || '') || a.name.localeCompare(b.name),
    }[view.sort];
    const rows = [...folders.sort(cmp), ...files.sort(cmp)];
    if (view.dir < 0) {
      folders.reverse();
      files.reverse();
      rows.splice(0, rows.length, ...folders, ...files);
    }
    const shown = rows.filter((r) => !q || r.name.toLowerCase().includes(q));
    const body = shown.map((r) => (r.folder ? folderRow(r) : fileRow(r)));
    const empty = rows.length === 0 ? (prefix ? 'This folder is empty.' : 'This bucket is empty.') : 'Nothing on this page matches the filter.';
    replace(
      listing,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table objects' },
          h('caption', { class: 'visually-hidden' }, `Contents of ${bucketName}/${prefix}`),
          h('thead', null, h('tr', null, sortButton('name', 'Name'), sortButton('size', 'Size'), sortButton('modified', 'Last modified'), h('th', { scope: 'col', class: 'actions' }, 'Actions'))),
          h('tbody', null, body.length ? body : h('tr', null, h('td', { colspan: 4, class: 'empty' }, empty))),
        ),
      ),
    );
    const pageNo = view.stack.length;
    const prev = h('button', { type: 'button', class: 'button small', disabled: pageNo === 1 }, '← Previous page');
    const next = h('button', { type: 'button', class: 'button small', disabled: !page.next }, 'Next page →');
    prev.addEventListener('click', () => {
      view.stack.pop();
      load();
    });
    next.addEventListener('click', () => {
      view.stack.push(page.next);
      load();
    });
    replace(
      pager,
      prev,
      h('span', { class: 'page-no' }, `Page ${pageNo}${page.next ? '' : ' (last)'} — ${rows.length} ${rows.length === 1 ? 'entry' : 'entries'}${q ? `, ${shown.length} shown` : ''}`),
      next,
    );
  };

  const folderRow = (f) =>
    h(
      'tr',
      { class: 'folder', dataset: { key: f.key } },
      h('td', { class: 'name' }, h('a', { href: browsePath(bucketName, f.key), class: 'folder-link' }, h('span', { class: 'icon', 'aria-hidden': 'true' }, '📁 '), `${f.name}/`)),
      h('td', null, '—'),
      h('td', null, '—'),
      h(
        'td',
        { class: 'actions' },
        h('span', { class: 'row-actions' }, h('button', { type: 'button', class: 'button small', 'aria-label': `Make a share link to the folder ${f.name}`, onClick: () => createLinkFlow(bucketName, { prefix: f.key }) }, 'Share link')),
      ),
    );

  const fileRow = (o) => {
    const kind = previewKind(o.key, o.content_type);
    return h(
      'tr',
      { class: 'file', dataset: { key: o.key } },
      h(
        'td',
        { class: 'name' },
        kind
          ? h('button', { type: 'button', class: 'linklike', title: 'Preview', onClick: () => preview(bucketName, o) }, o.name)
          : h('span', null, o.name),
      ),
      h('td', { class: 'num' }, formatBytes(o.size)),
      h('td', null, formatTime(o.last_modified)),
      h(
        'td',
        { class: 'actions' },
        h(
          'span',
          { class: 'row-actions' },
          kind ? h('button', { type: 'button', class: 'button small', 'aria-label': `Preview ${o.name}`, onClick: () => preview(bucketName, o) }, 'Preview') : null,
          h('a', { class: 'button small', href: downloadUrl(bucketName, o.key), download: o.name, 'aria-label': `Download ${o.name}` }, 'Download'),
          h('button', { type: 'button', class: 'button small', 'aria-label': `Make a share link to ${o.name}`, onClick: () => createLinkFlow(bucketName, { key: o.key }) }, 'Share link'),
          h('button', { type: 'button', class: 'button small danger', 'aria-label': `Delete ${o.name}`, onClick: () => remove(o) }, 'Delete'),
        ),
      ),
    );
  };

  const remove = async (o) => {
    const name = o.key.slice(prefix.length);
    const yes = await confirmDialog(`Delete “${name}” from ${bucketName}? This cannot be undone.`, { confirmLabel: 'Delete', title: 'Delete this file?' });
    if (!yes) return;
    try {
      await attempt(`delete “${name}”`, () => api('DELETE', objectPath(bucketName, o.key)));
      notify(`Deleted “${name}”.`, 'success');
      await load();
    } catch (e) {
      notify(describeError(e), 'error');
    }
  };

  filter.addEventListener('input', () => {
    view.filter = filter.value.trim();
    if (view.page) draw();
  });
  size.addEventListener('change', () => {
    view.pageSize = Number(size.value);
    view.stack = [prefix];
    load();
  });

  // ---- new folder, uploads -----------------------------------------------------------
  const newFolder = async () => {
    const got = await formDialog('New folder', [
      { name: 'name', label: 'Folder name', required: true, pattern: '[^\\/]+', help: `It is made inside ${bucketName}/${prefix}` },
    ], { submitLabel: 'Create folder' });
    if (!got) return;
    const name = got.name.trim().replace(/\/+$/, '');
    if (!name || name.includes('/')) {
      notify('A folder name cannot be empty or contain “/”.', 'error');
      return;
    }
    const key = `${prefix}${name}/`;
    try {
      await attempt(`make the folder “${name}”`, () => api('PUT', objectPath(bucketName, key), new Blob([]), { raw: true, headers: { 'Content-Type': 'application/x-directory' } }));
      notify(`Folder “${name}” created.`, 'success');
      ctx.navigate(browsePath(bucketName, key));
    } catch (e) {
      notify(describeError(e), 'error');
    }
  };

  const uploadsList = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const queue = [];
  let running = 0;
  let reloadTimer = null;
  const clearDone = h('button', { type: 'button', class: 'button small', hidden: true }, 'Clear finished uploads');
  clearDone.addEventListener('click', () => {
    for (const li of [...uploadsList.children]) if (['done', 'cancelled', 'failed'].includes(li.dataset.state)) li.remove();
    clearDone.hidden = true;
  });
  const pump = () => {
    while (running < FILE_CONCURRENCY && queue.length) {
      const t = queue.shift();
      if (t.state === 'cancelled') continue;
      running++;
      t.run();
    }
  };
  const finished = (t, err) => {
    running--;
    clearDone.hidden = false;
    if (!err) {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(load, 300);
    } else if (err.name !== 'AbortError' && t.state === 'failed') {
      notify(`The upload of “${t.key}” failed: ${describeError(err)}`, 'error');
    }
    if (!running && !queue.length) {
      const done = [...uploadsList.children].filter((li) => li.dataset.state === 'done').length;
      if (done) notify(`${done} ${done === 1 ? 'file' : 'files'} uploaded.`, 'success');
    }
    pump();
  };
  const enqueue = async (files) => {
    if (!files.length) return;
    const existing = new Set((view.page?.objects || []).map((o) => o.key));
    const clashes = files.filter(([rel]) => existing.has(prefix + rel));
    if (clashes.length) {
      const names = clashes.map(([rel]) => rel).slice(0, 5).join(', ');
      const yes = await confirmDialog(`${clashes.length === 1 ? 'A file' : `${clashes.length} files`} with the same name already ${clashes.length === 1 ? 'exists' : 'exist'} here (${names}). Replace ${clashes.length === 1 ? 'it' : 'them'}?`, { confirmLabel: 'Replace', title: 'Replace files?' });
      if (!yes) return;
    }
    for (const [rel, file] of files) {
      const t = new Transfer(bucketName, prefix + rel, file, finished);
      uploadsList.append(t.row);
      queue.push(t);
    }
    pump();
  };

  const picker = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'file-input' });
  picker.addEventListener('change', () => {
    enqueue([...picker.files].map((f) => [f.name, f]));
    picker.value = '';
  });
  const zone = h(
    'div',
    { class: 'dropzone', id: 'dropzone' },
    h('p', null, 'Drop files or folders here to upload them to ', h('strong', null, `${bucketName}/${prefix}`), ', or '),
    h('label', { for: 'file-input', class: 'button primary file-label' }, 'Choose files…'),
    picker,
    h('p', { class: 'muted small' }, `Files over ${formatBytes(MULTIPART_THRESHOLD)} are sent in parts.`),
  );
  let depth = 0;
  zone.addEventListener('dragenter', (e) => {
    e.preventDefault();
    depth++;
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove('dragging');
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    try {
      enqueue(await droppedFiles(e.dataTransfer));
    } catch (err) {
      notify(`Those files could not be read: ${err?.message || err}`, 'error');
    }
  });

  const toolbar = h(
    'div',
    { class: 'toolbar' },
    h('label', { for: 'object-filter' }, 'Filter'),
    filter,
    h('label', { for: 'page-size' }, 'Per page'),
    size,
    canWrite ? h('button', { type: 'button', class: 'button', onClick: newFolder }, 'New folder') : null,
    h('button', { type: 'button', class: 'button', onClick: () => createLinkFlow(bucketName, { prefix }) }, prefix ? 'Share link to this folder' : 'Share link to the bucket'),
    h('button', { type: 'button', class: 'button', onClick: () => load() }, 'Refresh'),
  );

  add(
    main,
    canWrite ? h('section', { class: 'upload-area', 'aria-label': 'Upload' }, zone, uploadsList, clearDone) : null,
    toolbar,
    listing,
    pager,
  );
  replace(listing, h('p', { class: 'loading', role: 'status' }, 'Loading…'));
  await load();
}

// ---- previews ---------------------------------------------------------------------------

function decode(buf) {
  return new TextDecoder('utf-8', { fatal: false }).decode(buf);
}

/** The first `n` bytes of an object (all of it when it is smaller), as an ArrayBuffer. */
async function head(bucket, o, n) {
  const opts = { response: true, headers: {} };
  if (o.size > n) opts.headers.Range = `bytes=0-${n - 1}`;
  const resp = await api('GET', objectPath(bucket, o.key), undefined, opts);
  return resp.arrayBuffer();
}

async function previewBody(bucket, o, kind) {
  if (o.size === 0) return h('p', { class: 'muted' }, 'This file is empty.');
  if (kind === 'image') {
    if (o.size > IMAGE_PREVIEW_BYTES) return h('p', null, `This image is too large to preview (${formatBytes(o.size)}); download it instead.`);
    const resp = await api('GET', objectPath(bucket, o.key), undefined, { response: true });
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const img = h('img', { src: url, alt: `Preview of ${baseName(o.key)}`, class: 'preview-image' });
    img.addEventListener('load', () => setTimeout(() => URL.revokeObjectURL(url), 1000), { once: true });
    img.addEventListener('error', () => img.replaceWith(h('p', null, 'This image could not be shown by the browser.')), { once: true });
    return img;
  }
  if (kind === 'csv') {
    const text = decode(await head(bucket, o, TEXT_PREVIEW_BYTES));
    const sep = extOf(o.key) === 'tsv' || (o.content_type || '').includes('tab-separated') ? '\t' : ',';
    let rows = parseCsv(text, CSV_PREVIEW_ROWS + 2, sep);
    if (o.size > TEXT_PREVIEW_BYTES && rows.length > CSV_PREVIEW_ROWS + 1) rows = rows.slice(0, CSV_PREVIEW_ROWS + 1);
    rows = rows.slice(0, CSV_PREVIEW_ROWS + 1);
    if (!rows.length) return h('p', { class: 'muted' }, 'No rows.');
    const [first, ...rest] = rows;
    const width = Math.max(...rows.map((r) => r.length));
    const pad = (r) => [...r, ...new Array(width - r.length).fill('')];
    return h(
      'div',
      null,
      h('p', { class: 'muted' }, `The first ${rest.length} ${rest.length === 1 ? 'row' : 'rows'}, under the header row.`),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table csv-preview' },
          h('thead', null, h('tr', null, pad(first).map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, rest.map((r) => h('tr', null, pad(r).map((c) => h('td', null, c))))),
        ),
      ),
    );
  }
  if (kind === 'json' && o.size <= JSON_PREVIEW_BYTES) {
    const text = decode(await head(bucket, o, JSON_PREVIEW_BYTES));
    try {
      return h('pre', { class: 'preview-text json', tabindex: '0' }, JSON.stringify(JSON.parse(text), null, 2));
    } catch (e) {
      return h('div', null, h('p', { class: 'hint' }, `This is not valid JSON (${e.message}); here it is as text.`), h('pre', { class: 'preview-text', tabindex: '0' }, text));
    }
  }
  // text, and JSON too large to parse whole
  const text = decode(await head(bucket, o, TEXT_PREVIEW_BYTES));
  return h(
    'div',
    null,
    o.size > TEXT_PREVIEW_BYTES ? h('p', { class: 'muted' }, `The first ${formatBytes(TEXT_PREVIEW_BYTES)} of ${formatBytes(o.size)}.`) : null,
    h('pre', { class: 'preview-text', tabindex: '0' }, text),
  );
}

/** Show a preview of object `o` of `bucket` in a modal dialog. */
export async function preview(bucket, o) {
  const kind = previewKind(o.key, o.content_type);
  const name = baseName(o.key);
  const body = h('div', { class: 'preview-body' }, h('p', { class: 'loading', role: 'status' }, 'Loading the preview…'));
  const close = h('button', { type: 'button', class: 'button' }, 'Close');
  const titleId = `preview-${Math.random().toString(36).slice(2)}`;
  const dialog = h(
    'dialog',
    { class: 'dialog preview', 'aria-labelledby': titleId },
    h('div', { class: 'preview-head' }, h('h2', { id: titleId, class: 'dialog-title' }, name), h('span', { class: 'muted' }, `${formatBytes(o.size)} · ${o.content_type || 'unknown type'} · ${formatTime(o.last_modified)}`)),
    body,
    h('div', { class: 'dialog-actions' }, h('a', { class: 'button primary', href: downloadUrl(bucket, o.key), download: name }, 'Download'), close),
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
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
  try {
    replace(body, kind ? await previewBody(bucket, o, kind) : h('p', null, 'There is no preview for this kind of file; download it instead.'));
  } catch (e) {
    if (e instanceof ApiError && !e.action) e.action = `read “${name}”`;
    replace(body, errorBox(describeError(e)));
  }
}
