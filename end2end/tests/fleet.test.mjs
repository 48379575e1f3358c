// The fleet in a real browser against the real swarm: two apps of one recipe deployed, the fleet
// page shows how far behind each is (a chart and a table that sorts by link), the federation
// admin chooses both, previews their upgrades and runs them as one batch, watching it go.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { adminWithCollective, hydrated, launch, runAction, shot, startPotluck, submit } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let potluck;
let browser;
let recipes;
const stacks = [];

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
  recipes = mkdtempSync(join(tmpdir(), 'potluck-e2e-fleet-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  for (const stack of stacks) {
    try { execFileSync('docker', ['stack', 'rm', stack], { stdio: 'ignore' }); } catch { /* already gone */ }
    const secrets = execFileSync('docker', ['secret', 'ls', '-q', '--filter', `name=${stack}_`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    if (secrets.length) execFileSync('docker', ['secret', 'rm', ...secrets], { stdio: 'ignore' });
  }
  if (recipes) rmSync(recipes, { recursive: true, force: true });
});

test('the fleet shows what is behind and a batch upgrades two apps one after another', async () => {
  const { base } = potluck;
  const out = execFileSync(join(root, 'target/debug/fixture-recipes'), [recipes, 'hello'], { encoding: 'utf8' });
  const hello = out.trim().split('\t')[2];
  const admin = await adminWithCollective(browser, potluck, { name: 'Fleet A', repository: hello });

  const domains = [];
  for (const n of [1, 2]) {
    const domain = `fleet${n}-${Date.now().toString(36)}.example.org`;
    domains.push(domain);
    stacks.push(domain.replaceAll('.', '_'));
    await admin.goto(`${base}/c/collective-a/apps`);
    await hydrated(admin);
    await submit(admin, '#create-app', { recipe: 'hello', server: 'local', domain, version: '0.1.0+1.0' });
    await admin.getByRole('link', { name: domain }).first().waitFor();
    const appUrl = `${base}/c/collective-a/apps/${domain}`;
    await admin.goto(appUrl);
    await hydrated(admin);
    await admin.locator('#generate-secrets button').click();
    await admin.locator('#generated .secret-value').waitFor();
    await runAction(admin, appUrl, 'deploy');
  }

  // The fleet: both two releases behind; the chart counts them.
  await admin.goto(`${base}/fleet`);
  await hydrated(admin);
  const section = admin.locator('section.fleet-recipe[data-recipe=hello]');
  assert.match(await section.locator('figcaption').textContent(), /0\.1\.0\+1\.0: 2/);
  for (const domain of domains) {
    assert.equal(await section.locator(`tr[data-app="${domain}"]`).getAttribute('data-behind'), '2');
  }
  await shot(admin, 'fleet');

  // Choose the recipe's apps, preview the upgrades, run them as one batch.
  await section.getByRole('link', { name: /Choose apps of hello/ }).click();
  await admin.waitForURL(/\/fleet\?recipe=hello/);
  await hydrated(admin);
  const chosen = admin.locator('section.fleet-recipe[data-recipe=hello]');
  for (const domain of domains) {
    assert.equal(await chosen.locator(`tr[data-app="${domain}"] input[name=apps]`).isChecked(), true);
  }
  await chosen.locator('select[name=target]').selectOption('0.2.0+1.1');
  await chosen.locator('#preview-batch').click();
  await admin.waitForURL(/\/fleet\/upgrade\?/);
  await hydrated(admin);
  assert.equal(await admin.locator('#batch-preview > li').count(), 2);
  assert.match(await admin.locator('#batch-preview').textContent(), /0\.1\.0\+1\.0 → 0\.2\.0\+1\.1/);
  assert.match(await admin.locator('#batch-preview').textContent(), /Adds the WORKERS setting/);
  await shot(admin, 'batch-preview');
  await admin.locator('#start-batch button[type=submit]').click();
  await admin.waitForURL(/\/batches\/\d+$/);
  // The page reloads itself while the batch runs.
  await admin.locator('#batch-state[data-state=done]').waitFor({ timeout: 240_000 });
  for (const domain of domains) {
    assert.equal(await admin.locator(`#batch-items tr[data-app="${domain}"]`).getAttribute('data-state'), 'succeeded');
  }
  await shot(admin, 'batch-done');
  await admin.goto(`${base}/fleet`);
  for (const domain of domains) {
    assert.equal(await admin.locator(`tr[data-app="${domain}"]`).getAttribute('data-behind'), '1');
  }
});
