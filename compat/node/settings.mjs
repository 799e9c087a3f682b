// @gitbeaker/rest against gitlab-license-server: the application settings API
// (ApplicationSettings.show / .edit) and personal access token rotation
// (PersonalAccessTokens.create / .rotate / .show).
//
// Settings: GitLab's defaults shown; edit() of every key this server acts on, answered and read
// back; the 400 model error (gitbeaker's description and the exact body); a wrong type; no key;
// an unknown key dropped with 200; a non-admin 403. GitLab's defaults are set again at the end.
//
// Rotation runs only when the server has the route: an anonymous POST
// /personal_access_tokens/:id/rotate is asked first, and a 404 prints SKIPPED (GitLab: 401).
//
// Environment: GITLAB_URL, GITLAB_TOKEN (never printed, nor any token made here). See run.sh.
// One line per check; exit 1 if any failed or was skipped.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Gitlab, GitbeakerRequestError } from '@gitbeaker/rest';

const gitbeakerVersion = JSON.parse(
  readFileSync(new URL('./node_modules/@gitbeaker/rest/package.json', import.meta.url), 'utf8'),
).version;

const BASE_URL = process.env.GITLAB_URL.replace(/\/+$/, '');
const TOKEN = process.env.GITLAB_TOKEN;
const secrets = [TOKEN];

const DEFAULTS = {
  require_admin_approval_after_user_signup: true,
  deactivate_dormant_users: false,
  deactivate_dormant_users_period: 90,
  personal_access_token_prefix: 'glpat-',
  require_personal_access_token_expiry: true,
  max_personal_access_token_lifetime: null,
  throttle_authenticated_api_enabled: false,
  throttle_authenticated_api_requests_per_period: 7200,
  throttle_authenticated_api_period_in_seconds: 3600,
  throttle_unauthenticated_api_enabled: false,
  throttle_unauthenticated_api_requests_per_period: 3600,
  throttle_unauthenticated_api_period_in_seconds: 3600,
};
const CHANGES = {
  require_admin_approval_after_user_signup: false,
  deactivate_dormant_users: true,
  deactivate_dormant_users_period: 365,
  personal_access_token_prefix: 'node-',
  require_personal_access_token_expiry: false,
  max_personal_access_token_lifetime: 100,
  throttle_authenticated_api_enabled: true,
  throttle_authenticated_api_requests_per_period: 90000,
  throttle_authenticated_api_period_in_seconds: 30,
  throttle_unauthenticated_api_enabled: true,
  throttle_unauthenticated_api_requests_per_period: 40000,
  throttle_unauthenticated_api_period_in_seconds: 90,
};
const DORMANT_30 = '{"message":{"deactivate_dormant_users_period":["\'30\' days of inactivity must be greater than or equal to 90"]}}';
const ENTITY_KEYS = ['id', 'name', 'revoked', 'created_at', 'description', 'scopes', 'user_id', 'last_used_at', 'active', 'expires_at'];

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
const redact = (s) => secrets.reduce((text, secret) => (secret ? text.split(secret).join('[REDACTED]') : text), String(s));
const ours = (settings) => Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, k in settings ? settings[k] : '<missing>']));
const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);

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
    assert.equal(lastResponse.status, status, 'recorded response');
    assert.match(lastResponse.contentType, /^application\/json/, 'error content-type');
    if (typeof body === 'string') assert.equal(lastResponse.text, body, 'error body, byte for byte');
    else assert.deepEqual(JSON.parse(lastResponse.text), body, 'error body');
  }
  return err;
}

async function settingEvents() {
  const events = await api.AuditEvents.all({ perPage: 100, maxPages: 50 });
  return events.filter((e) => e.event_name === 'application_setting_updated').length;
}

// ---------------------------------------------------------------------------------------------
// Application settings

