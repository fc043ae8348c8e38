import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { can } from "../auth";
import { errorText, when } from "../format";
import type { Page, ThresholdSet } from "../types";

export function Thresholds() {
  const [current, setCurrent] = useState<ThresholdSet | null>(null);
  const [history, setHistory] = useState<ThresholdSet[]>([]);
  const [draft, setDraft] = useState("");
  const [note, setNote] = useState("");
  const [msg, setMsg] = useState("");
  const [error, setError] = useState("");
  const load = useCallback(() => {
    api.get<ThresholdSet>("/thresholds").then(
      (t) => {
        setCurrent(t);
        setDraft(JSON.stringify(t.rules, null, 2));
      },
      (e) => setError(errorText(e)),
    );
    api.get<Page<ThresholdSet>>("/thresholds/history", { limit: 50 }).then((p) => setHistory(p.items), () => setHistory([]));
  }, []);
  useEffect(load, [load]);

  async function save() {
    setMsg("");
    try {
      const rules = JSON.parse(draft) as unknown;
      const r = await api.post<{ version?: number }>("/thresholds", { rules, note: note || undefined });
      setMsg(`Saved as version ${r.version ?? "new"}.`);
      setNote("");
      setError("");
      load();
    } catch (e) {
      setError(errorText(e));
    }
  }

  if (!can("admin")) return <section><h1>Thresholds</h1><p>Thresholds are for admins.</p></section>;
  return (
    <section>
      <h1>Thresholds</h1>
      {current && (
        <p class="summary">
          Version <strong>{current.version}</strong> by {current.createdBy}, {when(current.createdAt)}: {current.rules.length} rules.
        </p>
      )}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Table">
        <table>
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Service</th>
              <th scope="col">Finding → action</th>
              <th scope="col">Conditions</th>
              <th scope="col" class="num">
                Lookback
              </th>
            </tr>
          </thead>
          <tbody>
            {(current?.rules ?? []).map((r) => (
              <tr key={r.id}>
                <td>{r.id}</td>
                <td>{r.service}</td>
                <td>
                  {r.finding} → {r.action}
                </td>
                <td>
                  {r.conditions
                    .map((c) => `${c.statistic} ${c.metric} ${c.operator} ${c.value}${c.upper !== undefined ? `..${c.upper}` : ""}`)
                    .join("; ")}
                </td>
                <td class="num">{r.lookbackDays} d</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>New version</h2>
      <label class="block">
        Rules (JSON)
        <textarea rows={12} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} spellcheck={false} />
      </label>
      <label class="block">
        Note
        <input type="text" value={note} maxLength={1000} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <button type="button" class="primary" onClick={() => void save()}>
        Save as a new version
      </button>
      {msg && <p role="status">{msg}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <h2>History</h2>
      {history.length ? (
        <ul class="plain">
          {history.map((h) => (
            <li key={h.version}>
              v{h.version}: {when(h.createdAt)} by <strong>{h.createdBy}</strong>, {h.rules.length} rules{h.note ? `: ${h.note}` : ""}
            </li>
          ))}
        </ul>
      ) : (
        <p>Only the built-in version so far.</p>
      )}
    </section>
  );
}
