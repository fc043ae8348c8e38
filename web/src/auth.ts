import { signal, computed } from "@preact/signals";
import type { AppConfig, CognitoConfig } from "./config";
import type { Role } from "./types";

export interface Session {
  token: string;
  user: string;
  roles: Role[];
  /** Epoch seconds. */
  exp: number;
}

export const session = signal<Session | null>(null);

const RANK: Record<Role, number> = { viewer: 0, operator: 1, approver: 2, admin: 3 };

/** The highest rank among the token's groups: roles are cumulative (SPEC 6). */
export const role = computed<Role | null>(() => {
  const s = session.value;
  if (!s || s.roles.length === 0) return null;
  return s.roles.reduce((a, b) => (RANK[b] > RANK[a] ? b : a));
});

export function can(min: Role): boolean {
  const r = role.value;
  return r !== null && RANK[r] >= RANK[min];
}

function claims(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json) as Record<string, unknown>;
}

export function sessionOf(token: string): Session {
  const c = claims(token);
  const groups = Array.isArray(c["cognito:groups"]) ? (c["cognito:groups"] as string[]) : [];
  const roles = groups.filter((g): g is Role => g in RANK);
  const user = String(c["cognito:username"] ?? c["email"] ?? c["sub"] ?? "unknown");
  return { token, user, roles, exp: Number(c["exp"] ?? 0) };
}

// ------------------------------------------------------------------ local

export interface LocalUser {
  user: string;
  role: Role;
  token: string;
}

const KEY = "finops.session";
let refreshTimer: number | undefined;
let config: AppConfig | null = null;

export async function localUsers(): Promise<LocalUser[]> {
  if (config?.auth !== "local") return [];
  const res = await fetch(config.tokensUrl, { cache: "no-store" });
  if (!res.ok) throw new Error(`${config.tokensUrl}: HTTP ${res.status}`);
  return ((await res.json()) as { users: LocalUser[] }).users;
}

function adopt(s: Session | null) {
  session.value = s;
  window.clearTimeout(refreshTimer);
  if (!s) {
    sessionStorage.removeItem(KEY);
    return;
  }
  if (config?.auth === "local") sessionStorage.setItem(KEY, s.token);
  // Renew five minutes before expiry (or at once when closer than that).
  const inMs = Math.max(0, (s.exp - 300) * 1000 - Date.now());
  refreshTimer = window.setTimeout(() => void renew(s.user), Math.min(inMs, 2 ** 31 - 1));
}

async function renew(user: string) {
  try {
    if (config?.auth === "local") {
      const u = (await localUsers()).find((x) => x.user === user);
      adopt(u ? sessionOf(u.token) : null);
    } else if (config?.auth === "cognito") {
      const m = await cognito(config);
      const u = await m.signinSilent();
      adopt(u?.id_token ? sessionOf(u.id_token) : null);
    }
  } catch {
    adopt(null);
  }
}

export function signInLocal(u: LocalUser) {
  adopt(sessionOf(u.token));
}

// ---------------------------------------------------------------- Cognito

type Manager = import("oidc-client-ts").UserManager;
let manager: Promise<Manager> | null = null;

/** oidc-client-ts, loaded only when the deployment signs in with Cognito. */
function cognito(c: CognitoConfig): Promise<Manager> {
  manager ??= import("oidc-client-ts").then(({ UserManager, WebStorageStateStore }) => {
    return new UserManager({
      authority: c.authority,
      client_id: c.clientId,
      redirect_uri: `${location.origin}/`,
      post_logout_redirect_uri: `${location.origin}/`,
      response_type: "code", // with PKCE (S256), the library's default
      scope: "openid email profile",
      // Tokens stay in this tab's session storage, never in the URL.
      userStore: new WebStorageStateStore({ store: sessionStorage }),
      automaticSilentRenew: false,
    });
  });
  return manager;
}

export async function signInCognito() {
  if (config?.auth !== "cognito") return;
  const m = await cognito(config);
  await m.signinRedirect({ state: location.pathname });
}

/** Restores a session (local: this tab's token; Cognito: the code callback or the stored user). */
export async function initAuth(c: AppConfig): Promise<void> {
  config = c;
  if (c.auth === "local") {
    const t = sessionStorage.getItem(KEY);
    if (t) {
      const s = sessionOf(t);
      if (s.exp * 1000 > Date.now() + 60_000) adopt(s);
      else await renew(s.user);
    }
    return;
  }
  const m = await cognito(c);
  const q = new URLSearchParams(location.search);
  if (q.has("code") && q.has("state")) {
    const u = await m.signinRedirectCallback();
    // The code and state leave the address bar at once.
    const back = typeof u.state === "string" && u.state.startsWith("/") ? u.state : "/";
    history.replaceState(null, "", back);
    if (u.id_token) adopt(sessionOf(u.id_token));
    return;
  }
  const u = await m.getUser();
  if (u?.id_token && !u.expired) adopt(sessionOf(u.id_token));
  else if (u?.refresh_token) await renew(u.profile.sub);
}

export async function signOut() {
  const c = config;
  adopt(null);
  if (c?.auth === "cognito") {
    const m = await cognito(c);
    await m.removeUser();
    const back = encodeURIComponent(`${location.origin}/`);
    location.assign(`https://${c.domain}/logout?client_id=${c.clientId}&logout_uri=${back}`);
  }
}
