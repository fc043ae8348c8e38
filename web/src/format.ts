const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 });
const usd0 = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });

export function money(v: number | null | undefined, whole = false): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "n/a";
  return (whole ? usd0 : usd).format(v);
}

export function when(iso: string | undefined | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export const RISK = ["none", "low", "medium", "high", "critical"];

export function risk(r: number): string {
  return `${r} ${RISK[r] ?? ""}`.trim();
}

/** The rule id a recommendation's reason cites: "[rule ec2-idle, thresholds v0]". */
export function ruleOf(reason: string): string | null {
  const m = /\[rule ([^,\]]+)/.exec(reason);
  return m ? m[1] : null;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
