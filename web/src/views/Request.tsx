import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { api } from "../api";
import { can } from "../auth";
import { useLive } from "../live";
import { errorText, money, risk, ruleOf, when } from "../format";
import type { ApprovalRequest, AuditEntry, Decision, Page, Rule, ThresholdSet } from "../types";
import { Chart, type Line } from "../components/Chart";
import { offers } from "../config";

interface Check {
  name: string;
  passed: boolean;
  detail: unknown;
}

interface PreviewBody {
  preState?: { details?: Record<string, unknown> } | null;
  plan?: { steps?: { op: string }[]; intended?: { gone?: boolean; fields?: Record<string, string> } };
  checks?: Check[];
  dryRuns?: unknown[];
}

interface Answer {
  jobId?: string;
  status?: string;
  preview?: PreviewBody;
}

/** One line of plain facts: `key value` pairs of the scalar fields. */
function facts(o: Record<string, unknown> | undefined): string {
  if (!o) return "";
  return Object.entries(o)
    .filter(([k, v]) => k !== "kind" && (typeof v === "string" || typeof v === "number" || typeof v === "boolean"))
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(", ");
}

function compact(v: unknown): string {
  if (v === null || v === undefined) return "";
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

/** A dry run's verdict (`would_succeed`, `refused` with its reason, `not_offered`) in words. */
function dryRun(d: unknown): string {
  const o = (d ?? {}) as { result?: string; reason?: string };
  if (!o.result) return compact(d);
  return o.result.replace(/_/g, " ") + (o.reason ? `: ${o.reason}` : "");
}

/** What the API answered, in words: the preview's checks, steps and intended state, or the queued job. */
function AnswerView({ answer, status }: { answer: Answer; status: string }) {
  const p = answer.preview;
  if (!p) {
    return (
      <p role="status">
        Queued as job <code>{answer.jobId}</code>; this page follows the execution live. The request is now{" "}
        <strong>{status}</strong>.
      </p>
    );
  }
  const intended = p.plan?.intended;
  return (
    <div class="preview" role="region" aria-label="Preview">
      <h3>Checks</h3>
      <ul class="checks">
        {(p.checks ?? []).map((c) => (
          <li key={c.name} class={c.passed ? "ok" : "failed"}>
            <span aria-hidden="true">{c.passed ? "✓" : "✗"}</span> {c.name.replace(/_/g, " ")}
            {c.passed ? "" : " (fails)"}
            {!c.passed && compact(c.detail) && <span class="hint"> {compact(c.detail)}</span>}
          </li>
        ))}
      </ul>
      <p>
        <strong>Now:</strong> {facts(p.preState?.details) || "the resource was not found"}
      </p>
      {p.plan ? (
        <>
          <p>
            <strong>Steps:</strong> {(p.plan.steps ?? []).map((s) => s.op.replace(/_/g, " ")).join(" → ") || "none"}
          </p>
          <p>
            <strong>After:</strong>{" "}
            {intended?.gone ? "the resource is removed (a backup is kept where AWS offers one)" : facts(intended?.fields)}
          </p>
        </>
      ) : (
        <p>Nothing would be changed: a check fails.</p>
      )}
      {(p.dryRuns ?? []).length > 0 && (
        <p>
          <strong>AWS dry runs:</strong> {(p.dryRuns ?? []).map(dryRun).join("; ")}
        </p>
      )}
      <details>
        <summary>The whole answer</summary>
        <pre class="json" tabIndex={0} aria-label="Answer">
          {JSON.stringify(answer, null, 2)}
        </pre>
      </details>
    </div>
  );
}

/** Preview / execute / roll back, offered only where the API has the routes (SPEC 10). */
function Execution({ id, status, onDone }: { id: string; status: string; onDone: () => void }) {
  const [out, setOut] = useState<Answer | null>(null);
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const run = async (what: "preview" | "execute" | "rollback") => {
    try {
      setOut(await api.post<Answer>(`/approval-requests/${id}/${what}`, what === "rollback" ? { reason } : {}));
      setError("");
      if (what !== "preview") onDone();
    } catch (e) {
      setError(errorText(e));
    }
  };
  if (!can("approver")) return <p class="hint">Approvers preview, execute and roll back.</p>;
  return (
    <div class="decide" role="group" aria-label="Execution">
      <button type="button" onClick={() => void run("preview")}>Preview</button>
      {["approved", "scheduled"].includes(status) && offers("POST /approval-requests/{id}/execute") && (
        <button type="button" class="primary" onClick={() => void run("execute")}>Execute</button>
      )}
      {["executed", "failed"].includes(status) && offers("POST /approval-requests/{id}/rollback") && (
        <>
          <label>
            Rollback reason
            <input type="text" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="button" class="danger" disabled={!reason.trim()} onClick={() => void run("rollback")}>Roll back</button>
        </>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      {out !== null && <AnswerView answer={out} status={status} />}
    </div>
  );
}

interface Series {
  metric: string;
  x: number[];
  y: number[];
}

/** A metric's points over the rule's lookback (at most 31 days, the API's bound), every page. */
async function series(resourceId: string, metric: string, days: number): Promise<Series> {
  const to = new Date();
  const from = new Date(to.getTime() - Math.min(days, 31) * 86_400_000);
  const x: number[] = [];
  const y: number[] = [];
  let token: string | null = null;
  for (let i = 0; i < 50; i++) {
    const p: { points: { timestamp: string; value: number }[]; nextToken: string | null } = await api.get(
      `/metrics/${encodeURIComponent(resourceId)}`,
      { metric, from: from.toISOString(), to: to.toISOString(), limit: 100, nextToken: token },
    );
    for (const pt of p.points) {
      x.push(Date.parse(pt.timestamp) / 1000);
      y.push(pt.value);
    }
    token = p.nextToken;
    if (!token) break;
  }
  return { metric, x, y };
}

function Evidence({ rule, resourceId }: { rule: Rule | null; resourceId: string }) {
  const [data, setData] = useState<Series[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!rule) return;
    const metrics = [...new Set(rule.conditions.map((c) => c.metric))];
    Promise.all(metrics.map((m) => series(resourceId, m, rule.lookbackDays))).then(setData, (e) => setError(errorText(e)));
  }, [rule, resourceId]);
  const charts = useMemo(
    () =>
      (data ?? []).map((s) => {
        const conds = rule?.conditions.filter((c) => c.metric === s.metric) ?? [];
        const lines: Line[] = [{ label: s.metric, values: s.y, color: "#1d4ed8" }];
        for (const c of conds) {
          const bound = c.operator === "between" ? c.upper ?? c.value : c.value;
          lines.push({ label: `threshold (${c.statistic} ${c.operator} ${bound})`, values: s.x.map(() => bound), color: "#b91c1c", dash: [6, 4] });
        }
        return { s, lines, conds };
      }),
    [data, rule],
  );
  if (!rule) return <p>The rule this recommendation cites is not in the current thresholds.</p>;
  if (error) return <p class="error">{error}</p>;
  if (!data) return <p role="status">Loading the metric series…</p>;
  return (
    <>
      {charts.map(({ s, lines, conds }) =>
        s.x.length ? (
          <div key={s.metric} class="evidence" data-testid="chart">
            <h3>
              {s.metric} over {rule.lookbackDays} days
            </h3>
            <Chart x={s.x} lines={lines} label={`${s.metric} of ${resourceId} against the threshold`} />
            <p class="hint">
              Stored samples; the rule compares the {rule.aggregation ?? "daily"} {conds.map((c) => c.statistic).join(" / ")} with the dashed line.
            </p>
          </div>
        ) : (
          <p key={s.metric} class="hint">
            No stored samples of {s.metric} (derived metrics are computed from their parts).
          </p>
        ),
      )}
    </>
  );
}

export function RequestView({ id }: { id: string }) {
  const [req, setReq] = useState<ApprovalRequest | null>(null);
  const [decisions, setDecisions] = useState<Decision[]>([]);
  const [audit, setAudit] = useState<AuditEntry[]>([]);
  const [rule, setRule] = useState<Rule | null>(null);
  const [reason, setReason] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    api.get<{ request: ApprovalRequest; decisions: Decision[] }>(`/approval-requests/${id}`).then(
      (r) => {
        setReq(r.request);
        setDecisions(r.decisions);
      },
      (e) => setError(errorText(e)),
    );
    api.get<Page<AuditEntry>>("/audit-trail", { entityId: id, limit: 50 }).then((p) => setAudit(p.items), () => setAudit([]));
  }, [id]);
  useEffect(load, [load]);

  const rec = req?.recommendation;
  useEffect(() => {
    if (!rec) return;
    const rid = ruleOf(rec.reason);
    api.get<ThresholdSet>("/thresholds").then((t) => setRule(t.rules.find((r) => r.id === rid) ?? null), () => setRule(null));
  }, [rec?.id]);

  useLive(
    rec ? [`resource:${rec.resourceId}`] : [],
    (e) => {
      // Execution events name the request (execution.progress, execution.failed)
      // or carry it (optimization_action_executed, rollback.completed).
      const r = e.request as ApprovalRequest | undefined;
      if (r?.id === id || e.requestId === id) load();
    },
    load,
  );

  async function decide(kind: "approve" | "reject") {
    if (kind === "reject" && !reason.trim()) {
      setError("A rejection needs a reason.");
      return;
    }
    setBusy(true);
    try {
      await api.post(`/approval-requests/${id}/${kind}`, reason.trim() ? { reason: reason.trim() } : {});
      setReason("");
      setError("");
      load();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  if (!req || !rec) {
    return <section>{error ? <p class="error" role="alert">{error}</p> : <p role="status">Loading…</p>}</section>;
  }
  return (
    <section class="request">
      <p>
        <a href="/">← Queue</a>
      </p>
      <h1>
        {rec.action.replace(/_/g, " ")} {rec.resourceId}
      </h1>
      <p class="facts">
        <span class={`status s-${req.status}`} data-testid="status">
          {req.status}
        </span>
        <span>
          {rec.service} · {rec.finding}
          {rec.region ? ` · ${rec.region}` : ""}
          {rec.accountId ? ` · account ${rec.accountId}` : ""}
          {rec.owner ? ` · owner ${rec.owner}` : ""}
        </span>
      </p>
      <dl class="kpis">
        <div>
          <dt>Saves</dt>
          <dd class="money">{money(rec.monthlySavingsUsd)}/month</dd>
        </div>
        <div>
          <dt>Risk</dt>
          <dd>{risk(rec.risk)}</dd>
        </div>
        <div>
          <dt>Confidence</dt>
          <dd>{Math.round(rec.confidence * 100)}%</dd>
        </div>
        <div>
          <dt>Expires</dt>
          <dd>{when(req.expiresAt)}</dd>
        </div>
      </dl>
      <h2>Why</h2>
      <p class="reason">{rec.reason}</p>
      {can("approver") && req.status === "pending" && (
        <div class="decide" role="group" aria-label="Decision">
          <label>
            Reason
            <input type="text" value={reason} maxLength={500} placeholder="optional to approve, required to reject" onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="button" class="primary" disabled={busy} onClick={() => void decide("approve")}>
            Approve
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => void decide("reject")}>
            Reject
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <h2>Evidence</h2>
      <Evidence rule={rule} resourceId={rec.resourceId} />
      <h2>Alternatives</h2>
      {rec.alternatives.length ? (
        <ul class="plain">
          {rec.alternatives.map((a, i) => (
            <li key={i}>
              <strong>{a.action.replace(/_/g, " ")}</strong>
              {a.targetType ? ` → ${a.targetType}` : ""}: {money(a.monthlySavingsUsd)}/month, risk {risk(a.risk)}. <small>{a.description}</small>
            </li>
          ))}
        </ul>
      ) : (
        <p>None.</p>
      )}
      <h2>Dependencies</h2>
      {rec.dependencies.length ? (
        <ul class="plain">
          {rec.dependencies.map((d) => (
            <li key={d}>{d}</li>
          ))}
        </ul>
      ) : (
        <p>None known.</p>
      )}
      <h2>Execution</h2>
      {offers("POST /approval-requests/{id}/preview") ? (
        <Execution id={id} status={req.status} onDone={load} />
      ) : (
      <p class="hint">
        Preview, execute and roll back appear here once the API offers them (SPEC section 10); today an approved request is carried out by a person and
        recorded with <code>POST /approval-requests/{"{id}"}/execute</code>.
      </p>
      )}
      <h2>Approval history</h2>
      {decisions.length ? (
        <ul class="plain" data-testid="decisions">
          {decisions.map((d, i) => (
            <li key={i}>
              {when(d.decidedAt)}: <strong>{d.actor}</strong> {d.from} → {d.to}
              {d.reason ? `: “${d.reason}”` : ""}
            </li>
          ))}
        </ul>
      ) : (
        <p>No decision yet.</p>
      )}
      <h2>Audit entries</h2>
      <ul class="plain">
        {audit.map((a) => (
          <li key={a.id}>
            {when(a.at)}: {a.action} by <strong>{a.actor}</strong>
            {a.outcome ? ` (${a.outcome})` : ""}
          </li>
        ))}
      </ul>
    </section>
  );
}
