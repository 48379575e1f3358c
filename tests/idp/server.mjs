// Potluck's test identity providers: real OpenID Providers (npm `oidc-provider`, OpenID
// Certified) on loopback, several issuers in one process, for the integration and browser tests.
//
// The protocol — discovery, keys, authorization with PKCE, tokens, userinfo, RP-initiated logout,
// dynamic client registration — is the library's. This file supplies what a real deployment
// supplies: configuration, a user store with a `groups` claim, and the login page.
//
// Test-only extras, as an IdP admin console would offer them:
//   POST /_test/groups   {"username": "...", "groups": [...]}  changes a user's groups
//
// Usage: node server.mjs [config.json]   (env IDP_CONFIG, IDP_STATE_DIR)

import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider, { errors } from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(readFileSync(resolve(process.argv[2] || process.env.IDP_CONFIG || join(here, 'config.json')), 'utf8'));
const stateDir = resolve(process.env.IDP_STATE_DIR || join(here, 'state'));
mkdirSync(stateDir, { recursive: true });

const html = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${html(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label,input,button{display:block;width:100%;margin:.3em 0}
button{margin-top:1em;padding:.5em}.error{color:#a00}</style></head><body>${body}</body></html>`;

// One signing key per issuer, kept across restarts so that tokens stay verifiable.
function signingKeys(name) {
  const file = join(stateDir, `keys-${name}.json`);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const kid = createHash('sha256').update(jwk.n).digest('hex').slice(0, 12);
    writeFileSync(file, JSON.stringify({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

const digest = (s) => createHash('sha256').update(String(s ?? '')).digest();
const passwordMatches = (user, given) => timingSafeEqual(digest(user.password), digest(given));

async function formBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 65536) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

async function jsonBody(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return JSON.parse(body || '{}');
}

function issuerApp(issuer) {
  const users = new Map(issuer.users.map((u) => [u.username, { ...u }]));
  const bySubject = (sub) => [...users.values()].find((u) => u.sub === sub);
  const title = issuer.display_name || issuer.name;

  const provider = new Provider(issuer.issuer, {
    clients: issuer.clients || [],
    jwks: signingKeys(issuer.name),
    cookies: {
      keys: [randomBytes(32).toString('hex')],
      // Browsers share cookies between the ports of one host: give each issuer its own names.
      names: { session: `${issuer.name}_session`, interaction: `${issuer.name}_interaction`, resume: `${issuer.name}_resume` },
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false, // scope claims (groups) go into the ID token as well
    pkce: { required: () => true },
    responseTypes: ['code'],
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `<h1>Sign out of ${html(title)}?</h1>${form}
<button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', `<h1>Signed out of ${html(title)}</h1>`);
        },
      },
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    async findAccount(ctx, sub) {
      const user = bySubject(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: user.name,
            preferred_username: user.username,
            email: user.email,
            email_verified: true,
            groups: [...(user.groups || [])],
          };
        },
      };
    },
    // First-party test clients: grant the requested scopes without a consent page.
    async loadExistingGrant(ctx) {
      const { client, session, params } = ctx.oidc;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params.scope || 'openid'));
      await grant.save();
      return grant;
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Error</h1><p id="error">${html(out.error)}: ${html(out.error_description)}</p>`);
    },
  });
  provider.proxy = false;

  const loginForm = (uid, params, error) => page(`Sign in to ${title}`, `<h1>Sign in to ${html(title)}</h1>
${error ? `<p class="error" role="alert">${html(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${html(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="off" required value="${html(params.login_hint)}">
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button id="submit" type="submit">Sign in</button></form>`);

  provider.use(async (ctx, next) => {
    if (ctx.path === '/_test/groups' && ctx.method === 'POST') {
      const { username, groups } = await jsonBody(ctx.req);
      const user = users.get(username);
      if (!user || !Array.isArray(groups)) ctx.throw(400, 'unknown user or groups not a list');
      user.groups = groups;
      ctx.body = { username, groups };
      return undefined;
    }
    const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
    if (!m) return next();
    ctx.set('cache-control', 'no-store');
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== m[1]) throw new errors.SessionNotFound('interaction mismatch');
      if (details.prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${details.prompt.name}`);
      if (!m[2] && ctx.method === 'GET') {
        ctx.type = 'html';
        ctx.body = loginForm(m[1], details.params);
        return undefined;
      }
      if (m[2] && ctx.method === 'POST') {
        const form = await formBody(ctx.req);
        const user = users.get(form.username);
        if (!user || !passwordMatches(user, form.password)) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = loginForm(m[1], details.params, 'Wrong username or password.');
          return undefined;
        }
        const to = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
        ctx.status = 303;
        ctx.redirect(to);
        return undefined;
      }
      ctx.throw(405);
    } catch (err) {
      if (err instanceof errors.SessionNotFound) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = page('Expired', '<h1>This sign-in expired</h1><p>Start again from the application.</p>');
        return undefined;
      }
      throw err;
    }
  });
  provider.on('server_error', (ctx, err) => console.error(`[${issuer.name}] server error`, err));
  return provider;
}

const servers = config.issuers.map((issuer) => {
  const port = Number(new URL(issuer.issuer).port);
  const server = issuerApp(issuer).listen(port, '127.0.0.1', () => console.log(`[${issuer.name}] ${issuer.issuer} ready`));
  server.on('error', (e) => {
    console.error(`[${issuer.name}] cannot listen on ${port}: ${e.message}`);
    process.exit(1);
  });
  return server;
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    for (const s of servers) s.close();
    setTimeout(() => process.exit(0), 200).unref();
  });
}
