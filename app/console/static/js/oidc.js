// Sign-in at the store's identity provider (docs/console.md#sign-in): the authorization
// code flow with PKCE (RFC 7636) for the console's public client. What the flow needs
// across the trip to the provider waits in sessionStorage; the code is taken off the
// address as soon as the console is back, and the access token never enters a URL.

const FLOW = "storehooks.signInFlow";

// The console's own address, registered at the provider as its redirect URI.
export function consoleUrl() {
  return `${location.origin}${location.pathname.replace(/[^/]*$/, "")}`;
}

export async function leaveForProvider(config) {
  const flow = { state: randomText(), nonce: randomText(), verifier: randomText(), hash: location.hash };
  sessionStorage.setItem(FLOW, JSON.stringify(flow));
  const target = new URL(config.authorization_endpoint);
  const parameters = {
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: consoleUrl(),
    scope: config.scope,
    state: flow.state,
    nonce: flow.nonce,
    code_challenge: await challenge(flow.verifier),
    code_challenge_method: "S256",
    resource: config.resource,
  };
  for (const [name, value] of Object.entries(parameters)) if (value) target.searchParams.set(name, value);
  location.assign(target);
}

// Back from the provider with ?code=&state= (or ?error=): the code traded for tokens.
// null when the address holds no answer of the provider.
export async function returnFromProvider(config) {
  const answer = new URLSearchParams(location.search);
  if (!answer.has("code") && !answer.has("error")) return null;
  const flow = JSON.parse(sessionStorage.getItem(FLOW) ?? "null");
  sessionStorage.removeItem(FLOW);
  history.replaceState(null, "", `${location.pathname}${flow?.hash ?? ""}`);
  if (!flow || answer.get("state") !== flow.state) {
    throw new Error("This sign-in was not started in this tab: sign in again.");
  }
  if (answer.has("error")) {
    throw new Error(answer.get("error_description") || `The identity provider answered “${answer.get("error")}”.`);
  }
  const response = await fetch(config.token_endpoint, {
    method: "POST",
    headers: { Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: answer.get("code"),
      redirect_uri: consoleUrl(),
      client_id: config.client_id,
      code_verifier: flow.verifier,
    }),
    cache: "no-store",
    credentials: "omit",
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) {
    throw new Error(tokens.error_description || `The identity provider gave no token (${response.status}).`);
  }
  if (tokens.id_token && claims(tokens.id_token).nonce !== flow.nonce) {
    throw new Error("The identity provider's answer was not for this sign-in: sign in again.");
  }
  return { accessToken: tokens.access_token, expiresAt: Date.now() + (tokens.expires_in ?? 300) * 1000 };
}

// Ends the person's session at the provider too, which asks them and sends them back here.
export function leaveProviderSession(config) {
  const target = new URL(config.end_session_endpoint);
  target.searchParams.set("client_id", config.client_id);
  target.searchParams.set("post_logout_redirect_uri", consoleUrl());
  location.assign(target);
}

// 48 random bytes as 64 base64url characters: a verifier, state or nonce (RFC 7636: 43–128).
function randomText() {
  return base64url(crypto.getRandomValues(new Uint8Array(48)));
}

async function challenge(verifier) {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// A JWT's claims, unverified: only to match the ID token's nonce to this sign-in (the API
// verifies the access token itself).
function claims(token) {
  const part = token.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}
