// Release review in the browser: a maintainer of collective A proposes a release; maintainers of
// collectives A and B (signed in through different identity providers) approve it; Potluck tags
// it and the annotated tag appears in the recipe's remote.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { IDP_A, IDP_B, hydrated, launch, registerClient, requiredEnv, shot, signIn, startPotluck } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = join(root, 'target/debug/fixture-recipes');
let potluck;
let browser;
let dir;

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
  dir = mkdtempSync(join(tmpdir(), 'potluck-e2e-releases-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function remoteTags(remote) {
  return execFileSync(fixtures, ['tags', remote], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split('\t'));
}

async function fill(page, selector, fields) {
  const form = page.locator(selector);
  for (const [name, value] of Object.entries(fields)) {
    const input = form.locator(`[name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
  await form.locator('button[type=submit]').click();
}

async function addProvider(admin, base, issuer, name, collectives) {
  const client = await registerClient(issuer, base);
  await admin.goto(`${base}/admin/providers`);
  await hydrated(admin);
  await fill(admin, '#add-provider', { display_name: name, issuer_url: issuer, client_id: client.client_id, client_secret: client.client_secret, collectives });
  await admin.getByText('Provider added.').waitFor();
}

async function mapGroup(admin, base, slug, provider, group, role) {
  await admin.goto(`${base}/c/${slug}`);
  await hydrated(admin);
  const form = admin.locator('#add-mapping');
  await form.locator('select[name=provider_id]').selectOption({ label: provider });
  await fill(admin, '#add-mapping', { value: group, role });
  await admin.locator('#group-mappings tbody tr', { hasText: group }).waitFor();
}

test('maintainers of two collectives approve a release and the tag appears in the remote', async () => {
  const { base } = potluck;
  const remote = execFileSync(fixtures, [dir, 'hello'], { encoding: 'utf8' }).trim().split('\t')[2];
  const admin = await (await browser.newContext()).newPage();
  await admin.goto(potluck.bootstrapLink);
  await admin.locator('#bootstrap-confirm').click();
  await admin.waitForURL(`${base}/admin/providers`);
  await hydrated(admin);
  await admin.goto(`${base}/collectives`);
  await hydrated(admin);
  for (const [slug, name] of [['collective-a', 'Collective A'], ['collective-b', 'Collective B']]) {
    await fill(admin, '#create-collective', { slug, name });
    await admin.locator('#collectives a', { hasText: name }).waitFor();
  }
  await addProvider(admin, base, IDP_A(), 'Collective A SSO', 'collective-a');
  await addProvider(admin, base, IDP_B(), 'Collective B SSO', 'collective-b');
  await mapGroup(admin, base, 'collective-a', 'Collective A SSO', 'collective-a-maintainers', 'maintainer');
  await mapGroup(admin, base, 'collective-a', 'Collective A SSO', 'collective-a-admins', 'admin');
  await mapGroup(admin, base, 'collective-b', 'Collective B SSO', 'collective-b-admins', 'admin');

  // Dave (a maintainer of collective A) registers the recipe for A and B and proposes a release.
  // He is no federation admin: he gives a remote URL (here over the harness's sshd, with its key
  // as the recipe's credential), not a path on the Potluck machine.
  const dave = await (await browser.newContext()).newPage();
  await signIn(dave, base, 'Collective A SSO', 'dave', 'dave-pw');
  await dave.goto(`${base}/recipes`);
  await hydrated(dave);
  await dave.locator('details summary', { hasText: 'Register a recipe' }).click();
  await fill(dave, '#register-recipe', {
    repository: `ssh://${requiredEnv('POTLUCK_TEST_SSH')}${remote}`,
    collective: 'collective-a',
    credential_kind: 'ssh',
    credential_username: 'root',
    credential_secret: readFileSync(requiredEnv('POTLUCK_TEST_SSH_KEY'), 'utf8'),
  });
  await dave.getByText('Recipe registered.').waitFor();
  await dave.goto(`${base}/recipes/hello`);
  await hydrated(dave);
  await dave.locator('details summary', { hasText: 'Change maintainers' }).click();
  await fill(dave, '#set-maintainers', { collectives: 'collective-a collective-b' });
  await dave.getByText('Maintainers saved.').waitFor();
  await dave.locator('#release-proposals').click();
  await dave.waitForURL(`${base}/recipes/hello/releases`);
  await hydrated(dave);
  await fill(dave, '#open-release', { bump: 'patch', notes: 'Documentation only: nothing to do before upgrading.' });
  await dave.waitForURL(/\/releases\/\d+$/);
  const proposalUrl = dave.url();
  assert.equal(await dave.locator('#release-version').textContent(), '1.0.1+2.0');
  assert.match(await dave.locator('#release-diff').textContent(), /Suggested bump\s*patch/);
  await shot(dave, 'release-proposal');

  // Alice (collective A) and Bob (collective B, another identity provider) approve.
  for (const [provider, user, password, expected] of [
    ['Collective A SSO', 'alice', 'alice-pw', 'open'],
    ['Collective B SSO', 'bob', 'bob-b-pw', 'published'],
  ]) {
    const page = await (await browser.newContext()).newPage();
    await signIn(page, base, provider, user, password);
    await page.goto(proposalUrl);
    await hydrated(page);
    await fill(page, '#review-form', { verdict: 'approve', comment: `fine by ${user}` });
    await page.locator('#release-state', { hasText: expected }).waitFor({ timeout: 30_000 });
    if (expected === 'published') await shot(page, 'release-published');
    await page.context().close();
  }
  const tags = remoteTags(remote);
  const published = tags.find(([name]) => name === '1.0.1+2.0');
  assert.ok(published, `the tag is in the remote: ${tags.map((t) => t[0])}`);
  assert.equal(published[1], 'annotated');
});
