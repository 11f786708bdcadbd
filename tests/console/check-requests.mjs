// Hold every request the browser tests recorded (artifacts/requests/*.json, written by
// harness.mjs as each test file ends) to the rule of harness.mjs's checkRequests: /api/v1
// requests are operations of the served OpenAPI document, the rest are the console's own
// files, its sign-in and sign-out, or the issuer. Run by tests/python/test_console_e2e.py
// after the tests; prints a summary, exits 1 listing every request that broke the rule.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { checkRequests, Recorder, REQUEST_LOGS } from './harness.mjs';

const all = new Recorder();
const files = readdirSync(REQUEST_LOGS).filter((f) => f.endsWith('.json'));
for (const f of files) all.requests.push(...JSON.parse(readFileSync(path.join(REQUEST_LOGS, f), 'utf8')));
if (!all.requests.length) {
  console.error('no requests were recorded: did the browser tests run?');
  process.exit(1);
}
try {
  const summary = await checkRequests(all);
  console.log(JSON.stringify({ files, ...summary }, null, 2));
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
