// The dashboard's figures (docs/benchmarks.md): the initial load's gzip
// size, the time to the first rendered queue on the demo estate, and the
// frame time while scrolling 10,000 requests.
import { expect, test, type Browser } from "@playwright/test";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { startStack } from "../stack";

const dist = resolve(import.meta.dirname, "../../dist");
const out = resolve(import.meta.dirname, "../../../target/web-bench.json");
const figures: Record<string, unknown> = {};

function record(name: string, value: unknown) {
  figures[name] = value;
  console.log(`  ${name}: ${JSON.stringify(value)}`);
  mkdirSync(resolve(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(figures, null, 2));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function approverPage(browser: Browser, base: string) {
  const users = (await (await fetch(`${base}/local/tokens`)).json()) as { users: { user: string; token: string }[] };
  const token = users.users.find((u) => u.user === "local-approver")!.token;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Signed in before the first byte, and a clock on the first rendered row.
  await context.addInitScript((t: string) => {
    sessionStorage.setItem("finops.session", t);
    new MutationObserver((_, obs) => {
      if (document.querySelector("li.row")) {
        (window as unknown as { firstRow: number }).firstRow = performance.now();
        obs.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  }, token);
  return context.newPage();
}

test("initial load size (gzip)", async () => {
  const html = readFileSync(resolve(dist, "index.html"), "utf8");
  const refs = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]);
  const sizes = [["index.html", html] as const, ...refs.map((r) => [r, readFileSync(resolve(dist, r))] as const)].map(
    ([name, body]) => ({ name, raw: Buffer.byteLength(body), gzip: gzipSync(body, { level: 9 }).length }),
  );
  record("initialLoadGzipBytes", sizes.reduce((s, x) => s + x.gzip, 0));
  record("initialLoadRawBytes", sizes.reduce((s, x) => s + x.raw, 0));
  record("initialLoadFiles", sizes);
});

test("time to the first rendered queue on the demo estate", async ({ browser }) => {
  const stack = await startStack();
  try {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const page = await approverPage(browser, stack.base);
      await page.goto(`${stack.base}/`);
      await expect(page.locator("li.row").first()).toBeVisible();
      times.push(await page.evaluate(() => (window as unknown as { firstRow: number }).firstRow));
      await page.context().close();
    }
    record("firstQueueMs", { median: Math.round(median(times)), max: Math.round(Math.max(...times)), runs: times.map(Math.round) });
  } finally {
    await stack.stop();
  }
});

test("frame time while scrolling 10,000 requests", async ({ browser }) => {
  const n = 10_000;
  const stack = await startStack({ SEED: "none", FINOPS_BENCH_REQUESTS: String(n) }, "benchmark approval requests opened");
  try {
    const page = await approverPage(browser, stack.base);
    const started = Date.now();
    await page.goto(`${stack.base}/`);
    await expect(page.locator("li.row").first()).toBeVisible();
    record("firstRowsWith10kMs", Math.round(await page.evaluate(() => (window as unknown as { firstRow: number }).firstRow)));
    await expect(page.locator("ul.rows")).toHaveAttribute("data-count", String(n), { timeout: 600_000 });
    record("all10kLoadedMs", Date.now() - started);
    const frames = await page.evaluate(
      () =>
        new Promise<number[]>((done) => {
          const el = document.querySelector<HTMLElement>("[data-testid=queue-scroller]")!;
          const deltas: number[] = [];
          let last = performance.now();
          const end = last + 5000;
          const step = (t: number) => {
            deltas.push(t - last);
            last = t;
            el.scrollTop += 400;
            if (el.scrollTop + el.clientHeight >= el.scrollHeight) el.scrollTop = 0;
            if (t < end) requestAnimationFrame(step);
            else done(deltas.slice(1));
          };
          requestAnimationFrame(step);
        }),
    );
    const rendered = await page.locator("li.row").count();
    record("scroll10k", {
      frames: frames.length,
      p50Ms: +median(frames).toFixed(1),
      p95Ms: +pct(frames, 95).toFixed(1),
      p99Ms: +pct(frames, 99).toFixed(1),
      maxMs: +Math.max(...frames).toFixed(1),
      over33Ms: frames.filter((f) => f > 33.4).length,
      rowsInDom: rendered,
    });
  } finally {
    await stack.stop();
  }
});
