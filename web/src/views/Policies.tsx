import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { can } from "../auth";
import { errorText, money, risk, when, RISK } from "../format";
import type { Policy, PolicyMatch } from "../types";

// What the server accepts (shared::domain::Service and Action); a policy may
// never approve investigate_errors, so it is not offered.
const SERVICES = ["ec2", "ebs", "rds", "elasticache", "lambda", "ecs", "s3", "dynamodb"];
const ACTIONS = [
  "stop",
  "terminate",
  "rightsize",
  "move_to_graviton",
  "change_storage_class",
  "add_lifecycle_rule",
  "switch_to_on_demand",
  "lower_provisioned_capacity",
  "reduce_memory",
  "increase_memory",
  "shrink_tasks",
  "reduce_task_count",
  "delete_unused",
  "scale_up",
];

interface Draft {
  id: string;
  description: string;
  enabled: boolean;
  dryRun: boolean;
  services: string[];
  actions: string[];
  maxRisk: string;
  minSavings: string;
  maxSavings: string;
  tags: string;
  excludeTags: string;
  accounts: string;
  window: string;
  /** The version being edited; null for a new policy. */
  baseVersion: number | null;
}

const EMPTY: Draft = {
  id: "",
  description: "",
  enabled: true,
  dryRun: true,
  services: [],
  actions: [],
  maxRisk: "1",
  minSavings: "",
  maxSavings: "",
  tags: "",
  excludeTags: "",
  accounts: "",
  window: "",
  baseVersion: null,
};

const tagText = (t?: Record<string, string>) =>
  Object.entries(t ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");

function fromPolicy(p: Policy): Draft {
  const m = p.match;
  return {
    id: p.id,
    description: p.description ?? "",
    enabled: p.enabled,
    dryRun: p.dryRun,
    services: m.services ?? [],
    actions: m.actions ?? [],
    maxRisk: String(m.maxRisk),
    minSavings: m.minSavingsUsd === undefined || m.minSavingsUsd === null ? "" : String(m.minSavingsUsd),
    maxSavings: m.maxSavingsUsd === undefined || m.maxSavingsUsd === null ? "" : String(m.maxSavingsUsd),
    tags: tagText(m.tags),
    excludeTags: tagText(m.excludeTags),
    accounts: (m.accounts ?? []).join(", "),
    window: p.window.join("\n"),
    baseVersion: p.version,
  };
}

class FormError extends Error {}

function parseTags(text: string, label: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf("=");
    if (at <= 0) throw new FormError(`${label}: "${line}" is not key=value.`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}

function parseAmount(text: string, label: string): number | undefined {
  if (!text.trim()) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v)) throw new FormError(`${label} is not a number.`);
  return v;
}

function body(d: Draft) {
  const match: PolicyMatch = {
    services: d.services,
    actions: d.actions,
    maxRisk: Number(d.maxRisk),
    minSavingsUsd: parseAmount(d.minSavings, "Minimum savings"),
    maxSavingsUsd: parseAmount(d.maxSavings, "Maximum savings"),
    tags: parseTags(d.tags, "Required tags"),
    excludeTags: parseTags(d.excludeTags, "Excluded tags"),
    accounts: d.accounts
      .split(/[\s,]+/)
      .map((a) => a.trim())
      .filter(Boolean),
  };
  return {
    id: d.id.trim(),
    description: d.description.trim() || undefined,
    enabled: d.enabled,
    dryRun: d.dryRun,
    match,
    window: d.window
      .split("\n")
      .map((w) => w.trim())
      .filter(Boolean),
    baseVersion: d.baseVersion ?? undefined,
  };
}

