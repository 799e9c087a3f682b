// @gitbeaker/rest against gitlab-license-server: every License method gitbeaker has
// (add, all, show, remove, recalculateBillableUsers), plus Users.showCurrentUser, Metadata.show,
// and, through gitbeaker's own requester, GET /license/:id, /version and /license/usage_export.csv
// (gitbeaker has no method for those).
//
// Environment: GITLAB_URL, GITLAB_TOKEN (never printed), GLS_LICENSE_FILE (ultimate, 100 seats,
// 2025-01-01..2035-01-01), GLS_LICENSE2_FILE (premium, 50 seats, 2025-02-01..2034-02-01),
// GLS_EXPIRED_LICENSE_FILE, optional GITLAB_NONADMIN_TOKEN. See run.sh.
//
// Every check runs; one line per check; exit 1 if any failed or was skipped.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Gitlab, GitbeakerRequestError } from '@gitbeaker/rest';

const gitbeakerVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@gitbeaker/rest/package.json', import.meta.url), 'utf8'),
).version;

const BASE_URL = process.env.GITLAB_URL.replace(/\/+$/, '');
const TOKEN = process.env.GITLAB_TOKEN;
const validKey = readFileSync(process.env.GLS_LICENSE_FILE, 'utf8');
const validKey2 = readFileSync(process.env.GLS_LICENSE2_FILE, 'utf8');
const expiredKey = readFileSync(process.env.GLS_EXPIRED_LICENSE_FILE, 'utf8');

const LICENSEE = { Name: 'Ada Admin', Email: 'ada@example.org', Company: 'Example Org' };
const EXPECT1 = { plan: 'ultimate', starts_at: '2025-01-01', expires_at: '2035-01-01', user_limit: 100, licensee: LICENSEE, expired: false };
const EXPECT2 = { plan: 'premium', starts_at: '2025-02-01', expires_at: '2034-02-01', user_limit: 50, licensee: LICENSEE, expired: false };
const FIELDS = ['id', 'plan', 'created_at', 'starts_at', 'expires_at', 'historical_max', 'maximum_user_count',
  'licensee', 'add_ons', 'expired', 'overage', 'user_limit', 'active_users'];
const LIST_FIELDS = FIELDS.filter((f) => f !== 'active_users');
const STABLE_FIELDS = ['id', 'plan', 'created_at', 'starts_at', 'expires_at', 'licensee', 'add_ons', 'expired', 'user_limit'];
const MSG_INVALID = 'The license key is invalid. Make sure it is exactly as you received it from the license issuer.';
const MSG_EXPIRED = 'This license has already expired.';

// Keep a copy of every response body gitbeaker sees (it consumes them), for exact-body checks.
let lastResponse = null;
const realFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const res = await realFetch(...args);
  lastResponse = { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.clone().text() };
  return res;
};

const api = new Gitlab({ host: BASE_URL, token: TOKEN, queryTimeout: 30000 });

const results = [];
const state = {};
const redact = (s) => (TOKEN ? String(s).split(TOKEN).join('[REDACTED]') : String(s));

async function check(name, needs, fn) {
  const missing = needs.filter((n) => !(n in state));
  if (missing.length) {
    results.push('SKIP');
    console.log(`SKIP ${name} (needs ${missing.join(', ')})`);
    return;
  }
  try {
    await fn();
    results.push('PASS');
    console.log(`PASS ${name}`);
  } catch (e) {
    results.push('FAIL');
    let detail = e instanceof assert.AssertionError ? e.message : `${e.name}: ${e.message}`;
    const res = e?.cause?.response;
    if (res) detail += ` | status=${res.status}`;
    console.log(`FAIL ${name}: ${redact(detail)}`);
  }
}

