// The Cognito sign-in (hosted UI, authorization code with PKCE) without AWS:
// /config.json says `cognito`, and the user pool's discovery document and
// token endpoint are answered by the test. What is checked is the app's
// side: the authorize request, the code exchange, and the address bar.
import { expect, test } from "@playwright/test";
import { base } from "./helpers";

const AUTHORITY = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test";
const HOSTED = "https://finops-test.auth.us-east-1.amazoncognito.com";

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

test("Cognito: code + PKCE, no token or code left in the URL, roles from cognito:groups", async ({ page }) => {
  const now = Math.floor(Date.now() / 1000);
  // Expires in 5 minutes and 3 seconds: the app renews 5 minutes ahead.
  const token = (exp: number) => `${b64({ alg: "RS256", typ: "JWT" })}.${b64({
    iss: AUTHORITY,
    aud: "testclient",
    sub: "u-1",
    "cognito:username": "alice@example.com",
    "cognito:groups": ["approver"],
    iat: now,
    exp,
  })}.sig`;
  let authorize: URL | null = null;
  let exchange: URLSearchParams | null = null;
  let refresh: URLSearchParams | null = null;
  await page.route("**/config.json", (r) =>
    r.fulfill({
      json: { auth: "cognito", authority: AUTHORITY, clientId: "testclient", domain: "finops-test.auth.us-east-1.amazoncognito.com", wsUrl: "ws://127.0.0.1:9", routes: [] },
    }),
  );
  await page.route(`${AUTHORITY}/.well-known/openid-configuration`, (r) =>
    r.fulfill({
      json: {
        issuer: AUTHORITY,
        authorization_endpoint: `${HOSTED}/oauth2/authorize`,
        token_endpoint: `${HOSTED}/oauth2/token`,
        jwks_uri: `${AUTHORITY}/.well-known/jwks.json`,
        response_types_supported: ["code"],
      },
      headers: { "access-control-allow-origin": "*" },
    }),
  );
  await page.route(`${HOSTED}/oauth2/authorize**`, async (r) => {
    authorize = new URL(r.request().url());
    // The hosted UI signs the user in and sends them back with a code.
    const back = `${authorize.searchParams.get("redirect_uri")}?code=the-code&state=${authorize.searchParams.get("state")}`;
    await r.fulfill({ status: 302, headers: { location: back } });
  });
  await page.route(`${HOSTED}/oauth2/token`, async (r) => {
    const form = new URLSearchParams(r.request().postData() ?? "");
    const first = form.get("grant_type") === "authorization_code";
    if (first) exchange = form;
    else refresh = form;
    const t = token(first ? now + 303 : now + 3600);
    await r.fulfill({
      json: { id_token: t, access_token: t, refresh_token: "refresh", token_type: "Bearer", expires_in: first ? 303 : 3600 },
      headers: { "access-control-allow-origin": "*" },
    });
  });
  // The API would refuse this unsigned token; this test is about sign-in.
  await page.route("**/api/**", (r) => r.fulfill({ json: { items: [], nextToken: null, totals: { count: 0, monthlySavingsUsd: 0 } } }));

  await page.goto(`${base()}/`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.locator(".badge")).toHaveText("approver");
  expect(page.url()).toBe(`${base()}/`);

  const a = authorize as URL | null;
  expect(a?.searchParams.get("response_type")).toBe("code");
  expect(a?.searchParams.get("client_id")).toBe("testclient");
  expect(a?.searchParams.get("code_challenge_method")).toBe("S256");
  expect(a?.searchParams.get("code_challenge")?.length).toBeGreaterThan(40);
  const x = exchange as URLSearchParams | null;
  expect(x?.get("grant_type")).toBe("authorization_code");
  expect(x?.get("code")).toBe("the-code");
  expect(x?.get("code_verifier")?.length).toBeGreaterThan(40);
  await expect(page.locator(".user")).toContainText("alice@example.com");

  // Renewed with the refresh token before it expires, still signed in.
  await expect.poll(() => (refresh as URLSearchParams | null)?.get("grant_type"), { timeout: 20_000 }).toBe("refresh_token");
  expect((refresh as URLSearchParams | null)?.get("refresh_token")).toBe("refresh");
  await expect(page.locator(".badge")).toHaveText("approver");
});