/** What a policy matches, in one line. */
export function matchText(m: PolicyMatch): string {
  const parts: string[] = [];
  parts.push(m.services?.length ? m.services.join(", ") : "any service");
  parts.push(m.actions?.length ? m.actions.join(", ") : "any action");
  parts.push(`risk ≤ ${risk(m.maxRisk)}`);
  const lo = m.minSavingsUsd ?? undefined;
  const hi = m.maxSavingsUsd ?? undefined;
  if (lo !== undefined && hi !== undefined) parts.push(`saves ${money(lo)}–${money(hi)}/mo`);
  else if (lo !== undefined) parts.push(`saves ≥ ${money(lo)}/mo`);
  else if (hi !== undefined) parts.push(`saves ≤ ${money(hi)}/mo`);
  const tags = Object.entries(m.tags ?? {});
  if (tags.length) parts.push(`tags ${tags.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  const ex = Object.entries(m.excludeTags ?? {});
  if (ex.length) parts.push(`not ${ex.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  if (m.accounts?.length) parts.push(`accounts ${m.accounts.join(", ")}`);
  return parts.join(" · ");
}

function Checks({
  legend,
  options,
  value,
  onChange,
  hint,
  narrow,
}: {
  narrow?: boolean;
  legend: string;
  options: string[];
  value: string[];
  onChange: (v: string[]) => void;
  hint: string;
}) {
  return (
    <fieldset class="checks">
      <legend>{legend}</legend>
      <p class="hint">{hint}</p>
      <div class={narrow ? "check-grid narrow" : "check-grid"}>
        {options.map((o) => (
          <label key={o} class="check">
            <input
              type="checkbox"
              checked={value.includes(o)}
              onChange={(e) =>
                onChange(e.currentTarget.checked ? [...value, o] : value.filter((x) => x !== o))
              }
            />
            {o}
          </label>
        ))}
      </div>
    </fieldset>
  );
}

export function Policies() {
  const [items, setItems] = useState<Policy[] | null>(null);
  const [loadError, setLoadError] = useState("");
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [msg, setMsg] = useState("");
  const [error, setError] = useState("");
  const [saving, setSaving] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  const load = useCallback(() => {
    api.get<{ items: Policy[] }>("/policies").then(
      (r) => {
        setItems(r.items);
        setLoadError("");
      },
      (e) => {
        setItems([]);
        setLoadError(errorText(e));
      },
    );
  }, []);
  useEffect(() => {
    if (can("admin")) load();
  }, [load]);

  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));

  function edit(p: Policy | null) {
    setDraft(p ? fromPolicy(p) : EMPTY);
    setMsg("");
    setError("");
    heading.current?.focus();
  }

  async function save(e: Event) {
    e.preventDefault();
    setMsg("");
    setError("");
    let b;
    try {
      b = body(draft);
    } catch (err) {
      setError(errorText(err));
      return;
    }
    setSaving(true);
    try {
      const p = await api.post<Policy>("/policies", b);
      setMsg(`Saved policy ${p.id}, version ${p.version}${p.dryRun ? " (dry run)" : ""}.`);
      setDraft(EMPTY);
      load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setError(
          draft.baseVersion === null
            ? `A policy named ${b.id} already exists: edit it from the list instead. (${err.message})`
            : `Policy ${b.id} was changed by someone else since version ${draft.baseVersion}: reload it from the list and apply your change again. (${err.message})`,
        );
        load();
      } else if (err instanceof ApiError) {
        setError(`The server refused the policy (${err.status}): ${err.message}`);
      } else {
        setError(errorText(err));
      }
    } finally {
      setSaving(false);
    }
  }

  if (!can("admin"))
    return (
      <section>
        <h1>Policies</h1>
        <p>Auto-approval policies are for admins.</p>
      </section>
    );
  const editing = draft.baseVersion !== null;
  return (
    <section data-testid="policies" data-state={items === null ? "loading" : "ready"}>
      <h1>Policies</h1>
      <p class="summary">
        Auto-approval policies approve matching recommendations without a person, and their changes run only inside the
        policy's windows. A dry-run policy approves nothing: it only records what it would have approved.
      </p>
      {loadError && (
        <p class="error" role="alert">
          Could not load the policies: {loadError}
        </p>
      )}
      {items === null ? (
        <p>Loading…</p>
      ) : items.length === 0 ? (
        <p class="empty card">No policies yet: every recommendation waits for a person.</p>
      ) : (
        <div class="table-wrap contain stack" tabIndex={0} role="region" aria-label="Policies">
          <table>
            <thead>
              <tr>
                <th scope="col">Policy</th>
                <th scope="col">Enabled</th>
                <th scope="col">Dry run</th>
                <th scope="col">Matches</th>
                <th scope="col">Window</th>
                <th scope="col" class="num">
                  Version
                </th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((p) => (
                <tr key={p.id} data-id={p.id}>
                  <td>
                    <strong>{p.id}</strong>
                    {p.description && <div class="hint">{p.description}</div>}
                  </td>
                  <td data-label="Enabled">{p.enabled ? "yes" : "no"}</td>
                  <td data-label="Dry run">{p.dryRun ? "yes" : "no"}</td>
                  <td class="wrap" data-label="Matches">{matchText(p.match)}</td>
                  <td class="wrap" data-label="Window">
                    {p.window.length ? (
                      <span>
                        {p.window.map((w) => (
                          <div key={w}>{w}</div>
                        ))}
                      </span>
                    ) : (
                      <span class="hint">global schedule</span>
                    )}
                  </td>
                  <td class="num" data-label="Version" title={`by ${p.updatedBy}, ${when(p.updatedAt)}`}>
                    v{p.version}
                  </td>
                  <td>
                    <button type="button" onClick={() => edit(p)}>
                      Edit<span class="sr-only"> {p.id}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2 ref={heading} tabIndex={-1} id="policy-form-title">
        {editing ? `Edit ${draft.id} (version ${draft.baseVersion})` : "New policy"}
      </h2>
      <form class="policy-form" aria-labelledby="policy-form-title" onSubmit={(e) => void save(e)} noValidate>
        <div class="fields">
          <label class="block">
            Id
            <input
              type="text"
              name="id"
              value={draft.id}
              readOnly={editing}
              required
              maxLength={64}
              pattern="[a-z0-9-]{1,64}"
              aria-describedby="policy-id-hint"
              onInput={(e) => set("id", e.currentTarget.value)}
            />
            <span class="hint" id="policy-id-hint">
              {editing ? "An id cannot change." : "1 to 64 of a-z, 0-9 and '-'."}
            </span>
          </label>
          <label class="block">
            Description
            <input
              type="text"
              name="description"
              value={draft.description}
              maxLength={1000}
              onInput={(e) => set("description", e.currentTarget.value)}
            />
          </label>
        </div>
        <div class="fields toggles">
          <label class="check">
            <input type="checkbox" checked={draft.enabled} onChange={(e) => set("enabled", e.currentTarget.checked)} />
            Enabled
          </label>
          <label class="check">
            <input type="checkbox" checked={draft.dryRun} onChange={(e) => set("dryRun", e.currentTarget.checked)} />
            Dry run (approve nothing, only record)
          </label>
        </div>

        <fieldset>
          <legend>What it matches</legend>
          <Checks
            legend="Services"
            hint="None checked: any service."
            narrow
            options={SERVICES}
            value={draft.services}
            onChange={(v) => set("services", v)}
          />
          <Checks
            legend="Actions"
            hint="None checked: any action."
            options={ACTIONS}
            value={draft.actions}
            onChange={(v) => set("actions", v)}
          />
          <div class="fields">
            <label class="block">
              Highest risk approved
              <select value={draft.maxRisk} onChange={(e) => set("maxRisk", e.currentTarget.value)}>
                {RISK.map((r, i) => (
                  <option key={r} value={String(i)}>
                    {i} {r}
                  </option>
                ))}
              </select>
            </label>
            <label class="block">
              Minimum savings (USD a month)
              <input
                type="number"
                inputMode="decimal"
                step="any"
                value={draft.minSavings}
                onInput={(e) => set("minSavings", e.currentTarget.value)}
              />
            </label>
            <label class="block">
              Maximum savings (USD a month)
              <input
                type="number"
                inputMode="decimal"
                step="any"
                value={draft.maxSavings}
                onInput={(e) => set("maxSavings", e.currentTarget.value)}
              />
            </label>
          </div>
          <div class="fields">
            <label class="block">
              Required tags
              <textarea
                rows={2}
                value={draft.tags}
                spellcheck={false}
                aria-describedby="policy-tags-hint"
                onInput={(e) => set("tags", e.currentTarget.value)}
              />
              <span class="hint" id="policy-tags-hint">
                One key=value a line, e.g. env=dev.
              </span>
            </label>
            <label class="block">
              Excluded tags
              <textarea
                rows={2}
                value={draft.excludeTags}
                spellcheck={false}
                aria-describedby="policy-extags-hint"
                onInput={(e) => set("excludeTags", e.currentTarget.value)}
              />
              <span class="hint" id="policy-extags-hint">
                One key=value a line, e.g. env=production.
              </span>
            </label>
            <label class="block">
              Accounts
              <input
                type="text"
                value={draft.accounts}
                spellcheck={false}
                aria-describedby="policy-accounts-hint"
                onInput={(e) => set("accounts", e.currentTarget.value)}
              />
              <span class="hint" id="policy-accounts-hint">
                Comma-separated; empty: any account.
              </span>
            </label>
          </div>
        </fieldset>

        <label class="block">
          Execution windows
          <textarea
            rows={3}
            value={draft.window}
            placeholder="Mon-Fri 22:00-06:00 Europe/Paris"
            spellcheck={false}
            aria-describedby="policy-window-hint"
            onInput={(e) => set("window", e.currentTarget.value)}
          />
          <span class="hint" id="policy-window-hint">
            One a line, days hours zone: Mon-Fri 22:00-06:00 Europe/Paris, Sat,Sun 02:00-05:00 UTC, daily 00:00-00:00 UTC.
            Empty: the global schedule alone. At most 20.
          </span>
        </label>

        <div class="form-actions">
          <button type="submit" class="primary" disabled={saving}>
            {editing ? `Save version ${(draft.baseVersion ?? 0) + 1}` : "Create policy"}
          </button>
          {editing && (
            <button type="button" onClick={() => edit(null)}>
              Cancel, new policy instead
            </button>
          )}
        </div>
        <p role="status" class="ok" data-testid="policy-saved">
          {msg}
        </p>
        {error && (
          <p class="error form-error" role="alert" data-testid="policy-error">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