function checkLicense(lic, { withActiveUsers, expect = {}, where }) {
  assert.equal(typeof lic, 'object', `${where}: not an object`);
  assert.deepEqual(Object.keys(lic), withActiveUsers ? FIELDS : LIST_FIELDS, `${where}: keys ${JSON.stringify(Object.keys(lic))} differ from GitLab's order`);
  assert.ok(Number.isInteger(lic.id) && lic.id > 0, `${where}: id ${lic.id}`);
  assert.equal(typeof lic.plan, 'string', `${where}: plan ${JSON.stringify(lic.plan)}`);
  assert.match(String(lic.created_at), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, `${where}: created_at ${JSON.stringify(lic.created_at)} is not like 2025-03-01T09:15:02.481Z`);
  assert.match(String(lic.starts_at), /^\d{4}-\d{2}-\d{2}$/, `${where}: starts_at ${JSON.stringify(lic.starts_at)}`);
  assert.match(String(lic.expires_at), /^\d{4}-\d{2}-\d{2}$/, `${where}: expires_at ${JSON.stringify(lic.expires_at)}`);
  for (const k of ['historical_max', 'maximum_user_count', 'overage', 'user_limit']) {
    assert.ok(Number.isInteger(lic[k]) && lic[k] >= 0, `${where}: ${k} = ${JSON.stringify(lic[k])}`);
  }
  // active_users is GitLab's daily_billable_users_count: 0 is fine (an Ultimate root without memberships is not billable).
  if (withActiveUsers) assert.ok(Number.isInteger(lic.active_users) && lic.active_users >= 0, `${where}: active_users ${lic.active_users}`);
  assert.equal(typeof lic.expired, 'boolean', `${where}: expired ${JSON.stringify(lic.expired)}`);
  assert.ok(lic.add_ons && typeof lic.add_ons === 'object' && !Array.isArray(lic.add_ons), `${where}: add_ons ${JSON.stringify(lic.add_ons)}`);
  for (const [k, v] of Object.entries(expect)) {
    assert.deepEqual(lic[k], v, `${where}: ${k} = ${JSON.stringify(lic[k])}, expected ${JSON.stringify(v)}`);
    if (v && typeof v === 'object') assert.deepEqual(Object.keys(lic[k]), Object.keys(v), `${where}: ${k} key order ${JSON.stringify(Object.keys(lic[k]))}`);
  }
}

