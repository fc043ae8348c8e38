import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useLive } from "../live";
import { errorText, when } from "../format";
import type { AuditEntry, Page } from "../types";

interface Report {
  from: string;
  to: string;
  entries: number;
  truncated: boolean;
  byAction: Record<string, number>;
  byActor: Record<string, number>;
  byOutcome: Record<string, number>;
  decisions: Record<string, unknown>[];
}

const cell = (v: unknown) => {
  const s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The compliance report as CSV: the counts, then one line per decision. */
function csv(r: Report): string {
  const lines = [["section", "key", "count"].join(",")];
  for (const [section, m] of [["action", r.byAction], ["actor", r.byActor], ["outcome", r.byOutcome]] as const) {
    for (const [k, n] of Object.entries(m)) lines.push([section, cell(k), n].join(","));
  }
  if (r.decisions.length) {
    const cols = [...new Set(r.decisions.flatMap((d) => Object.keys(d)))];
    lines.push("", cols.join(","));
    for (const d of r.decisions) lines.push(cols.map((c) => cell(d[c])).join(","));
  }
  return `# compliance report ${r.from} .. ${r.to}, ${r.entries} entries${r.truncated ? " (truncated)" : ""}\n${lines.join("\n")}\n`;
}

const iso = (d: string) => (d ? new Date(`${d}T00:00:00Z`).toISOString() : undefined);

export function Audit() {
  const [actor, setActor] = useState("");
  const [action, setAction] = useState("");
  const [entityId, setEntityId] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [items, setItems] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState("");

  const query = { actor, action, entityId, from: iso(from), to: iso(to) };
  const load = useCallback(
    async (token: string | null) => {
      try {
        const p = await api.get<Page<AuditEntry>>("/audit-trail", { ...query, limit: 50, nextToken: token });
        setItems((old) => (token ? [...old, ...p.items] : p.items));
        setNext(p.nextToken);
        setError("");
      } catch (e) {
        setError(errorText(e));
      }
    },
    [actor, action, entityId, from, to],
  );
  const loadReport = useCallback(() => {
    api.get<Report>("/audit-trail/report", { from: iso(from), to: iso(to) }).then(setReport, (e) => {
      setReport(null);
      setError(`compliance report: ${errorText(e)}`);
    });
  }, [from, to]);
  useEffect(() => {
    void load(null);
    loadReport();
  }, [load, loadReport]);
  useLive(["approvals"], (e) => e.type === "approval_decision_made" && void load(null), () => void load(null));

  function download() {
    if (!report) return;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([csv(report)], { type: "text/csv" }));
    a.download = `compliance-report-${report.from.slice(0, 10)}-${report.to.slice(0, 10)}.csv`;
    a.click();
    URL.revokeObjectURL(a.href);
  }

  return (
    <section>
      <div class="heading">
        <h1>Audit trail</h1>
        <button type="button" onClick={download} disabled={!report}>
          Download compliance report (CSV)
        </button>
      </div>
      {report && (
        <p class="summary">
          {report.entries} entries from {when(report.from)} to {when(report.to)}; {Object.entries(report.byOutcome).map(([k, n]) => `${n} ${k}`).join(", ")}.
        </p>
      )}
      <form class="filters" aria-label="Filter the audit trail" onSubmit={(e) => e.preventDefault()}>
        <label>
          Actor
          <input type="text" value={actor} onChange={(e) => setActor(e.currentTarget.value)} />
        </label>
        <label>
          Action
          <input type="text" value={action} placeholder="approval.approved" onChange={(e) => setAction(e.currentTarget.value)} />
        </label>
        <label>
          Entity id
          <input type="text" value={entityId} onChange={(e) => setEntityId(e.currentTarget.value)} />
        </label>
        <label>
          From
          <input type="date" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        </label>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Table">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Entity</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => (
              <tr key={a.id}>
                <td>{when(a.at)}</td>
                <td>{a.actor}</td>
                <td>{a.action}</td>
                <td>
                  {a.entityType === "approval_request" ? <a href={`/requests/${a.entityId}`}>{a.entityId.slice(0, 8)}</a> : `${a.entityType} ${a.entityId.slice(0, 8)}`}
                </td>
                <td>{a.outcome ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {next && (
        <button type="button" onClick={() => void load(next)}>
          Load more
        </button>
      )}
    </section>
  );
}
