// abra's servers tree in a real browser: the apps page downloads the collective's apps as
// servers/<server>/<domain>.env; a laptop's ~/.abra/servers (made with tar) is uploaded through
// the page's form, its preview shows what is created and what is refused and why, a directory
// is mapped to a Potluck server, and the import creates the app, which the apps page then lists.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { adminWithCollective, hydrated, launch, shot, startPotluck, submit } from './harness.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let potluck;
let browser;
let work;

before(async () => {
  potluck = await startPotluck();
  browser = await launch();
  work = mkdtempSync(join(tmpdir(), 'potluck-e2e-abra-'));
});

after(async () => {
  await browser?.close();
  await potluck?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('an abra servers tree is downloaded, then uploaded, previewed, mapped and imported', async () => {
  const { base } = potluck;
  const out = execFileSync(join(root, 'target/debug/fixture-recipes'), [work, 'hello'], { encoding: 'utf8' });
  const hello = out.trim().split('\t')[2];
  const admin = await adminWithCollective(browser, potluck, { name: 'Abra A', repository: hello, contextOptions: { acceptDownloads: true } });
  await admin.goto(`${base}/c/collective-a/apps`);
  await hydrated(admin);
  await submit(admin, '#create-app', { recipe: 'hello', server: 'local', domain: 'kept.example.org', version: '0.1.0+1.0' });
  await admin.getByRole('link', { name: 'kept.example.org' }).first().waitFor();

  // The download: abra's layout, unpacked with tar as an abra user would.
  const [download] = await Promise.all([
    admin.waitForEvent('download'),
    admin.getByRole('link', { name: 'Download as an abra servers tree' }).click(),
  ]);
  const archive = join(work, 'export.tar.gz');
  await download.saveAs(archive);
  const home = join(work, 'home', '.abra');
  mkdirSync(home, { recursive: true });
  execFileSync('tar', ['xzf', archive, '-C', home]);
  const kept = readFileSync(join(home, 'servers/local/kept.example.org.env'), 'utf8');
  assert.match(kept, /^TYPE=hello:0\.1\.0\+1\.0$/m);

  // On the laptop: a new app in a directory named like no Potluck server.
  mkdirSync(join(home, 'servers/laptop'));
  writeFileSync(join(home, 'servers/laptop/new.example.org.env'), kept.replaceAll('kept.example.org', 'new.example.org'));
  const upload = join(work, 'servers.tar.gz');
  execFileSync('tar', ['czf', upload, '-C', home, 'servers']);

  await admin.locator('details summary', { hasText: 'Import a whole abra servers tree' }).click();
  await admin.locator('#upload-abra-tree input[name=archive]').setInputFiles(upload);
  await admin.locator('#upload-abra-tree button[type=submit]').click();
  await admin.waitForURL(/\/c\/collective-a\/abra\/\d+$/);
  await hydrated(admin);
  assert.match(await admin.locator('h2', { hasText: 'Apps:' }).textContent(), /0 to create, 2 refused/);
  const table = admin.locator('#abra-apps');
  assert.match(await table.locator('tr', { hasText: 'laptop/new.example.org.env' }).textContent(), /no server chosen for laptop/);
  assert.match(await table.locator('tr', { hasText: 'local/kept.example.org.env' }).textContent(), /already has an app kept\.example\.org/);

  // Map laptop/ to `local`, preview again, import.
  await admin.locator('#abra-servers select[name="servers[laptop]"]').selectOption('local');
  await admin.locator('#abra-servers button[type=submit]').click();
  await admin.waitForURL(/servers%5Blaptop%5D=local|servers\[laptop\]=local/);
  await hydrated(admin);
  assert.match(await admin.locator('h2', { hasText: 'Apps:' }).textContent(), /1 to create, 1 refused/);
  await shot(admin, 'abra-import-preview');
  await admin.locator('#import-abra-tree button[type=submit]').click();
  await admin.getByText('apps created.').waitFor();
  assert.equal(await admin.locator('#import-abra-tree').count(), 0, 'no second import');

  await admin.goto(`${base}/c/collective-a/apps`);
  await hydrated(admin);
  const row = admin.locator('#apps tr', { hasText: 'new.example.org' });
  await row.waitFor();
  assert.match(await row.textContent(), /hello/);
});
