// The foundation journey in a real browser: bootstrap, identity providers, a collective, group
// mappings, two people with different roles, the audit log, and reading without JavaScript.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { IDP_A, hydrated, launch, registerClient, shot, signIn, signOut, startPotluck } from './harness.mjs';

let potluck;
let browser;

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
});

test('an admin sets up a collective and each person sees what their role allows', async () => {
  const { base } = potluck;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  // Every page runs under a Content-Security-Policy with its own nonce: nothing of Potluck's
  // may be refused by it (a refused script would also leave the page unhydrated). And every
  // form check the pages declare must be one the browser can run: an invalid `pattern` is
  // silently not checked at all.
  const violations = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Pattern attribute value/i.test(m.text())) violations.push(m.text());
  });

  // The one-time bootstrap link printed by `potluck serve`.
  await page.goto(potluck.bootstrapLink);
  await page.locator('#bootstrap-confirm').click();
  await page.waitForURL(`${base}/admin/providers`);
  await hydrated(page);

  const csp = (await page.request.get(`${base}/`)).headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self' 'nonce-[^']+'/, 'pages carry a CSP with a nonce');

  // A federation admin adds Collective A's identity provider; its discovery is checked.
  const client = await registerClient(IDP_A(), base);
  await page.locator('#redirect-uri').waitFor();
  assert.equal(await page.locator('#redirect-uri').textContent(), `${base}/auth/callback`);
  const form = page.locator('#add-provider');
  await form.locator('input[name=display_name]').fill('Collective A SSO');
  await form.locator('input[name=issuer_url]').fill(IDP_A());
  await form.locator('input[name=client_id]').fill(client.client_id);
  await form.locator('input[name=client_secret]').fill(client.client_secret);
  await form.locator('button[type=submit]').click();
  await page.getByText('Provider added.').waitFor();
  await page.locator('#providers tbody tr', { hasText: 'Collective A SSO' }).waitFor();
  assert.equal(await page.content().then((html) => html.includes(client.client_secret)), false, 'the secret is not shown');

  // A collective, served by that provider.
  await page.goto(`${base}/collectives`);
  await hydrated(page);
  const create = page.locator('#create-collective');
  await create.locator('input[name=slug]').fill('collective-a');
  await create.locator('input[name=name]').fill('Collective A');
  await create.locator('textarea[name=description]').fill('Bakers and builders');
  await create.locator('button[type=submit]').click();
  await page.locator('#collectives a', { hasText: 'Collective A' }).waitFor();

  await page.goto(`${base}/admin/providers`);
  await hydrated(page);
  const row = page.locator('#providers tbody tr', { hasText: 'Collective A SSO' });
  await row.locator('input[name=collectives]').fill('collective-a');
  await row.locator('button', { hasText: 'Save' }).click();
  await page.getByText('Collectives saved.').waitFor();

  // Map the provider's groups to roles.
  await page.goto(`${base}/c/collective-a`);
  await hydrated(page);
  for (const [group, role] of [['collective-a-admins', 'admin'], ['collective-a-members', 'viewer']]) {
    const mapping = page.locator('#add-mapping');
    await mapping.locator('input[name=value]').fill(group);
    await mapping.locator('select[name=role]').selectOption(role);
    await mapping.locator('button[type=submit]').click();
    await page.locator('#group-mappings tbody tr', { hasText: group }).waitFor();
  }
  await shot(page, 'collective-admin-view');
  await context.close();

  // Alice signs in through the provider's real login page: her groups make her an admin.
  const alice = await (await browser.newContext()).newPage();
  await signIn(alice, base, 'Collective A SSO', 'alice', 'alice-pw');
  await hydrated(alice);
  assert.equal((await alice.locator('#whoami').textContent()).trim(), 'Alice Arden');
  await alice.goto(`${base}/c/collective-a`);
  await hydrated(alice);
  assert.equal(await alice.locator('#my-role').textContent(), 'admin');
  await alice.locator('#create-invitation').waitFor();
  // She reads her collective's audit log, filtered to the group mappings.
  await alice.goto(`${base}/audit?collective=collective-a`);
  await hydrated(alice);
  const actions = await alice.locator('#audit-events tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.action));
  assert.ok(actions.includes('group_mapping.add'), `audit shows the mappings: ${actions}`);
  assert.ok(actions.includes('collective.create'));
  assert.ok(!actions.includes('identity_provider.add'), 'federation-wide events are not a collective admin’s');
  await alice.locator('#audit-filters input[name=action]').fill('group_mapping');
  await alice.locator('#audit-filters button[type=submit]').click();
  await alice.waitForURL(/action=group_mapping/);
  const filtered = await alice.locator('#audit-events tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.action));
  assert.deepEqual([...new Set(filtered)], ['group_mapping.add']);
  await shot(alice, 'audit-log');
  await signOut(alice);

  // Bob is only a member: he sees the collective as a viewer, without admin forms or audit log.
  const bobContext = await browser.newContext();
  const bob = await bobContext.newPage();
  await signIn(bob, base, 'Collective A SSO', 'bob', 'bob-pw');
  await hydrated(bob);
  await bob.goto(`${base}/c/collective-a`);
  await hydrated(bob);
  assert.equal(await bob.locator('#my-role').textContent(), 'viewer');
  assert.equal(await bob.locator('#create-invitation').count(), 0);
  assert.equal(await bob.locator('#add-mapping').count(), 0);
  assert.equal(await bob.locator('#members tbody tr').count(), 2, 'Alice and Bob');
  await bob.goto(`${base}/audit`);
  await bob.getByRole('alert').waitFor();
  assert.match(await bob.getByRole('alert').textContent(), /collective admins/);
  const cookies = await bobContext.cookies(base);

  // Without JavaScript the same page is readable: it is rendered by the server.
  const noJs = await browser.newContext({ javaScriptEnabled: false });
  await noJs.addCookies(cookies.filter((c) => c.name === 'potluck_session'));
  const plain = await noJs.newPage();
  await plain.goto(`${base}/c/collective-a`);
  assert.equal(await plain.locator('#collective-name').textContent(), 'Collective A');
  assert.equal(await plain.locator('#my-role').textContent(), 'viewer');
  const names = await plain.locator('#members tbody tr td:first-child').allTextContents();
  assert.deepEqual(names.sort(), ['Alice Arden', 'Bob Brandt']);
  assert.equal(await plain.locator('#app').getAttribute('data-hydrated'), 'false', 'no wasm ran');
  await shot(plain, 'collective-without-javascript');
  await noJs.close();
  await bobContext.close();
  assert.deepEqual(violations, [], 'no Content-Security-Policy violations, no pattern the browser rejects');
});

