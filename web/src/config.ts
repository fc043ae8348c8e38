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
export type AppConfig = LocalConfig | CognitoConfig;

export async function loadConfig(): Promise<AppConfig> {
  const res = await fetch("/config.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`/config.json: HTTP ${res.status}`);
  return (await res.json()) as AppConfig;
}
