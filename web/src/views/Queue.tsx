import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { can } from "../auth";
import { useLive, type LiveEvent } from "../live";
import { errorText, money, risk } from "../format";
import type { ApprovalRequest, Page } from "../types";
import { useVirtual } from "../components/useVirtual";

const STATUSES = ["pending", "approved", "rejected", "expired", "cancelled", "scheduled", "executing", "executed", "failed", "rolled_back"];
const SERVICES = ["ec2", "rds", "elasticache", "lambda", "ecs", "s3", "dynamodb"];
type SortKey = "savings" | "risk" | "confidence" | "resource" | "created";

interface Totals {
  count: number;
  monthlySavingsUsd: number;
  unpriced?: number;
}

const ROW = 64;
const PAGE = 100;

function account(r: ApprovalRequest) {
  return r.recommendation.accountId ?? "";
}
function owner(r: ApprovalRequest) {
  return r.recommendation.owner ?? r.recommendation.tags?.owner ?? r.recommendation.tags?.team ?? "";
}

export function Queue() {
  const [status, setStatus] = useState("pending");
  const [service, setService] = useState("");
  const [finding, setFinding] = useState("");
  const [acct, setAcct] = useState("");
  const [own, setOwn] = useState("");
  const [maxRisk, setMaxRisk] = useState(4);
  const [minSavings, setMinSavings] = useState(0);
  const [sort, setSort] = useState<SortKey>("savings");
  const [items, setItems] = useState<ApprovalRequest[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState("");
  const [totals, setTotals] = useState<Totals | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState("");

  const load = useCallback(
    async (token: string | null, replace: boolean) => {
      setLoading(true);
      try {
        const page = await api.get<Page<ApprovalRequest>>("/approval-requests", {
          status,
          service,
          limit: PAGE,
          nextToken: token,
        });
        setItems((old) => (replace ? page.items : [...old, ...page.items.filter((i) => !old.some((o) => o.id === i.id))]));
        setNext(page.nextToken);
        setError("");
      } catch (e) {
        setError(errorText(e));
      } finally {
        setLoading(false);
      }
    },
    [status, service],
  );

  const refresh = useCallback(() => {
    setSelected(new Set());
    void load(null, true);
    api.get<{ totals: Totals }>("/recommendations").then((r) => setTotals(r.totals), () => setTotals(null));
  }, [load]);
  useEffect(refresh, [refresh]);

  useLive(
    ["approvals"],
    (e: LiveEvent) => {
      const req = e.request as ApprovalRequest | undefined;
      if (!req?.id) return;
      if (e.type === "approval_request_created" && req.status === status && (!service || req.recommendation.service === service)) {
        setItems((old) => (old.some((o) => o.id === req.id) ? old : [req, ...old]));
      } else if (e.type !== "approval_request_created") {
        setItems((old) => old.map((o) => (o.id === req.id && req.version >= o.version ? req : o)));
      }
    },
    refresh,
  );

  const findings = useMemo(() => [...new Set(items.map((i) => i.recommendation.finding))].sort(), [items]);
  const accounts = useMemo(() => [...new Set(items.map(account).filter(Boolean))].sort(), [items]);
  const owners = useMemo(() => [...new Set(items.map(owner).filter(Boolean))].sort(), [items]);

  const rows = useMemo(() => {
    const f = items.filter(
      (i) =>
        (!finding || i.recommendation.finding === finding) &&
        (!acct || account(i) === acct) &&
        (!own || owner(i) === own) &&
        i.recommendation.risk <= maxRisk &&
        (minSavings <= 0 || (i.recommendation.monthlySavingsUsd ?? 0) >= minSavings),
    );
    const key: Record<SortKey, (r: ApprovalRequest) => number | string> = {
      savings: (r) => -(r.recommendation.monthlySavingsUsd ?? -Infinity),
      risk: (r) => r.recommendation.risk,
      confidence: (r) => -r.recommendation.confidence,
      resource: (r) => r.recommendation.resourceId,
      created: (r) => r.createdAt,
    };
    const k = key[sort];
    return f.sort((a, b) => {
      const x = k(a);
      const y = k(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }, [items, finding, acct, own, maxRisk, minSavings, sort]);

  const { scrollRef, items: visible, total } = useVirtual(rows.length, ROW);
  // The first page renders at once; the rest follow in the background, a
  // page at a time, so sorting and filtering see every request.
  useEffect(() => {
    if (next && !loading && !error) void load(next, false);
  }, [next, loading, error, load]);

  const shownSavings = rows.reduce((s, r) => s + (r.recommendation.monthlySavingsUsd ?? 0), 0);
  const approver = can("approver");

  async function decide(kind: "approve" | "reject") {
    if (kind === "reject" && !reason.trim()) {
      setError("A rejection needs a reason.");
      return;
    }
    const ids = [...selected];
    setBusy(`${kind === "approve" ? "Approving" : "Rejecting"} ${ids.length}…`);
    const failed: string[] = [];
    // Four at a time: each decision is its own transaction on the server.
    for (let i = 0; i < ids.length; i += 4) {
      await Promise.all(
        ids.slice(i, i + 4).map(async (id) => {
          try {
            const body = reason.trim() ? { reason: reason.trim() } : {};
            const r = await api.post<{ request?: ApprovalRequest } & Partial<ApprovalRequest>>(`/approval-requests/${id}/${kind}`, body);
            const updated = (r.request ?? r) as ApprovalRequest;
            if (updated?.id) setItems((old) => old.map((o) => (o.id === updated.id ? updated : o)));
          } catch (e) {
            failed.push(`${id.slice(0, 8)}: ${e instanceof ApiError ? e.message : errorText(e)}`);
          }
        }),
      );
    }
    setSelected(new Set());
    setReason("");
    setBusy("");
    setError(failed.length ? `${failed.length} failed: ${failed.slice(0, 3).join("; ")}` : "");
  }

  function toggle(id: string) {
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  }
  const pendingRows = rows.filter((r) => r.status === "pending");
  const allSelected = pendingRows.length > 0 && pendingRows.every((r) => selected.has(r.id));

  return (
    <section class="queue">
      <div class="heading">
        <h1>Approval queue</h1>
        <p class="summary" data-testid="queue-summary">
          {totals && (
            <span>
              Latest cycle: <strong>{totals.count}</strong> recommendations, <strong>{money(totals.monthlySavingsUsd, true)}</strong>/month estimated.{" "}
            </span>
          )}
          <span>
            Shown: <strong>{rows.length}</strong> requests{next ? " (loading more…)" : ""}, {money(shownSavings, true)}/month.
          </span>
        </p>
      </div>
      <form class="filters" aria-label="Filter and sort" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Service
          <select value={service} onChange={(e) => setService(e.currentTarget.value)}>
            <option value="">all</option>
            {SERVICES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Finding
          <select value={finding} onChange={(e) => setFinding(e.currentTarget.value)}>
            <option value="">all</option>
            {findings.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Account
          <select value={acct} onChange={(e) => setAcct(e.currentTarget.value)}>
            <option value="">all</option>
            {accounts.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Owner
          <select value={own} onChange={(e) => setOwn(e.currentTarget.value)}>
            <option value="">all</option>
            {owners.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Max risk
          <select value={maxRisk} onChange={(e) => setMaxRisk(Number(e.currentTarget.value))}>
            {[0, 1, 2, 3, 4].map((r) => (
              <option key={r} value={r}>
                {risk(r)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Min $/month
          <input type="number" min={0} step={10} value={minSavings} onInput={(e) => setMinSavings(Number(e.currentTarget.value) || 0)} />
        </label>
        <label>
          Sort by
          <select value={sort} onChange={(e) => setSort(e.currentTarget.value as SortKey)}>
            <option value="savings">savings</option>
            <option value="risk">risk</option>
            <option value="confidence">confidence</option>
            <option value="resource">resource</option>
            <option value="created">created</option>
          </select>
        </label>
      </form>
      {approver && (
        <div class="bulk" role="group" aria-label="Bulk decision">
          <label class="check">
            <input
              type="checkbox"
              checked={allSelected}
              onChange={() => setSelected(allSelected ? new Set() : new Set(pendingRows.map((r) => r.id)))}
            />
            Select all pending shown ({pendingRows.length})
          </label>
          <label class="reason-field">
            Reason
            <input type="text" value={reason} maxLength={500} placeholder="required to reject" onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="button" class="primary" disabled={!selected.size || !!busy} onClick={() => void decide("approve")}>
            Approve {selected.size || ""}
          </button>
          <button type="button" class="danger" disabled={!selected.size || !!busy} onClick={() => void decide("reject")}>
            Reject {selected.size || ""}
          </button>
          {busy && <span role="status">{busy}</span>}
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="list-head" aria-hidden="true">
        <span />
        <span>Resource</span>
        <span>Action</span>
        <span>Risk</span>
        <span>Confidence</span>
        <span class="num">$/month</span>
        <span>Status</span>
      </div>
      <div class="scroller" ref={scrollRef} data-testid="queue-scroller">
        <ul class="rows" style={{ height: `${total}px` }} aria-label="Approval requests" data-count={rows.length}>
          {visible.map((v) => {
            const r = rows[v.index];
            const rec = r.recommendation;
            return (
              <li key={r.id} class="row" style={{ transform: `translateY(${v.start}px)`, height: `${ROW}px` }} data-id={r.id} data-status={r.status}>
                <span class="sel">
                  {approver && r.status === "pending" && (
                    <input type="checkbox" checked={selected.has(r.id)} onChange={() => toggle(r.id)} aria-label={`Select ${rec.resourceId}`} />
                  )}
                </span>
                <span class="res">
                  <a href={`/requests/${r.id}`}>{rec.resourceId}</a>
                  <small>
                    {rec.service} · {rec.finding}
                    {rec.region ? ` · ${rec.region}` : ""}
                  </small>
                </span>
                <span class="act">
                  {rec.action.replace(/_/g, " ")}
                  {rec.targetType ? ` → ${rec.targetType}` : ""}
                </span>
                <span class={`risk r${rec.risk}`}>{risk(rec.risk)}</span>
                <span class="conf">{Math.round(rec.confidence * 100)}%</span>
                <span class="num money">{money(rec.monthlySavingsUsd)}</span>
                <span class={`status s-${r.status}`}>{r.status}</span>
              </li>
            );
          })}
        </ul>
        {!loading && rows.length === 0 && <p class="empty">No requests match.</p>}
      </div>
      {loading && <p role="status">Loading…</p>}
    </section>
  );
}
