// Starts the real local stack (`finops-dev`, what `make dev` runs) on free
// ports, and stops it after the run. Its output goes to
// target/finops-dev-web.log.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");

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

export interface Stack {
  base: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

/**
 * `env` is added to the stack's environment; the stack is ready when the API
 * answers and its output contains `ready` (by default: the demo's metric
 * series are stored, which the charts read, and the start-up cycle has run).
 */
export async function startStack(env: Record<string, string> = {}, ready = "demo metrics stored"): Promise<Stack> {
  const bin = process.env.FINOPS_DEV_BIN ?? resolve(root, "target/debug/finops-dev");
  const [rest, ws, emulator] = [await freePort(), await freePort(), await freePort()];
  mkdirSync(resolve(root, "target"), { recursive: true });
  const file = createWriteStream(resolve(root, "target/finops-dev-web.log"));
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
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const keep = (d: Buffer) => {
    log += d;
    file.write(d);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const base = `http://127.0.0.1:${rest}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGINT");
    for (let i = 0; i < 50 && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    if (child.exitCode === null) child.kill("SIGKILL");
    file.end();
  };
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`finops-dev exited:\n${log}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the local stack was not ready in 600 s:\n${log}`);
    }
    const healthy = await fetch(`${base}/api/health`).then((r) => r.ok, () => false);
    if (healthy && log.includes(ready)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { base, child, stop };
}

export default async function globalSetup() {
  const stack = await startStack();
  process.env.FINOPS_WEB_URL = stack.base;
  return stack.stop;
}
