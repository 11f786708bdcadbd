// The web console's browser tests: what every test file shares. Run by
// tests/python/test_console_e2e.py, which starts coffer (with [console] on the real OpenID
// provider, tests/oidc/issuer.mjs) and a small control endpoint, then runs
// `node --test tests/console/*.test.mjs` with:
//   COFFER_URL          the server, e.g. http://127.0.0.1:PORT
//   COFFER_ISSUER_URL   the OpenID provider
//   COFFER_CONTROL_URL  POST /login-as {claims}: who the next sign-in is (issuer.login_as);
//                       POST /admin {args: [...]}: `coffer admin --json ARGS`, its JSON answer
//   COFFER_ARTIFACTS    where screenshots go (default tests/console/artifacts)
//   COFFER_REQUEST_LOGS where each test file's recorded requests go (default
//                       <artifacts>/requests), for check-requests.mjs
//   CHROMIUM            the browser (default /usr/bin/chromium, Debian's `chromium`)
//
// Every request any page makes is recorded (recorder.watch(context)); checkRequests() then
// holds each one to the rule: /api/v1 requests must be operations of the OpenAPI document
// served at /api/v1/openapi.json (method and path template), everything else on the server
// must be the console's own files or /console/login|callback|logout, and nothing may go
// anywhere but the server and the issuer.

import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const COFFER = (process.env.COFFER_URL || '').replace(/\/$/, '');
export const ISSUER = (process.env.COFFER_ISSUER_URL || '').replace(/\/$/, '');
export const CONTROL = (process.env.COFFER_CONTROL_URL || '').replace(/\/$/, '');
export const ARTIFACTS = process.env.COFFER_ARTIFACTS || path.join(here, 'artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

if (!COFFER || !CONTROL) {
  throw new Error('run these tests through tests/python/test_console_e2e.py (COFFER_URL and COFFER_CONTROL_URL are unset)');
}
mkdirSync(ARTIFACTS, { recursive: true });

/** A name nobody else uses in this run. */
export function unique(prefix) {
  return `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
}

/** Headless Chromium (the system's). */
export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

async function control(route, body) {
  const r = await fetch(`${CONTROL}${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`control ${route}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The next sign-in through the provider gets these claims. */
export async function loginAs(claims) {
  await control('/login-as', { claims });
}

/** `coffer admin --json ...args` on the server's store; its JSON answer. */
export async function admin(...args) {
  return control('/admin', { args });
}

/** Every request of the contexts watched: { method, url, resourceType, page }. */
export class Recorder {
  constructor() {
    this.requests = [];
  }

  watch(context) {
    context.on('request', (req) => {
      this.requests.push({ method: req.method(), url: req.url(), resourceType: req.resourceType() });
    });
    return context;
  }
}

export const recorder = new Recorder();

// Every test file's requests are also written out when its process ends, so that
// check-requests.mjs holds all of them to the rule even when a file forgets to.
export const REQUEST_LOGS = process.env.COFFER_REQUEST_LOGS || path.join(ARTIFACTS, 'requests');
mkdirSync(REQUEST_LOGS, { recursive: true });
process.on('exit', () => {
  if (!recorder.requests.length) return;
  const name = path.basename(process.argv[1] || 'test', '.mjs');
  writeFileSync(path.join(REQUEST_LOGS, `${name}-${process.pid}.json`), JSON.stringify(recorder.requests));
});

/** A fresh browser context (its own cookies), recorded. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, ...options });
  return recorder.watch(context);
}

/**
 * Sign `user` (with `groups`, and any extra claims) in through /console/login in a new
 * context; resolves to { context, page } on the console with the user's name shown.
 */
export async function signIn(browser, user, groups = [], extra = {}, contextOptions = {}) {
  await loginAs({ preferred_username: user, groups, email: `${user}@example.test`, ...extra });
  const context = await newContext(browser, contextOptions);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[page error as ${user}]`, e));
  await page.goto(`${COFFER}/console/login`);
  await page.waitForURL(`${COFFER}/console`);
  await page.locator('#user-name').filter({ hasText: user }).waitFor();
  return { context, page };
}

/** Sign out with the header's button; back on the signed-out console. */
export async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${COFFER}/console`);
  await page.getByRole('link', { name: 'Sign in' }).first().waitFor();
}

/** A screenshot into the artifacts directory. */
export async function screenshot(page, name, options = {}) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, ...options });
  return file;
}

/** The OpenAPI document's operations: [{ method, template, re }]. */
export async function apiOperations() {
  const r = await fetch(`${COFFER}/api/v1/openapi.json`);
  assert.equal(r.status, 200);
  const doc = await r.json();
  const base = new URL(doc.servers?.[0]?.url || '/api/v1', COFFER).pathname.replace(/\/$/, '');
  const ops = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch', 'head']) {
      if (!item[method]) continue;
      // A trailing {key} is an object key and may hold slashes (the path is `{*key}` in the
      // router); every other parameter is one segment.
      const pattern = template
        .split(/(\{[^}]+\})/)
        .map((part, i, all) => {
          if (!part.startsWith('{')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          return part === '{key}' && i === all.length - 2 ? '.+' : '[^/]+';
        })
        .join('');
      ops.push({ method: method.toUpperCase(), template: base + template, re: new RegExp(`^${base}${pattern}$`) });
    }
  }
  return ops;
}

/** Is this path one of the console's own (a file, an app route, signing in or out)? */
function consolePath(pathname) {
  return pathname === '/console' || pathname.startsWith('/console/');
}

/**
 * Hold every recorded request to the rule; resolves to a summary (operations used, counts)
 * or throws listing every request that broke it.
 */
export async function checkRequests(rec = recorder) {
  const ops = await apiOperations();
  const server = new URL(COFFER);
  const issuer = ISSUER ? new URL(ISSUER) : null;
  const bad = [];
  const used = new Map();
  let api = 0;
  let console_ = 0;
  let toIssuer = 0;
  for (const r of rec.requests) {
    const u = new URL(r.url);
    if (u.protocol === 'blob:' || u.protocol === 'data:') continue; // made by the page itself, nothing fetched
    if (issuer && u.origin === issuer.origin) {
      toIssuer++;
      continue;
    }
    if (u.origin !== server.origin) {
      bad.push(`${r.method} ${r.url}: neither coffer nor the issuer`);
      continue;
    }
    if (u.pathname.startsWith('/api/v1/')) {
      const op = ops.find((o) => o.method === r.method && o.re.test(u.pathname));
      if (!op) bad.push(`${r.method} ${u.pathname}: not an operation of the OpenAPI document`);
      else {
        api++;
        used.set(`${op.method} ${op.template}`, (used.get(`${op.method} ${op.template}`) || 0) + 1);
      }
      continue;
    }
    if (consolePath(u.pathname)) {
      const signing = /^\/console\/(login|callback|logout)$/.test(u.pathname);
      if (r.method === 'GET' || (r.method === 'POST' && u.pathname === '/console/logout')) {
        console_++;
        continue;
      }
      bad.push(`${r.method} ${u.pathname}: not a console file${signing ? ' (wrong method)' : ''}`);
      continue;
    }
    bad.push(`${r.method} ${u.pathname}: outside /api/v1 and /console`);
  }
  assert.deepEqual(bad, [], `requests outside the documented API:\n${bad.join('\n')}`);
  return { total: rec.requests.length, api, console: console_, issuer: toIssuer, operations: [...used.keys()].sort() };
}