test('the start page runs on the shell alone, and each area brings its code with its first page', async () => {
  const { base } = potluck;
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await signIn(page, base, 'Collective A SSO', 'alice', 'alice-pw');
  // Which areas' modules the browser fetched (split_<area>.<hash>.wasm), in order.
  const areas = [];
  page.on('request', (r) => {
    const m = /\/pkg\/split_([a-z]+)\./.exec(r.url());
    if (m) areas.push(m[1]);
  });

  await page.goto(`${base}/`);
  await hydrated(page);
  assert.deepEqual(areas, [], 'the start page needs no area');

  // Following the navigation's links stays in the page: the router fetches the area's module,
  // then shows the page, which works as if it had been loaded.
  await page.evaluate(() => { window.sameDocument = true; });
  await page.locator('header nav a', { hasText: 'Collectives' }).click();
  await page.waitForURL(`${base}/collectives`);
  await page.locator('#collectives a', { hasText: 'Collective A' }).click();
  await page.waitForURL(`${base}/c/collective-a`);
  assert.equal(await page.locator('#my-role').textContent(), 'admin');
  await page.locator('header nav a', { hasText: 'Recipes' }).click();
  await page.waitForURL(`${base}/recipes`);
  await page.locator('h1', { hasText: 'Recipes' }).waitFor();
  assert.equal(await page.evaluate(() => window.sameDocument), true, 'no page was loaded anew');
  assert.deepEqual(areas, ['governance', 'catalogue'], 'each area once, when first opened');

  // Arriving on an area's page, the response names its modules for the browser to fetch at once.
  const arriving = await page.request.get(`${base}/c/collective-a/apps`);
  const links = arriving.headersArray().filter((h) => h.name.toLowerCase() === 'link').map((h) => h.value);
  assert.ok(links.some((l) => /^<\/pkg\/split_apps\.[0-9a-f]{16}\.wasm>; rel=preload/.test(l)), links.join('\n'));
  assert.ok(!links.some((l) => /split_(governance|catalogue|care)\./.test(l)), 'and no other area');
  await page.goto(`${base}/c/collective-a/apps`);
  await hydrated(page);
  assert.equal(areas.at(-1), 'apps');

  // A tab opened before a new build asks for an area's module the server no longer has: the
  // page is loaded anew, from the current build, instead of dying.
  await page.goto(`${base}/`);
  await hydrated(page);
  await page.evaluate(() => { window.sameDocument = true; });
  let loadedAnew = false;
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) loadedAnew = true;
  });
  let refused = 0;
  await page.route(/\/pkg\/split_care\./, (route) => {
    if (loadedAnew) return route.continue();
    refused += 1;
    return route.fulfill({ status: 404, body: 'not in this build' });
  });
  const anew = page.waitForRequest((r) => r.isNavigationRequest() && r.url() === `${base}/fleet`);
  await page.locator('header nav a', { hasText: 'Fleet' }).click();
  await anew;
  await page.waitForLoadState();
  await hydrated(page);
  assert.ok(refused >= 1, 'the old module was asked for');
  assert.equal(await page.evaluate(() => window.sameDocument), undefined, 'the page was loaded anew');
  await page.locator('h1', { hasText: 'Fleet' }).waitFor();
  await context.close();
});

