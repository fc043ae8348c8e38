import { session } from "./auth";

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | undefined | null>;

function url(path: string, query?: Query): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return `/api${path}${s ? `?${s}` : ""}`;
}

async function call<T>(method: string, path: string, query?: Query, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const token = session.value?.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? `HTTP ${res.status}`, e?.details);
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => call<T>("GET", path, query),
  post: <T>(path: string, body?: unknown) => call<T>("POST", path, undefined, body ?? {}),
  /** The raw response (CSV downloads, capability probes). */
  async raw(path: string, query?: Query): Promise<Response> {
    const token = session.value?.token;
    return fetch(url(path, query), { headers: token ? { authorization: `Bearer ${token}` } : {} });
  },
};
