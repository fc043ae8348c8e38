/** What /config.json says: served by the local gateway, or by CloudFront in AWS. */
export interface LocalConfig {
  auth: "local";
  wsUrl: string;
  tokensUrl: string;
}
export interface CognitoConfig {
  auth: "cognito";
  wsUrl: string;
  /** https://cognito-idp.<region>.amazonaws.com/<poolId> */
  authority: string;
  clientId: string;
  /** The hosted UI's domain (logout). */
  domain: string;
}
export type AppConfig = (LocalConfig | CognitoConfig) & {
  /** The API's routes, "METHOD /path" under /api: what the app may offer. */
  routes?: string[];
};

let routes: Set<string> = new Set();

/** Whether the API has a route (e.g. "GET /savings"). */
export function offers(route: string): boolean {
  return routes.has(route);
}

export async function loadConfig(): Promise<AppConfig> {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`/config.json: HTTP ${res.status}`);
  const c = (await res.json()) as AppConfig;
  routes = new Set(c.routes ?? []);
  return c;
}
