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

interface Tally {
  executions: number;
  estimatedMonthlyUsd: number;
  realisedMonthlyUsd: number;
  fromEstimate: number;
}

interface Realised {
  days: number;
  savings: { total: Tally; byService: Record<string, Tally>; rolledBack: number };
}

export function Savings() {
  const [totals, setTotals] = useState<Totals | null>(null);
  const [realised, setRealised] = useState<Realised | null>(null);
  const load = () => {
    api.get<{ totals: Totals }>("/recommendations").then((r) => setTotals(r.totals), () => setTotals(null));
    // Realised savings exist once executions are counted (SPEC 10); until
    // the API has GET /savings the section stays hidden.
    if (offers("GET /savings")) api.get<Realised>("/savings").then(setRealised, () => setRealised(null));
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
          <p class="summary" data-testid="realised">
            Realised: <strong>{money(realised.savings.total.realisedMonthlyUsd, true)}</strong>/month from <strong>{realised.savings.total.executions}</strong> executed
            changes in the last {realised.days} days (estimated {money(realised.savings.total.estimatedMonthlyUsd, true)}
            {realised.savings.total.fromEstimate ? `; ${realised.savings.total.fromEstimate} counted at their estimate` : ""}
            {realised.savings.rolledBack ? `; ${realised.savings.rolledBack} rolled back, no longer counted` : ""}).
          </p>
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Realised savings by service">
            <table>
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col" class="num">Executed</th>
                  <th scope="col" class="num">Estimated $/month</th>
                  <th scope="col" class="num">Realised $/month</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(realised.savings.byService).map(([k, v]) => (
                  <tr key={k}>
                    <td>{k}</td>
                    <td class="num">{v.executions}</td>
                    <td class="num">{money(v.estimatedMonthlyUsd)}</td>
                    <td class="num">{money(v.realisedMonthlyUsd)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