await check('ApplicationSettings.show(): GitLab\'s entity with GitLab\'s defaults', [], async () => {
  const r = await api.ApplicationSettings.show({ showExpanded: true });
  assert.equal(r.status, 200);
  assert.ok(Number.isInteger(r.data.id), `id ${r.data.id}`);
  assert.deepEqual(ours(r.data), DEFAULTS);
  state.defaults = true;
});

// With an Ultimate license, setting the lifetime revokes every token that never expires (the
// admin token of this run too): leave it out then.
if ((await api.License.show())?.plan === 'ultimate') {
  delete CHANGES.max_personal_access_token_lifetime;
  console.log('     an Ultimate license is current: max_personal_access_token_lifetime left unchanged');
}

await check('ApplicationSettings.edit(every key) -> 200, answered and read back, one audit event each', ['defaults'], async () => {
  const before = await settingEvents();
  const r = await api.ApplicationSettings.edit({ ...CHANGES, showExpanded: true });
  assert.equal(r.status, 200);
  const expected = { ...DEFAULTS, ...CHANGES };
  assert.deepEqual(ours(r.data), expected, 'edit() answer');
  assert.deepEqual(ours(await api.ApplicationSettings.show()), expected, 'show() after edit()');
  state.edited = true;
  const added = (await settingEvents()) - before;
  assert.equal(added, Object.keys(CHANGES).length, 'application_setting_updated events');
});

await check('edit() with the same values again: 200, no audit event', ['edited'], async () => {
  const before = await settingEvents();
  const r = await api.ApplicationSettings.edit({ ...CHANGES });
  assert.deepEqual(ours(r), { ...DEFAULTS, ...CHANGES });
  assert.equal(await settingEvents(), before, 'a PUT that changed nothing was audited');
});

await check('edit({deactivate_dormant_users_period: 30}) -> 400, GitLab\'s model error byte for byte, nothing changes', ['edited'], async () => {
  const err = await expectError(
    () => api.ApplicationSettings.edit({ deactivate_dormant_users: true, deactivate_dormant_users_period: 30 }),
    400,
    JSON.stringify({ deactivate_dormant_users_period: ["'30' days of inactivity must be greater than or equal to 90"] }),
    DORMANT_30,
  );
  assert.ok(err);
  const now = await api.ApplicationSettings.show();
  assert.equal(now.deactivate_dormant_users_period, CHANGES.deactivate_dormant_users_period, 'period changed');
});

await check('edit({throttle_unauthenticated_api_enabled: "maybe"}) -> 400 {"error":"... is invalid"}', [], async () => {
  await expectError(
    () => api.ApplicationSettings.edit({ throttle_unauthenticated_api_enabled: 'maybe' }),
    400, 'throttle_unauthenticated_api_enabled is invalid', { error: 'throttle_unauthenticated_api_enabled is invalid' },
  );
});

await check('edit() with no key -> 400 "... are missing, at least one parameter must be provided"', [], async () => {
  const err = await expectError(() => api.ApplicationSettings.edit(), 400);
  assert.match(err.cause.description, / are missing, at least one parameter must be provided$/);
  assert.deepEqual(Object.keys(JSON.parse(lastResponse.text)), ['error']);
});

await check('edit() with unknown keys only -> 200, unchanged, not shown', ['edited'], async () => {
  const before = await api.ApplicationSettings.show();
  const r = await api.ApplicationSettings.edit({ signup_enabled: false, gitpod_enabled: true });
  assert.deepEqual(r, before);
  assert.ok(!('signup_enabled' in r) && !('gitpod_enabled' in r), 'an unknown key is shown');
});

await check('invalid token / no token -> 401 "401 Unauthorized"', [], async () => {
  const bad = new Gitlab({ host: BASE_URL, token: `glpat-${'q'.repeat(20)}`, queryTimeout: 30000 });
  const anon = new Gitlab({ host: BASE_URL, queryTimeout: 30000 });
  await expectError(() => bad.ApplicationSettings.show(), 401, '401 Unauthorized', { message: '401 Unauthorized' });
  await expectError(() => anon.ApplicationSettings.edit({ deactivate_dormant_users: true }), 401, '401 Unauthorized', { message: '401 Unauthorized' });
});

