import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useLive } from "../live";
import { money } from "../format";
import { offers } from "../config";

interface Totals {
  count: number;
  monthlySavingsUsd: number;
  unpriced?: number;
  byService: Record<string, { count: number; monthlySavingsUsd: number }>;
}

export function Savings() {
  const [totals, setTotals] = useState<Totals | null>(null);
  const [realised, setRealised] = useState<unknown>(null);
  const load = () => {
    api.get<{ totals: Totals }>("/recommendations").then((r) => setTotals(r.totals), () => setTotals(null));
    // Realised savings exist once executions are counted (SPEC 10); until
    // the API has GET /savings the section stays hidden.
    if (offers("GET /savings")) api.get<unknown>("/savings").then(setRealised, () => setRealised(null));
  };
  useEffect(load, []);
  useLive(["approvals"], (e) => e.type === "optimization_action_executed" && load(), load);
  const services = Object.entries(totals?.byService ?? {}).sort((a, b) => b[1].monthlySavingsUsd - a[1].monthlySavingsUsd);
  const max = Math.max(1, ...services.map(([, v]) => v.monthlySavingsUsd));
  return (
    <section>
      <h1>Savings</h1>
      {totals && (
        <p class="summary">
          Estimated: <strong>{money(totals.monthlySavingsUsd, true)}</strong>/month over <strong>{totals.count}</strong> recommendations
          {totals.unpriced ? ` (${totals.unpriced} without a price)` : ""}.
        </p>
      )}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Table">
        <table>
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col" class="num">
                Recommendations
              </th>
              <th scope="col" class="num">
                Estimated $/month
              </th>
              <th scope="col" class="bar-col">
                Share
              </th>
            </tr>
          </thead>
          <tbody>
            {services.map(([k, v]) => (
              <tr key={k}>
                <td>{k}</td>
                <td class="num">{v.count}</td>
                <td class="num">{money(v.monthlySavingsUsd)}</td>
                <td class="bar-col">
                  <span class="bar" style={{ width: `${(100 * v.monthlySavingsUsd) / max}%` }} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {!offers("GET /savings") && <p class="hint">Realised savings are counted from executions, which this API does not carry out yet.</p>}
      {realised !== null && (
        <>
          <h2>Realised</h2>
          <pre class="json">{JSON.stringify(realised, null, 2)}</pre>
        </>
      )}
    </section>
  );
}
