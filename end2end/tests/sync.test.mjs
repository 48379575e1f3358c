// Operator sync through git in a real browser: an admin sets up the collective's remote on the
// sync page (the webhook's secret shown once), Potluck's apps arrive in the remote as abra's
// files, a change an abra user pushes with the git CLI shows with its diff, and applying it
// changes the app's env.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { adminWithCollective, hydrated, launch, shot, startPotluck, submit } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FILE = 'servers/local/synced.example.org.env';
let potluck;
let browser;
let work;

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
  work = mkdtempSync(join(tmpdir(), 'potluck-e2e-sync-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** git as an abra user on a laptop. */
function git(cwd, ...args) {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'Laptop Lu', GIT_AUTHOR_EMAIL: 'lu@example.org', GIT_COMMITTER_NAME: 'Laptop Lu', GIT_COMMITTER_EMAIL: 'lu@example.org' };
  return execFileSync('git', args, { cwd, env, encoding: 'utf8' }).trim();
}

async function until(what, check) {
  for (let i = 0; i < 300; i++) {
    const got = check();
    if (got) return got;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within 30 s`);
}

test('a collective syncs its apps to git and applies a change an abra user pushed', async () => {
  const { base } = potluck;
  const out = execFileSync(join(root, 'target/debug/fixture-recipes'), [work, 'hello'], { encoding: 'utf8' });
  const hello = out.trim().split('\t')[2];
  const admin = await adminWithCollective(browser, potluck, { name: 'Sync A', repository: hello });
  await admin.goto(`${base}/c/collective-a/apps`);
  await hydrated(admin);
  await submit(admin, '#create-app', { recipe: 'hello', server: 'local', domain: 'synced.example.org', version: '0.1.0+1.0' });
  await admin.getByRole('link', { name: 'synced.example.org' }).first().waitFor();

  const remote = join(work, 'ops.git');
  git(work, 'init', '-q', '--bare', '-b', 'main', remote);
  await admin.getByRole('link', { name: 'Git sync' }).click();
  await admin.waitForURL(`${base}/c/collective-a/sync`);
  await hydrated(admin);
  await admin.locator('#sync-off').waitFor();
  await submit(admin, '#sync-settings', { url: remote, branch: 'main' });
  const secret = await admin.locator('#webhook-secret').textContent();
  assert.match(secret, /^plk_hook_/);

  // Potluck's app arrives in the remote as abra's file.
  const show = () => { try { return git(work, '--git-dir', remote, 'show', `main:${FILE}`); } catch { return null; } };
  const pushed = await until('the first push', show);
  assert.match(pushed, /^TYPE=hello:0\.1\.0\+1\.0$/m);

  // Lu pushes a change from her laptop; "Sync now" brings it in, with its diff.
  const laptop = join(work, 'laptop');
  git(work, 'clone', '-q', remote, laptop);
  writeFileSync(join(laptop, FILE), `${readFileSync(join(laptop, FILE), 'utf8')}GREETING=from-laptop\n`);
  git(laptop, 'commit', '-q', '-am', 'synced: greet from the laptop');
  git(laptop, 'push', '-q', 'origin', 'main');
  await admin.reload();
  await hydrated(admin);
  await admin.locator('#sync-now button[type=submit]').click();
  const change = admin.locator('article.incoming', { hasText: FILE });
  await change.waitFor();
  assert.match(await change.textContent(), /Laptop Lu <lu@example\.org>/);
  assert.match(await change.locator('.diff-add').allTextContents().then((t) => t.join('\n')), /\+ GREETING=from-laptop/);
  await shot(admin, 'sync-incoming');
  await change.getByRole('button', { name: 'Apply to Potluck' }).click();
  await admin.locator('#no-incoming').waitFor();

  // The app's env is Lu's file now.
  await admin.goto(`${base}/c/collective-a/apps/synced.example.org`);
  await hydrated(admin);
  assert.match(await admin.locator('#env-text').inputValue(), /^GREETING=from-laptop$/m);
});