await check('ApplicationSettings.edit(GitLab\'s defaults) puts every value back', [], async () => {
  const r = await api.ApplicationSettings.edit({ ...DEFAULTS });
  assert.deepEqual(ours(r), DEFAULTS);
  assert.deepEqual(ours(await api.ApplicationSettings.show()), DEFAULTS);
  state.restored = true;
});

// ---------------------------------------------------------------------------------------------
// Users and tokens for the non-admin and rotation checks

const people = [];
await check('setup: Users.create, PersonalAccessTokens.create(userId, name, scopes, {expiresAt})', [], async () => {
  for (const username of ['node-rotate-ann', 'node-rotate-ben']) {
    const u = await api.Users.create({
      username, name: username, email: `${username}@example.org`, password: 'a-long-enough-password', skipConfirmation: true,
    });
    people.push(u);
  }
  const make = async (user, name, scopes) => {
    const t = await api.PersonalAccessTokens.create(user.id, name, scopes, { expiresAt: day(300) });
    if (typeof t.token === 'string') secrets.push(t.token);
    assert.equal(t.name, name);
    assert.deepEqual(t.scopes, scopes);
    assert.equal(t.expires_at, day(300));
    assert.equal(t.user_id, user.id);
    return t;
  };
  state.a1 = await make(people[0], 'node-rotate', ['api']);
  state.a2 = await make(people[0], 'node-self', ['api']);
  state.b1 = await make(people[1], 'node-bens', ['api']);
});

await check('non-admin token: ApplicationSettings.show()/edit() -> 403 "403 Forbidden"', ['b1'], async () => {
  const na = new Gitlab({ host: BASE_URL, token: state.b1.token, queryTimeout: 30000 });
  await expectError(() => na.ApplicationSettings.show(), 403, '403 Forbidden', { message: '403 Forbidden' });
  await expectError(() => na.ApplicationSettings.edit({ deactivate_dormant_users: true }), 403, '403 Forbidden', { message: '403 Forbidden' });
});

// ---------------------------------------------------------------------------------------------
// Token rotation (switched on by the server having the route)

function checkRotated(got, old, expiresAt, where) {
  const keys = Object.keys(got);
  assert.deepEqual(keys.slice(0, ENTITY_KEYS.length), ENTITY_KEYS, `${where}: keys ${JSON.stringify(keys)}`);
  assert.equal(typeof got.token, 'string', `${where}: no token`);
  secrets.push(got.token);
  assert.ok(Number.isInteger(got.id) && got.id !== old.id, `${where}: id ${got.id} (old ${old.id})`);
  assert.equal(got.name, old.name, `${where}: name`);
  assert.equal(got.revoked, false, `${where}: revoked`);
  assert.equal(got.active, true, `${where}: active`);
  assert.deepEqual(got.scopes, old.scopes, `${where}: scopes`);
  assert.equal(got.user_id, old.user_id, `${where}: user_id`);
  assert.equal(got.expires_at, expiresAt, `${where}: expires_at`);
  assert.ok(got.token.startsWith('glpat-'), `${where}: the new token does not start with glpat-`);
  assert.notEqual(got.token, old.token, `${where}: the same secret again`);
}

