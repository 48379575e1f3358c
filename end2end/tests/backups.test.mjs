// Backups in a real browser against the real swarm: an app of the `backed-up` fixture recipe is
// deployed, its collective gets a repository (the password shown once), the coverage page shows
// what the recipe's labels cover, a backup runs as a live job, the data is overwritten and
// restored from the app page, the snapshot passes a restore drill in a throw-away stack, and a
// schedule is set; the backups page shows the verified restore and the schedule's next run, and
// schedules the collective's drills.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { adminWithCollective, hydrated, launch, shot, startPotluck, submit, runAction, watchJob } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const domain = `bk-${Date.now().toString(36)}.example.org`;
const stack = domain.replaceAll('.', '_');
let potluck;
let browser;
let recipes;

before(async () => {
  potluck = await startPotluck({ POTLUCK_LOCAL_BACKUPS: '["collective-a"]' });
  browser = await launch();
  recipes = mkdtempSync(join(tmpdir(), 'potluck-e2e-recipes-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  // The app's stack and anything a drill left, with their volumes, pass or fail.
  const left = docker(['stack', 'ls', '--format', '{{.Name}}']).split('\n').filter((n) => n.endsWith(stack));
  for (const name of left) docker(['stack', 'rm', name]);
  for (let i = 0; i < 60; i++) {
    const volumes = docker(['volume', 'ls', '-q']).split('\n').filter((v) => v.includes(stack));
    if (volumes.length === 0) break;
    try { docker(['volume', 'rm', ...volumes]); } catch { await new Promise((r) => setTimeout(r, 500)); }
  }
  if (recipes) rmSync(recipes, { recursive: true, force: true });
});

function docker(args) {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Runs a shell script in the running container of one of the app's services. */
async function sh(service, script) {
  for (let i = 0; i < 120; i++) {
    const id = docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${stack}_${service}`]).split('\n')[0];
    if (id) return execFileSync('docker', ['exec', id, 'sh', '-c', script], { encoding: 'utf8' });
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${stack}_${service} has no running container`);
}

/** Publishes the fixture recipe with one release; returns its bare remote. */
function publishBackedUp() {
  const out = execFileSync(join(root, 'target/debug/fixture-recipes'), [recipes, 'backed-up'], { encoding: 'utf8' });
  const [, work, remote] = out.trim().split('\t');
  const git = (...args) => execFileSync('git', ['-C', work, '-c', 'user.name=Potluck', '-c', 'user.email=e2e@potluck.invalid', ...args]);
  git('tag', '-a', '1.0.0+1', '-m', 'chore: publish 1.0.0+1 release');
  git('push', '-q', remote, 'refs/tags/1.0.0+1');
  return remote;
}

test('an operator backs up, restores and drills an app, and sees its coverage', async () => {
  const { base } = potluck;
  const page = await adminWithCollective(browser, potluck, { name: 'Collective A', repository: publishBackedUp() });
  await page.goto(`${base}/c/collective-a/apps`);
  await hydrated(page);
  await submit(page, '#create-app', { recipe: 'backed-up', server: 'local', domain, version: '1.0.0+1' });
  await page.getByRole('link', { name: domain }).first().waitFor();
  const appUrl = `${base}/c/collective-a/apps/${domain}`;
  await runAction(page, appUrl, 'deploy');

  // Coverage, before any repository: what the labels cover, at a glance.
  const backupsUrl = `${base}/c/collective-a/backups`;
  await page.goto(backupsUrl);
  await hydrated(page);
  const row = page.locator(`#coverage tr[data-app="${domain}"]`);
  const chips = await row.locator('li.chip').evaluateAll((l) => l.map((c) => `${c.firstChild.textContent}:${c.dataset.state}`));
  assert.deepEqual(chips.sort(), ['cache:excluded', 'db-data:paths', 'files:whole'], chips.join(' '));
  assert.equal(await row.locator('.last-backup').textContent(), 'never');
  await page.locator('#no-repo').waitFor();

  // A repository: Potluck makes the password and shows it this once.
  await submit(page, '#add-backup-repo', { name: 'main' });
  const password = await page.locator('#repo-password').textContent();
  assert.ok(password.length >= 20, password);
  await page.reload();
  await hydrated(page);
  assert.equal((await page.content()).includes(password), false, 'the password is never shown again');

  // Back up now, watched live.
  await sh('db', "printf 'row 1\\n' > /var/lib/db/table.1");
  await sh('app', "printf 'precious\\n' > /srv/files/a.txt");
  await page.locator(`#coverage tr[data-app="${domain}"] .backup-now button`).click();
  const backup = await watchJob(page);
  assert.equal(backup.state, 'succeeded', `${backup.result}\n${backup.events.join('\n')}`);
  assert.match(backup.result, /snapshot \w{8} saved: .* checked/);
  await shot(page, 'backup-job');

  // The snapshot on the app page; the data overwritten, then restored from it.
  await page.goto(appUrl);
  await hydrated(page);
  const snapshot = page.locator('#snapshots tbody tr').first();
  assert.equal(await page.locator('#snapshots tbody tr').count(), 1);
  assert.match(await snapshot.textContent(), /manual/);
  await sh('app', "printf 'overwritten\\n' > /srv/files/a.txt");
  await snapshot.locator('details.restore summary').click();
  await snapshot.locator('.restore-form input[name=confirm]').check();
  await snapshot.locator('.restore-form button[type=submit]').click();
  const restore = await watchJob(page);
  assert.equal(restore.state, 'succeeded', `${restore.result}\n${restore.events.join('\n')}`);
  assert.equal(await sh('app', 'cat /srv/files/a.txt'), 'precious\n', 'the restore put the data back');
  assert.equal(await sh('db', 'cat /var/lib/db/table.restored'), 'row 1\n', 'the restore hook loaded the dump');

  // A restore drill of the snapshot, in a stack of its own that goes afterwards.
  await page.goto(appUrl);
  await hydrated(page);
  await page.locator('#snapshots tbody tr').first().locator('.drill-form button').click();
  const drill = await watchJob(page);
  assert.equal(drill.state, 'succeeded', `${drill.result}\n${drill.events.join('\n')}`);
  assert.match(drill.result, /restore drill passed/);
  assert.deepEqual(docker(['stack', 'ls', '--format', '{{.Name}}']).split('\n').filter((n) => n.startsWith('drill')), []);
  await page.goto(appUrl);
  await hydrated(page);
  await page.locator('#snapshots tbody tr').first().locator('.verified .chip-whole').waitFor();

  // A schedule, then the backups page: verified restore, last snapshot, the schedule's next run.
  await page.locator('details.schedule-form summary').click();
  await submit(page, '#set-schedule', { cron: '@daily', keep_daily: '7' });
  await page.locator('#backup-schedule .schedule[data-cron="@daily"]').waitFor();
  await page.goto(backupsUrl);
  await hydrated(page);
  const covered = page.locator(`#coverage tr[data-app="${domain}"]`);
  await covered.locator('.drilled', { hasText: 'restore verified' }).waitFor();
  await covered.locator('.last-backup .fresh').waitFor();
  assert.match(await covered.locator('.schedule-cell').textContent(), /next run/);
  assert.equal(await covered.locator('svg.sizes rect').count(), 1, 'one bar per snapshot');

  // The collective's drills on a schedule: set from the backups page, shown with its next round.
  await page.locator('#drill-schedule details.schedule-form summary').click();
  await submit(page, '#set-drill-schedule', { cron: '0 4 * * 0' });
  const drills = page.locator('#drill-schedule .schedule[data-cron="0 4 * * 0"]');
  await drills.waitFor();
  assert.match(await drills.textContent(), /next round/);
  await shot(page, 'backups-page');
});
