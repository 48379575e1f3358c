// The browser suites' harness: a real `potluck serve` on a fresh SQLite database, the test
// identity providers (scripts/test-services.sh), and Debian's Chromium driven by playwright-core.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function requiredEnv(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser suite with \`make test\` (it starts the services)`);
  return v;
}

export const IDP_A = () => requiredEnv('POTLUCK_TEST_IDP_A');
export const IDP_B = () => requiredEnv('POTLUCK_TEST_IDP_B');

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/** Starts Potluck; resolves with { base, bootstrapLink, stop }. */
export async function startPotluck(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'potluck-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const bin = process.env.POTLUCK_BIN || join(root, 'target/debug/potluck');
  const child = spawn(bin, ['serve'], {
    cwd: root,
    env: {
      ...process.env,
      POTLUCK_DATABASE_URL: `sqlite://${dir}/potluck.db`,
      POTLUCK_DATA_DIR: join(dir, 'data'),
      POTLUCK_LISTEN: `127.0.0.1:${port}`,
      POTLUCK_PUBLIC_URL: base,
      POTLUCK_SITE_ROOT: join(root, 'target/site'),
      // The harness's engine, granted to the journeys' collective (a local engine is something
      // only the federation's configuration grants).
      POTLUCK_LOCAL_ENGINES: '{"/var/run/docker.sock"=["collective-a"]}',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`potluck exited early:\n${output}`);
    const link = /(http:\/\/\S+\/bootstrap\/\S+)/.exec(output)?.[1];
    if (link && output.includes('Potluck is serving')) {
      const stop = async () => {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
        rmSync(dir, { recursive: true, force: true });
      };
      return { base, bootstrapLink: link, stop, output: () => output };
    }
    if (Date.now() > deadline) throw new Error(`potluck did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Registers Potluck at an identity provider, as its admin would. */
export async function registerClient(issuer, base) {
  const r = await fetch(`${issuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [`${base}/auth/callback`], post_logout_redirect_uris: [`${base}/`] }),
  });
  if (!r.ok) throw new Error(`registration at ${issuer}: ${r.status}`);
  return r.json();
}

/** Chromium; every page of every context reports its console errors and uncaught errors to the
 * test's output (a hydration that stops or a script the CSP blocks shows up there). */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    context.on('console', (m) => {
      if (m.type() === 'error') console.error(`browser console error (${m.page()?.url() ?? '?'}): ${m.text()}`);
    });
    context.on('weberror', (e) => console.error(`browser error (${e.page()?.url() ?? '?'}): ${e.error()}`));
    return context;
  };
  return browser;
}

/** Waits until the page's wasm has attached its event handlers. When it has not after 30 s,
 * the failure says what the page loaded and what its scripts are waiting for, and the page's
 * HTML and a screenshot land in end2end/artifacts. */
export async function hydrated(page) {
  try {
    await page.waitForSelector('#app[data-hydrated="true"]', { timeout: 30_000 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      url: location.href,
      hydrated: document.querySelector('#app')?.dataset.hydrated ?? null,
      pending: String(window.__PENDING_RESOURCES ?? ''),
      resolved: Object.keys(window.__RESOLVED_RESOURCES ?? {}).join(','),
      loads: performance.getEntriesByType('resource').filter((r) => r.name.includes('/pkg/'))
        .map((r) => `${r.name.replace(location.origin, '')} ${Math.round(r.startTime)}+${Math.round(r.duration)} ms ${r.transferSize} B`),
      since: Math.round(performance.now()),
    })).catch((err) => ({ evaluate: String(err) }));
    const name = `not-hydrated-${Date.now()}`;
    mkdirSync(join(root, 'end2end/artifacts'), { recursive: true });
    writeFileSync(join(root, `end2end/artifacts/${name}.html`), await page.content().catch(() => ''));
    await page.screenshot({ path: join(root, `end2end/artifacts/${name}.png`), fullPage: true }).catch(() => {});
    e.message += `\npage state: ${JSON.stringify(state, null, 1)}\n(artifacts: end2end/artifacts/${name}.*)`;
    throw e;
  }
}

