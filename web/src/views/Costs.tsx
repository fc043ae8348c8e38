import { useEffect, useMemo, useState } from "preact/hooks";
import { api } from "../api";
import { useLive } from "../live";
import { errorText, money } from "../format";
import { Chart, type Line } from "../components/Chart";

interface Group {
  key: string;
  amount: number;
}
interface Report {
  byGroup: Group[];
  periods: { start?: string; end: string; total?: number; groups: Group[] }[];
}
interface Forecast {
  days: { date: string; mean: number; lower: number; upper: number }[];
}

const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#57534e"];
const day = (d: string) => Date.parse(`${d.slice(0, 10)}T00:00:00Z`) / 1000;

export function Costs() {
  const [groupBy, setGroupBy] = useState("service");
  const [report, setReport] = useState<Report | null>(null);
  const [forecast, setForecast] = useState<Forecast | null>(null);
  const [error, setError] = useState("");
  const load = () => {
    api.get<Report>("/costs", { granularity: "DAILY", groupBy }).then(setReport, (e) => setError(errorText(e)));
    api.get<Forecast>("/costs/forecast", { days: 30 }).then(setForecast, () => setForecast(null));
  };
  useEffect(load, [groupBy]);
  useLive(["costs"], (e) => e.type === "cost.report" && load(), load);

  const chart = useMemo(() => {
    if (!report) return null;
    const periods = [...report.periods].sort((a, b) => (a.end < b.end ? -1 : 1));
    const hist = periods.map((p) => day(p.start ?? p.end));
    const fc = forecast?.days ?? [];
    const x = [...hist, ...fc.map((f) => day(f.date))];
    const pad = (v: (number | null)[], before: number, after: number) => [...Array(before).fill(null), ...v, ...Array(after).fill(null)];
    const top = report.byGroup.filter((g) => g.amount > 0).slice(0, 6).map((g) => g.key);
    const lines: Line[] = [
      {
        label: "total",
        values: pad(periods.map((p) => p.total ?? p.groups.reduce((s, g) => s + g.amount, 0)), 0, fc.length),
        color: "#111827",
        width: 2,
      },
      ...top.map((k, i) => ({
        label: k,
        values: pad(periods.map((p) => p.groups.find((g) => g.key === k)?.amount ?? 0), 0, fc.length),
        color: COLORS[(i + 1) % COLORS.length],
      })),
    ];
    let band: [number, number] | undefined;
    if (fc.length) {
      const n = lines.length;
      lines.push({ label: "forecast upper", values: pad(fc.map((f) => f.upper), hist.length, 0), color: "#93c5fd", dash: [2, 2] });
      lines.push({ label: "forecast", values: pad(fc.map((f) => f.mean), hist.length, 0), color: "#2563eb", dash: [6, 4], width: 2 });
      lines.push({ label: "forecast lower", values: pad(fc.map((f) => f.lower), hist.length, 0), color: "#93c5fd", dash: [2, 2] });
      band = [n + 1, n + 3];
    }
    return { x, lines, band };
  }, [report, forecast]);

  const total = report?.byGroup.reduce((s, g) => s + g.amount, 0) ?? 0;
  const fcTotal = forecast?.days.reduce((s, d) => s + d.mean, 0) ?? 0;
  return (
    <section>
      <div class="heading">
        <h1>Costs</h1>
        <label>
          Group by{" "}
          <select value={groupBy} onChange={(e) => setGroupBy(e.currentTarget.value)}>
            <option value="service">service</option>
            <option value="LINKED_ACCOUNT">account</option>
          </select>
        </label>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="summary">
        Period total <strong>{money(total, true)}</strong>
        {forecast && (
          <>
            ; next 30 days forecast <strong>{money(fcTotal, true)}</strong> (shaded: the forecast's interval)
          </>
        )}
        .
      </p>
      {chart && <Chart x={chart.x} lines={chart.lines} band={chart.band} height={300} label="Daily cost with the 30-day forecast" yLabel="USD/day" />}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Table">
        <table>
          <thead>
            <tr>
              <th scope="col">{groupBy === "service" ? "Service" : "Account"}</th>
              <th scope="col" class="num">
                Cost
              </th>
            </tr>
          </thead>
          <tbody>
            {(report?.byGroup ?? []).map((g) => (
              <tr key={g.key}>
                <td>{g.key}</td>
                <td class="num">{money(g.amount)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