const probe = await realFetch(`${BASE_URL}/api/v4/personal_access_tokens/1/rotate`, { method: 'POST' });
const probeBody = await probe.text();
if (probe.status === 404) {
  console.log('SKIPPED token rotation: the server answers an anonymous POST /api/v4/personal_access_tokens/:id/rotate with 404 (no such route yet; GitLab: 401)');
} else {
  console.log(`     POST /personal_access_tokens/:id/rotate without a token -> ${probe.status}: the rotation checks run`);

  await check('anonymous rotate -> 401 {"message":"401 Unauthorized"}', [], async () => {
    assert.equal(probe.status, 401);
    assert.deepEqual(JSON.parse(probeBody), { message: '401 Unauthorized' });
  });

  await check('PersonalAccessTokens.rotate(id, {expiresAt}) -> 200 entity + token; the old one revoked and refused', ['a1'], async () => {
    const r = await api.PersonalAccessTokens.rotate(state.a1.id, { expiresAt: day(20), showExpanded: true });
    assert.equal(r.status, 200, 'status');
    checkRotated(r.data, state.a1, day(20), 'rotate(id)');
    state.a1b = r.data;
    const old = await api.PersonalAccessTokens.show({ tokenId: state.a1.id });
    assert.equal(old.revoked, true, 'old token revoked');
    assert.equal(old.active, false, 'old token active');
    const oldClient = new Gitlab({ host: BASE_URL, token: state.a1.token, queryTimeout: 30000 });
    await expectError(() => oldClient.Users.showCurrentUser(), 401,
      'invalid_token', { error: 'invalid_token', error_description: 'Token was revoked. You have to re-authorize from the user.' });
    const newClient = new Gitlab({ host: BASE_URL, token: r.data.token, queryTimeout: 30000 });
    assert.equal((await newClient.Users.showCurrentUser()).username, 'node-rotate-ann');
  });

  await check('PersonalAccessTokens.rotate(id) without expiresAt: one week from today', ['a1b'], async () => {
    const r = await api.PersonalAccessTokens.rotate(state.a1b.id);
    checkRotated(r, state.a1b, day(7), 'rotate(id) without expiresAt');
  });

  await check('PersonalAccessTokens.rotate("self") with the token itself', ['a2'], async () => {
    const own = new Gitlab({ host: BASE_URL, token: state.a2.token, queryTimeout: 30000 });
    const r = await own.PersonalAccessTokens.rotate('self', { expiresAt: day(45) });
    checkRotated(r, state.a2, day(45), 'rotate(self)');
    await expectError(() => own.PersonalAccessTokens.show(), 401, 'invalid_token');
    const next = new Gitlab({ host: BASE_URL, token: r.token, queryTimeout: 30000 });
    assert.equal((await next.PersonalAccessTokens.show()).id, r.id, 'GET /personal_access_tokens/self with the new token');
  });

  await check('rotating a revoked token -> 400 "400 Bad request - Token already revoked"', ['a1b'], async () => {
    await expectError(() => api.PersonalAccessTokens.rotate(state.a1.id), 400,
      '400 Bad request - Token already revoked', { message: '400 Bad request - Token already revoked' });
  });

  await check('someone else\'s token, as a non-admin -> 401; a missing id, as an admin -> 404', ['b1', 'a1b'], async () => {
    const ben = new Gitlab({ host: BASE_URL, token: state.b1.token, queryTimeout: 30000 });
    await expectError(() => ben.PersonalAccessTokens.rotate(state.a2.id + 1000000), 401, '401 Unauthorized');
    const annToken = await api.PersonalAccessTokens.show({ tokenId: state.a1b.id });
    await expectError(() => ben.PersonalAccessTokens.rotate(annToken.id), 401, '401 Unauthorized', { message: '401 Unauthorized' });
    await expectError(() => api.PersonalAccessTokens.rotate(987654321), 404, '404 Not Found', { message: '404 Not Found' });
  });
}

await check('cleanup: Users.remove', [], async () => {
  for (const u of people) await api.Users.remove(u.id);
});

if (!state.restored) {
  try {
    await api.ApplicationSettings.edit({ ...DEFAULTS });
  } catch (e) {
    results.push('FAIL');
    console.log(`FAIL restore defaults: ${redact(e.message)}`);
  }
}

const count = (s) => results.filter((r) => r === s).length;
console.log(`@gitbeaker/rest ${gitbeakerVersion}`);
const skipped = count('SKIP');
console.log(`node-settings: ${count('PASS')} passed, ${count('FAIL')} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(count('FAIL') || skipped ? 1 : 0);
