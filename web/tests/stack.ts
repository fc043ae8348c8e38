// Starts the real local stack (`finops-dev`, what `make dev` runs) on free
// ports with the demo estate, and stops it after the run.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { resolve } from "node:path";

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => ok(port));
    });
  });
}

export default async function globalSetup() {
  const root = resolve(import.meta.dirname, "../..");
  const bin = process.env.FINOPS_DEV_BIN ?? resolve(root, "target/debug/finops-dev");
  const [rest, ws, emulator] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(bin, [], {
    cwd: root,
    env: {
      ...process.env,
      SEED: "demo",
      FINOPS_REST_PORT: String(rest),
      FINOPS_WS_PORT: String(ws),
      FINOPS_EMULATOR_PORT: String(emulator),
      FINOPS_WEB_DIR: resolve(root, "web/dist"),
      RUST_LOG: "warn,finops_dev=info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${rest}`;
  const deadline = Date.now() + 240_000;
  // Ready: the API answers and the demo's metric series are stored (the
  // charts read them), which also means the start-up cycle has run.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`finops-dev exited:\n${log}`);
    if (Date.now() > deadline) {
      child.kill("SIGINT");
      throw new Error(`the local stack was not ready in 240 s:\n${log}`);
    }
    const healthy = await fetch(`${base}/api/health`).then((r) => r.ok, () => false);
    if (healthy && log.includes("demo metrics stored")) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  process.env.FINOPS_WEB_URL = base;
  return async () => {
    child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 3000));
    if (child.exitCode === null) child.kill("SIGKILL");
  };
}