async function expectError(promiseFn, status, description, body) {
  let err;
  try {
    await promiseFn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected HTTP ${status}, but the call succeeded`);
  assert.ok(err instanceof GitbeakerRequestError, `expected GitbeakerRequestError, got ${err?.name}: ${err?.message}`);
  const res = err.cause.response;
  assert.equal(res.status, status, `status ${res.status} (description ${JSON.stringify(err.cause.description)})`);
  if (description !== undefined) assert.equal(err.cause.description, description, 'error description');
  if (body !== undefined) {
    // gitbeaker has consumed the body; the fetch wrapper below kept a copy of the exact bytes.
    assert.equal(lastResponse.status, status, 'recorded response');
    assert.match(lastResponse.contentType, /^application\/json/, 'error content-type');
    assert.deepEqual(JSON.parse(lastResponse.text), body, 'error body');
  }
  return err;
}

await check('Users.showCurrentUser() is an admin', [], async () => {
  const u = await api.Users.showCurrentUser();
  assert.ok(Number.isInteger(u.id), `id ${u.id}`);
  assert.equal(typeof u.username, 'string');
  assert.equal(u.is_admin, true, 'is_admin');
});

await check('Metadata.show() and GET /version', [], async () => {
  const md = await api.Metadata.show();
  assert.equal(typeof md.version, 'string');
  assert.equal(typeof md.revision, 'string');
  assert.equal(typeof md.kas?.enabled, 'boolean', 'kas.enabled');
  assert.equal(typeof md.enterprise, 'boolean', 'enterprise');
  const v = await api.Metadata.requester.get('version');
  assert.equal(v.status, 200);
  assert.equal(v.body.version, md.version, '/version and /metadata agree');
  assert.equal(typeof v.body.revision, 'string');
});

await check('reset: License.all() then License.remove() each -> 204', [], async () => {
  const all = await api.License.all();
  assert.ok(Array.isArray(all), 'License.all() is an array');
  for (const lic of all) {
    const r = await api.License.remove(lic.id, { showExpanded: true });
    assert.equal(r.status, 204, `remove(${lic.id}) status`);
    assert.equal(r.data, null, 'remove() body');
  }
  state.reset = true;
});

await check('License.show() without a license: 200 JSON null (gitbeaker gives {})', ['reset'], async () => {
  const r = await api.License.show({ showExpanded: true });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /^application\/json/, 'content-type');
  assert.deepEqual(r.data, {}, 'gitbeaker maps null to {}');
  const raw = await fetch(`${BASE_URL}/api/v4/license`, { headers: { 'PRIVATE-TOKEN': TOKEN } });
  assert.equal((await raw.text()).trim(), 'null', 'raw body');
  assert.deepEqual(await api.License.all(), []);
});

await check('License.add(key) -> 201 license object (key sent as a query parameter)', [], async () => {
  const r = await api.License.add(validKey, { showExpanded: true });
  if (Number.isInteger(r.data?.id)) state.lic1 = r.data; // later checks can run even if a field is off
  assert.equal(r.status, 201, 'status');
  checkLicense(r.data, { withActiveUsers: true, expect: EXPECT1, where: 'add' });
});

// The usage figures (active_users, maximum_user_count, overage, historical_max) are
// instance-wide and move when the recount GitLab queues after an upload has run, so reads
// after an upload are compared on the license's own fields.
const own = (l) => Object.fromEntries(STABLE_FIELDS.map((k) => [k, l?.[k]]));

await check('License.show() returns it', ['lic1'], async () => {
  assert.deepEqual(own(await api.License.show()), own(state.lic1));
});

await check('License.add(second key) becomes current; License.all() lists both', ['lic1'], async () => {
  const lic2 = await api.License.add(validKey2);
  if (Number.isInteger(lic2?.id)) state.lic2 = lic2;
  checkLicense(lic2, { withActiveUsers: true, expect: EXPECT2, where: 'add #2' });
  assert.ok(lic2.id > state.lic1.id, 'ids grow');
  assert.deepEqual(own(await api.License.show()), own(lic2), 'show() is the newest license');
  const all = await api.License.all({ showExpanded: true });
  assert.equal(all.status ?? 200, 200);
  const list = all.data;
  assert.equal(list.length, 2, `License.all() length ${list.length}`);
  assert.deepEqual(list.map((l) => l.id), [lic2.id, state.lic1.id], 'newest first (LicensesFinder: License.recent)');
  for (const lic of list) checkLicense(lic, { withActiveUsers: false, where: `all() id ${lic.id}` });
  const byId = Object.fromEntries(list.map((l) => [l.id, l]));
  assert.deepEqual(own(byId[state.lic1.id]), own(state.lic1), 'all() entry #1');
  assert.deepEqual(own(byId[lic2.id]), own(lic2), 'all() entry #2');
});

await check('GET /license/:id (requester) returns the object; missing id -> 404 "404 Not Found"', ['lic1'], async () => {
  const r = await api.License.requester.get(`license/${state.lic1.id}`);
  assert.equal(r.status, 200);
  checkLicense(r.body, { withActiveUsers: true, expect: EXPECT1, where: 'GET /license/:id' });
  await expectError(() => api.License.requester.get('license/987654321'), 404, '404 Not Found', { message: '404 Not Found' });
});

await check('License.add(expired key) -> 400 "This license has already expired."', ['lic2'], async () => {
  await expectError(() => api.License.add(expiredKey), 400, MSG_EXPIRED, { message: MSG_EXPIRED });
  assert.equal((await api.License.show()).id, state.lic2.id, 'current license unchanged');
});

await check('License.add(garbage) -> 400 invalid-key message', [], async () => {
  await expectError(() => api.License.add('not a license key at all'), 400, MSG_INVALID, { message: MSG_INVALID });
});

await check('POST /license without `license` -> 400 {"error":"license is missing"}', [], async () => {
  await expectError(() => api.License.requester.post('license', {}), 400, 'license is missing', { error: 'license is missing' });
});

await check('License.recalculateBillableUsers(id) -> 202 {success:true}', ['lic1'], async () => {
  const r = await api.License.recalculateBillableUsers(state.lic1.id, { showExpanded: true });
  assert.equal(r.status, 202, 'status');
  assert.deepEqual(r.data, { success: true });
});

await check('GET /license/usage_export.csv (requester) -> 200 text/csv', ['lic1'], async () => {
  const r = await api.License.requester.get('license/usage_export.csv');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /^text\/csv/, 'content-type');
  assert.equal(typeof r.body, 'string', 'gitbeaker reads text/* as a string');
  assert.ok(r.body.trim().length > 0, 'non-empty CSV');
});

await check('invalid token / no token -> 401 "401 Unauthorized" for every License method', [], async () => {
  const bad = new Gitlab({ host: BASE_URL, token: `glpat-${'y'.repeat(20)}`, queryTimeout: 30000 });
  const anon = new Gitlab({ host: BASE_URL, queryTimeout: 30000 });
  const body = { message: '401 Unauthorized' };
  for (const [what, fn] of [
    ['show', () => bad.License.show()],
    ['all', () => bad.License.all()],
    ['add', () => bad.License.add(validKey)],
    ['remove', () => bad.License.remove(1)],
    ['recalculateBillableUsers', () => bad.License.recalculateBillableUsers(1)],
    ['Users.showCurrentUser', () => bad.Users.showCurrentUser()],
    ['anonymous show', () => anon.License.show()],
  ]) {
    try {
      await expectError(fn, 401, '401 Unauthorized', body);
    } catch (e) {
      e.message = `${what}: ${e.message}`;
      throw e;
    }
  }
});

await check('oauthToken (Authorization: Bearer) works', ['lic2'], async () => {
  const bearer = new Gitlab({ host: BASE_URL, oauthToken: TOKEN, queryTimeout: 30000 });
  assert.equal((await bearer.License.show()).id, state.lic2.id);
});

if (process.env.GITLAB_NONADMIN_TOKEN) {
  await check('non-admin token -> 403 "403 Forbidden"', [], async () => {
    const na = new Gitlab({ host: BASE_URL, token: process.env.GITLAB_NONADMIN_TOKEN, queryTimeout: 30000 });
    await expectError(() => na.License.show(), 403, '403 Forbidden', { message: '403 Forbidden' });
    await expectError(() => na.License.all(), 403, '403 Forbidden');
    await expectError(() => na.License.add(validKey), 403, '403 Forbidden');
  });
}

await check('License.remove(id) -> 204; missing id -> 404 "404 Not found"; show() falls back', ['lic1', 'lic2'], async () => {
  const r = await api.License.remove(state.lic2.id, { showExpanded: true });
  assert.equal(r.status, 204);
  assert.equal(r.data, null);
  assert.equal((await api.License.show()).id, state.lic1.id, 'after removing the newest, show() is the older one');
  await expectError(() => api.License.remove(state.lic2.id), 404, '404 Not found', { message: '404 Not found' });
  await expectError(() => api.License.recalculateBillableUsers(state.lic2.id), 404, '404 Not Found', { message: '404 Not Found' });
  await api.License.remove(state.lic1.id);
  assert.deepEqual(await api.License.show(), {}, 'no license left');
  assert.deepEqual(await api.License.all(), []);
});

const count = (s) => results.filter((r) => r === s).length;
console.log(`@gitbeaker/rest ${gitbeakerVersion}`);
const skipped = count('SKIP');
console.log(`node: ${count('PASS')} passed, ${count('FAIL')} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(count('FAIL') || skipped ? 1 : 0);
