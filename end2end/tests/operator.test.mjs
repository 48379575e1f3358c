// An operator's journey in a real browser against the real swarm: a recipe and a server are
// registered, an app is created from the recipe, its secrets generated, then it is deployed,
// watched converging live, upgraded, rolled back and undeployed. A viewer of the same
// collective sees the app but no controls; a member of another collective sees nothing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { IDP_A, hydrated, launch, registerClient, runAction, shot, signIn, startPotluck, submit } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let potluck;
let browser;
let recipes;

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
  recipes = mkdtempSync(join(tmpdir(), 'potluck-e2e-recipes-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  if (recipes) rmSync(recipes, { recursive: true, force: true });
});

/** Publishes a fixture recipe as a git repository with its tags; returns its bare remote. */
function publishRecipe(name) {
  const out = execFileSync(join(root, 'target/debug/fixture-recipes'), [recipes, name], { encoding: 'utf8' });
  return out.trim().split('\t')[2];
}

test('an operator deploys, upgrades, rolls back and undeploys an app from the browser', async () => {
  const { base } = potluck;
  const hello = publishRecipe('hello');
  const admin = await (await browser.newContext()).newPage();
  admin.on('pageerror', (e) => console.error('page error:', e));
  await admin.goto(potluck.bootstrapLink);
  await admin.locator('#bootstrap-confirm').click();
  await admin.waitForURL(`${base}/admin/providers`);
  await hydrated(admin);

  // Identity provider, two collectives, roles by group.
  const client = await registerClient(IDP_A(), base);
  await submit(admin, '#add-provider', {
    display_name: 'Collective A SSO', issuer_url: IDP_A(), client_id: client.client_id, client_secret: client.client_secret,
  });
  await admin.getByText('Provider added.').waitFor();
  await admin.goto(`${base}/collectives`);
  await hydrated(admin);
  for (const [slug, name] of [['collective-a', 'Collective A'], ['collective-b', 'Collective B']]) {
    await submit(admin, '#create-collective', { slug, name });
    await admin.locator('#collectives a', { hasText: name }).waitFor();
  }
  await admin.goto(`${base}/admin/providers`);
  await hydrated(admin);
  const row = admin.locator('#providers tbody tr', { hasText: 'Collective A SSO' });
  await row.locator('input[name=collectives]').fill('collective-a collective-b');
  await row.locator('button', { hasText: 'Save' }).click();
  await admin.getByText('Collectives saved.').waitFor();
  await admin.goto(`${base}/c/collective-a`);
  await hydrated(admin);
  for (const [group, role] of [['collective-a-operators', 'admin'], ['collective-a-members', 'viewer']]) {
    await submit(admin, '#add-mapping', { value: group, role });
    await admin.locator('#group-mappings tbody tr', { hasText: group }).waitFor();
  }
  // Erin joins collective-b (only) through an invitation.
  await admin.goto(`${base}/c/collective-b`);
  await hydrated(admin);
  await submit(admin, '#create-invitation', { role: 'admin' });
  const invitation = await admin.locator('#invitation-link').textContent();
  const erinContext = await browser.newContext();
  const erin = await erinContext.newPage();
  await signIn(erin, base, 'Collective A SSO', 'erin', 'erin-pw');
  await erin.goto(invitation);
  await hydrated(erin);
  await erin.locator('#accept-invitation button').click();
  await erin.getByRole('status').waitFor();

  // The admin registers the recipe.
  await admin.goto(`${base}/recipes`);
  await hydrated(admin);
  await admin.locator('details summary', { hasText: 'Register a recipe' }).click();
  await submit(admin, '#register-recipe', { repository: hello, collective: 'collective-a' });
  await admin.getByText('Recipe registered.').waitFor();
  await admin.goto(`${base}/recipes/hello`);
  const versions = await admin.locator('#versions tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.version));
  assert.deepEqual(versions, ['1.0.0+2.0', '0.2.0+1.1', '0.1.0+1.0']);
  await shot(admin, 'recipe');

  // Carol operates collective-a: she registers its swarm and creates the app.
  const carol = await (await browser.newContext()).newPage();
  carol.on('pageerror', (e) => console.error('page error:', e));
  await signIn(carol, base, 'Collective A SSO', 'carol', 'carol-pw');
  await carol.goto(`${base}/c/collective-a/servers`);
  await hydrated(carol);
  await submit(carol, '#add-server', { name: 'local', kind: 'unix', address: '/var/run/docker.sock' });
  await carol.getByText('Server added.').waitFor();
  await carol.locator('#servers tbody tr[data-server=local]', { hasText: 'manager' }).waitFor();
  const domain = `hello-${Date.now().toString(36)}.example.org`;
  await carol.goto(`${base}/c/collective-a/apps`);
  await hydrated(carol);
  await submit(carol, '#create-app', { recipe: 'hello', server: 'local', domain, version: '0.1.0+1.0' });
  await carol.getByRole('link', { name: domain }).first().click();
  const appUrl = `${base}/c/collective-a/apps/${domain}`;
  await carol.waitForURL(appUrl);
  await hydrated(carol);
  // The env shows the sample's comments; the optional worker is a checkbox.
  await carol.locator('#env-entries tr', { hasText: 'What the page says' }).waitFor();
  assert.equal(await carol.locator('#overlays-form input[type=checkbox]').isChecked(), false);

  // Secrets: generated and shown once.
  await carol.locator('#generate-secrets button').click();
  await carol.locator('#generated .secret-value').waitFor();
  const secret = await carol.locator('#generated .secret-value').textContent();
  assert.equal(secret.length, 32);
  await carol.reload();
  await hydrated(carol);
  assert.equal(await carol.content().then((html) => html.includes(secret)), false, 'a generated value is never shown again');
  await carol.locator('#secrets tr[data-secret=db_password] .exists-yes').waitFor();

  // Deploy, watched live.
  const deploy = await runAction(carol, appUrl, 'deploy');
  assert.match(deploy.preview, /create service .*_app/);
  assert.ok(deploy.events.some((e) => /running/.test(e)), deploy.events.join('\n'));
  await shot(carol, 'deploy-job');
  await carol.goto(appUrl);
  assert.equal(await carol.locator('#app-status').textContent(), 'deployed');
  assert.equal(await carol.locator('#app-version').textContent(), '0.1.0+1.0');
  assert.equal(await carol.locator('#services tr[data-service=app] .replicas').textContent().then((t) => t.trim().slice(0, 3)), '1/1');
  await shot(carol, 'app-deployed');

  // Upgrade to 0.2.0 (the notes of what is passed are shown), then roll back.
  const upgrade = await runAction(carol, appUrl, 'upgrade', '0.2.0+1.1');
  assert.match(upgrade.preview, /Adds the WORKERS setting/);
  await carol.goto(appUrl);
  assert.equal(await carol.locator('#app-version').textContent(), '0.2.0+1.1');
  const rollback = await runAction(carol, appUrl, 'rollback');
  assert.match(rollback.preview, /volumes .* are not rolled back/);
  await carol.goto(appUrl);
  assert.equal(await carol.locator('#app-version').textContent(), '0.1.0+1.0');

  // Live: the app page and the apps list follow the swarm without a reload. A container killed
  // behind Potluck's back shows as a failed task on the page and as a restart on the badge.
  await carol.goto(appUrl);
  await hydrated(carol);
  const stack = (await carol.locator('#app-stack').textContent()).trim();
  const list = await carol.context().newPage();
  list.on('pageerror', (e) => console.error('page error:', e));
  await list.goto(`${base}/c/collective-a/apps`);
  await hydrated(list);
  const badge = list.locator(`#apps tr[data-app="${domain}"] .health-badge`);
  await list.locator(`#apps tr[data-app="${domain}"] .health-badge[data-health=healthy]`).waitFor({ timeout: 30_000 });
  assert.match(await badge.textContent(), /^1\/1 running$/);
  for (const p of [carol, list]) await p.evaluate(() => { window.notReloaded = true; });
  const container = execFileSync('docker', ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${stack}_app`], { encoding: 'utf8' }).trim().split('\n')[0];
  execFileSync('docker', ['kill', container], { stdio: 'ignore' });
  await carol.locator('#services tr[data-service=app] li.task-failed').waitFor({ timeout: 30_000 });
  await list.locator(`#apps tr[data-app="${domain}"] .health-badge:not([data-health=healthy])`).waitFor({ timeout: 30_000 });
  assert.match(await badge.textContent(), /restart/);
  for (const p of [carol, list]) assert.equal(await p.evaluate(() => window.notReloaded), true, 'updated in place');
  await shot(list, 'apps-live');
  // The servers page shows the swarm at a glance.
  await list.goto(`${base}/c/collective-a/servers`);
  await list.locator('#servers tr[data-server=local] .glance').waitFor({ timeout: 30_000 });
  assert.match(await list.locator('#servers tr[data-server=local] .live').textContent(), /connected.*nodes 1\/1 ready/s);
  assert.doesNotMatch(await list.locator("#servers tr[data-server=local] .live").textContent(), /disconnected/);
  await list.close();

  // Bob (viewer) sees the app and its services, without any control.
  const bobContext = await browser.newContext();
  const bob = await bobContext.newPage();
  await signIn(bob, base, 'Collective A SSO', 'bob', 'bob-pw');
  await bob.goto(appUrl);
  await hydrated(bob);
  await bob.locator('#services tr[data-service=app]').waitFor();
  for (const control of ['#preview-form', '#generate-secrets', '#env-form', '#run-form', '#overlays-form button']) {
    assert.equal(await bob.locator(control).count(), 0, `a viewer has no ${control}`);
  }
  await bobContext.close();

  // Erin (collective-b's admin) does not see collective-a's app at all.
  await erin.goto(appUrl);
  await erin.getByRole('alert').waitFor();
  assert.match(await erin.getByRole('alert').textContent(), /not found/);
  assert.equal(await erin.locator('#services').count(), 0);
  await erinContext.close();

  // Undeploy, removing volumes and secrets too.
  await carol.goto(appUrl);
  await hydrated(carol);
  await submit(carol, '#preview-form', { kind: 'undeploy' });
  await carol.locator('#preview').waitFor();
  await carol.locator('#confirm-form input[name="options[remove_volumes]"]').check();
  await carol.locator('#confirm-form input[name="options[remove_secrets]"]').check();
  await carol.locator('#confirm').click();
  await carol.waitForURL(/\/jobs\/\d+$/);
  await carol.locator('#job-state.state-succeeded, #job-state.state-failed').waitFor({ timeout: 180_000 });
  const undeployEvents = await carol.locator('#job-events li').allTextContents();
  assert.equal(await carol.locator('#job-state').textContent(), 'succeeded', undeployEvents.join('\n'));
  assert.ok(undeployEvents.some((e) => /Removing volume/.test(e)), undeployEvents.join('\n'));
  await carol.goto(appUrl);
  assert.equal(await carol.locator('#app-status').textContent(), 'undeployed');
  await carol.locator('#no-services').waitFor();
});