/** Signs in through the provider's real login page, starting from Potluck's sign-in page. */
export async function signIn(page, base, providerName, username, password) {
  await page.goto(`${base}/login`);
  await page.getByRole('link', { name: `Sign in with ${providerName}` }).click();
  try {
    await page.locator('#username').waitFor({ timeout: 15_000 });
  } catch (e) {
    throw new Error(`no login form for ${username} at ${page.url()}:\n${(await page.content()).slice(0, 3000)}`);
  }
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.locator('#submit').click();
  await page.waitForURL((u) => u.toString().startsWith(base) && !u.pathname.startsWith('/auth/'), { timeout: 30_000 });
}

export async function signOut(page) {
  await page.locator('#logout').click();
  // Potluck ends its session and sends the browser to the provider to end that one too.
  const confirm = page.locator('#logout-yes');
  await confirm.waitFor({ timeout: 30_000 });
  await confirm.click();
  await page.waitForLoadState();
}

/** Saves a screenshot under end2end/artifacts/ (kept by CI on failure). */
export async function shot(page, name) {
  await page.screenshot({ path: join(root, 'end2end/artifacts', `${name}.png`), fullPage: true });
}

/** Fills a form's fields by name and submits it. */
export async function submit(page, formSelector, fields = {}) {
  const form = page.locator(formSelector);
  for (const [name, value] of Object.entries(fields)) {
    const input = form.locator(`[name="${name}"]`);
    const tag = await input.evaluate((e) => e.tagName);
    if (tag === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
  await form.locator('button[type=submit]').click();
}

/** Previews an action on the app page, confirms it, and waits on the live job page. */
export async function runAction(page, appUrl, kind, target = '') {
  await page.goto(appUrl);
  await hydrated(page);
  await submit(page, '#preview-form', { kind, target });
  await page.locator('#preview').waitFor();
  const checks = await page.locator('#checks li.level-error').allTextContents();
  assert.deepEqual(checks, [], `no blocking checks for ${kind}`);
  const preview = await page.locator('#preview').textContent();
  await page.locator('#confirm').click();
  const { state, result, events } = await watchJob(page);
  assert.equal(state, 'succeeded', `${kind} failed: ${result}\n${events.join('\n')}`);
  return { preview, events };
}

/** Waits on the live page of a job just started until it ends; the page updates itself from
 * the event stream, without a reload. */
export async function watchJob(page) {
  await page.waitForURL(/\/jobs\/\d+$/, { timeout: 30_000 });
  await hydrated(page);
  await page.locator('#job-state.state-succeeded, #job-state.state-failed').waitFor({ timeout: 240_000 });
  return {
    state: await page.locator('#job-state').textContent(),
    result: await page.locator('#job-result').textContent(),
    events: await page.locator('#job-events li').allTextContents(),
  };
}

/** As the federation admin (through the bootstrap link): collective-a named `name`, the recipe
 * at `repository` registered for it, and the test swarm's manager as its server `local`.
 * Returns the signed-in page. */
export async function adminWithCollective(browser, potluck, { name, repository, contextOptions = {} }) {
  const { base } = potluck;
  const page = await (await browser.newContext(contextOptions)).newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  await page.goto(potluck.bootstrapLink);
  await page.locator('#bootstrap-confirm').click();
  await page.waitForURL(`${base}/admin/providers`);
  await page.goto(`${base}/collectives`);
  await hydrated(page);
  await submit(page, '#create-collective', { slug: 'collective-a', name });
  await page.locator('#collectives a', { hasText: name }).waitFor();
  await page.goto(`${base}/recipes`);
  await hydrated(page);
  await page.locator('details summary', { hasText: 'Register a recipe' }).click();
  await submit(page, '#register-recipe', { repository, collective: 'collective-a' });
  await page.getByText('Recipe registered.').waitFor();
  await page.goto(`${base}/c/collective-a/servers`);
  await hydrated(page);
  await submit(page, '#add-server', { name: 'local', kind: 'unix', address: '/var/run/docker.sock' });
  await page.getByText('Server added.').waitFor();
  return page;
}
