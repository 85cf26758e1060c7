// The tests' identity provider: node-oidc-provider with its development login pages,
// JWT access tokens for one API (resource indicators), and the people of a JSON file
// the tests write. Started by tests/support/oidc_provider.py:
//   node provider.mjs <config.json>
// config: {issuer, port, jwks: {keys}, audience, other_audiences, clients, client_algs,
//          people_file}; people_file: {login: {name, account_id, permissions, ttl}}.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const people = () => JSON.parse(readFileSync(config.people_file, "utf8"));
const audiences = new Set([config.audience, ...config.other_audiences]);
let jwksRequests = 0;

const provider = new Provider(config.issuer, {
  jwks: config.jwks,
  clients: config.clients,
  findAccount: (ctx, id) => {
    const person = people()[id];
    if (!person) return undefined;
    return { accountId: id, claims: () => ({ sub: id, name: person.name }) };
  },
  claims: { openid: ["sub"], profile: ["name"] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (!audiences.has(resource)) throw new Error(`unknown resource ${resource}`);
        return {
          scope: "storehooks",
          audience: resource,
          accessTokenFormat: "jwt",
          accessTokenTTL: 300,
          jwt: { sign: { alg: config.client_algs[client.clientId] ?? "RS256" } },
        };
      },
    },
  },
  extraTokenClaims: (ctx, token) => {
    const person = people()[token.accountId];
    if (!person) return undefined;
    return { name: person.name, account_id: person.account_id, permissions: person.permissions };
  },
  ttl: {
    AccessToken: (ctx, token) => people()[token.accountId]?.ttl ?? 300,
  },
  pkce: { required: () => true },
  enabledJWA: {
    idTokenSigningAlgValues: ["RS256", "ES256", "EdDSA"],
  },
});
provider.proxy = false;

// What the tests read off the provider: how often the key set was fetched.
provider.use(async (ctx, next) => {
  if (ctx.path === "/jwks") jwksRequests += 1;
  if (ctx.path === "/test/jwks-requests") {
    ctx.body = { count: jwksRequests };
    return;
  }
  await next();
});

provider.listen(config.port, "127.0.0.1", () => {
  process.stdout.write(`listening ${config.issuer}\n`);
});
