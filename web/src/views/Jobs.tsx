import { useCallback, useEffect, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { can } from "../auth";
import { useLive } from "../live";
import { errorText, money, when } from "../format";

interface Run {
  jobId: string;
  runId: string;
  status?: string;
  dryRun?: boolean;
  findings?: number;
  recommendations?: number;
  resourcesAnalysed?: number;
  monthlySavingsUsd?: number;
  startedAt?: string;
  finishedAt?: string;
}
interface Status {
  running: boolean;
  runs: Run[];
}
interface Progress {
  jobId: string;
  stage: string;
  percent: number;
  state: "running" | "succeeded" | "failed";
  error?: string;
}

export function Jobs() {
  const [status, setStatus] = useState<Status | null>(null);
  const [live, setLive] = useState<Record<string, Progress>>({});
  const [note, setNote] = useState("");
  const [error, setError] = useState("");

  const load = useCallback(() => {
    api.get<Status>("/scheduler/status").then(setStatus, (e) => setError(errorText(e)));
  }, []);
  useEffect(load, [load]);

  const track = useCallback((jobId: string, p: Partial<Progress>) => {
    setLive((old) => {
      const base: Progress = old[jobId] ?? { jobId, stage: "queued", percent: 0, state: "running" };
      return { ...old, [jobId]: { ...base, ...p } };
    });
  }, []);

  useLive(
    ["jobs"],
    (e) => {
      const jobId = e.jobId as string | undefined;
      if (!jobId) return;
      if (e.type === "job.progress") track(jobId, { stage: String(e.stage), percent: Number(e.percent ?? 0) });
      if (e.type === "job.completed") {
        track(jobId, { stage: "done", percent: 100, state: "succeeded" });
        load();
      }
      if (e.type === "job.failed") {
        track(jobId, { state: "failed", error: JSON.stringify(e.error) });
        load();
      }
    },
    load,
  );

  async function run() {
    setError("");
    try {
      const r = await api.post<{ jobId: string; status: string }>("/scheduler/trigger", {});
      track(r.jobId, { stage: r.status });
      setNote(`Cycle ${r.jobId.slice(0, 8)} queued.`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 429) {
        const jobId = e.details?.jobId as string | undefined;
        setNote(`${e.message}. Try again in ${e.details?.retryAfterSeconds ?? 60} s.`);
        if (jobId) api.get<{ status: string }>(`/jobs/${jobId}`).then((j) => track(jobId, { stage: j.status, state: j.status === "succeeded" ? "succeeded" : j.status === "failed" ? "failed" : "running", percent: j.status === "succeeded" ? 100 : 0 }));
      } else setError(errorText(e));
    }
  }

  const progress = Object.values(live);
  return (
    <section>
      <div class="heading">
        <h1>Jobs</h1>
        {can("operator") && (
          <button type="button" class="primary" onClick={() => void run()}>
            Run cycle
          </button>
        )}
      </div>
      {note && <p role="status">{note}</p>}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {progress.length > 0 && (
        <ul class="progress-list">
          {progress.map((p) => (
            <li key={p.jobId} data-testid="job-progress" data-state={p.state}>
              <label>
                <span>
                  Cycle {p.jobId.slice(0, 8)}: {p.state === "running" ? p.stage : p.state} ({Math.round(p.percent)}%)
                </span>
                <progress max={100} value={p.percent} aria-label={`Cycle ${p.jobId.slice(0, 8)} progress`} />
              </label>
              {p.error && <small class="error">{p.error}</small>}
            </li>
          ))}
        </ul>
      )}
      <h2>Recent cycles {status?.running ? "(one is running)" : ""}</h2>
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Table">
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">Resources</th>
              <th scope="col" class="num">Recommendations</th>
              <th scope="col" class="num">$/month</th>
            </tr>
          </thead>
          <tbody>
            {(status?.runs ?? []).map((r) => (
              <tr key={r.runId}>
                <td>{when(r.startedAt ?? r.finishedAt)}</td>
                <td>
                  {r.status ?? (r.finishedAt ? "finished" : "running")}
                  {r.dryRun ? " (dry run)" : ""}
                </td>
                <td class="num">{r.resourcesAnalysed ?? ""}</td>
                <td class="num">{r.recommendations ?? ""}</td>
                <td class="num">{money(r.monthlySavingsUsd, true)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
