// A real OpenID provider (panva's oidc-provider) for Rampart's end-to-end tests.
//
// Started by tests/src/oidc.rs on a loopback port with a JSON config file:
//   node provider.js CONFIG.json
// CONFIG: { "port": N, "accounts": { "<id>": { "password": "...",
//           "groups": [...], "acr": "...", "amr": [...] } },
//           "clients": [ <oidc-provider client metadata> ],
//           "keys_file": "<path>" (optional) }
// Prints "READY <issuer>" on stdout once it listens; exits 1 if it cannot.
//
// The login and consent screens are replaced by two form endpoints a test can
// POST to (GET /interaction/UID answers JSON naming the prompt). That keeps the
// provider's own protocol code (authorisation, PKCE, tokens, ID-token signing,
// device flow) in charge, and lets the test choose each login's acr and amr.
// POST /_test/accounts/ID with JSON changes an account (e.g. add amr "hwk" to
// model a user who touched a hardware key at the step-up prompt).

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// Test switches (POST /_test/mode): the provider's clock offset in seconds (its
// tokens then look expired, or issued in the future, to the CA), and what its
// JWKS endpoint publishes: "normal", "empty" (the signing kid is unknown) or
// "wrong_key" (the right kid with another key: the signature does not verify).
const mode = { clock_offset: 0, jwks: 'normal' };
const realNow = Date.now;
Date.now = () => realNow() + mode.clock_offset * 1000;
let jwksFetches = 0;
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = new Map(Object.entries(config.accounts));

function xsrfOf(form) {
  const m = form.match(/name="xsrf" value="([^"]+)"/);
  return m ? m[1] : null;
}

function jwk(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

// Two RSA key generations are most of a start's CPU time, and a suite starts
// dozens of providers on a small machine: with `keys_file` the keys are made
// once and reused (each provider has its own issuer, so nothing else is shared).
function loadOrMakeKeys(path) {
  if (path) {
    try {
      return JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      if (err.code !== 'ENOENT') console.error(`ignoring unreadable ${path}:`, err.message);
    }
  }
  const keys = {
    signing: [
      jwk('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
      jwk('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256'),
    ],
    impostor: jwk('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
  };
  if (path) {
    // Written aside and renamed: a provider starting at the same time reads
    // either no file or a whole one.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(keys), { mode: 0o600 });
    renameSync(tmp, path);
  }
  return keys;
}

const { signing: signingKeys, impostor } = loadOrMakeKeys(config.keys_file);

function publicJwk(k) {
  const { d, p, q, dp, dq, qi, ...pub } = k;
  return pub;
}

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: signingKeys },
  cookies: { keys: ['rampart-test-only-cookie-key'] },
  acrValues: ['urn:rampart:test:silver', 'urn:rampart:test:gold'],
  claims: {
    openid: ['sub', 'amr'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // Put profile and groups claims into the ID token itself: that is what the
  // CA validates (the access token is never used).
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    // The device pages answer JSON (with the xsrf token of the provider's own
    // form) so that the test can drive them without parsing HTML.
    deviceFlow: {
      enabled: true,
      async userCodeInputSource(ctx, form, _out, err) {
        ctx.type = 'json';
        ctx.body = { page: 'input', xsrf: xsrfOf(form), error: err ? String(err.name) : null };
      },
      async userCodeConfirmSource(ctx, form, _client, _deviceInfo, userCode) {
        ctx.type = 'json';
        ctx.body = { page: 'confirm', xsrf: xsrfOf(form), user_code: userCode };
      },
      async successSource(ctx) {
        ctx.type = 'json';
        ctx.body = { page: 'success' };
      },
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const a = accounts.get(id);
    if (!a) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: a.username ?? id, email: `${id}@example.test`, groups: a.groups ?? [] };
      },
    };
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return json(res, 400, { error: 'uid mismatch' });
  if (!action) {
    return json(res, 200, { uid, prompt: details.prompt.name, params: details.params });
  }
  if (action === 'login') {
    const form = new URLSearchParams(await body(req));
    const id = form.get('login');
    const a = accounts.get(id);
    if (!a || a.password !== form.get('password')) return json(res, 403, { error: 'bad credentials' });
    const result = { login: { accountId: id, amr: a.amr ?? ['pwd'] } };
    if (a.acr) result.login.acr = a.acr;
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    const { prompt, params, session } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    if (prompt.details.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return json(res, 404, { error: 'unknown action' });
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    const m = url.pathname.match(/^\/interaction\/([\w-]+)(?:\/(login|confirm))?$/);
    if (m) return await interaction(req, res, m[1], m[2]);
    if (url.pathname === '/jwks') {
      jwksFetches += 1;
      if (mode.jwks === 'empty') return json(res, 200, { keys: [] });
      if (mode.jwks === 'wrong_key') {
        return json(res, 200, { keys: [publicJwk(impostor), publicJwk(signingKeys[1])] });
      }
    }
    if (url.pathname === '/_test/mode' && req.method === 'POST') {
      Object.assign(mode, JSON.parse(await body(req)));
      return json(res, 200, mode);
    }
    if (url.pathname === '/_test/stats') return json(res, 200, { jwks_fetches: jwksFetches });
    const t = url.pathname.match(/^\/_test\/accounts\/([\w.-]+)$/);
    if (t && req.method === 'POST') {
      const current = accounts.get(t[1]) ?? {};
      accounts.set(t[1], { ...current, ...JSON.parse(await body(req)) });
      return json(res, 200, accounts.get(t[1]));
    }
    return callback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) json(res, 500, { error: String(err) });
  }
});
server.on('error', (err) => {
  console.error(`cannot listen on ${issuer}:`, err.message);
  process.exit(1);
});
server.listen(config.port, '127.0.0.1', () => console.log(`READY ${issuer}`));
