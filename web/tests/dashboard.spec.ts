import { expect, test } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { base, consoleErrors, serious, signIn } from "./helpers";

const shots = resolve(import.meta.dirname, "../../target/screenshots");
mkdirSync(shots, { recursive: true });

test("an approver approves; another approver sees it live, without reload", async ({ browser }) => {
  const a = await signIn(browser, "local-approver");
  const rows = a.locator("li.row");
  await expect(rows.first()).toBeVisible();
  await expect(a.getByTestId("queue-summary")).toContainText("$");
  // Sorted by savings: the first row saves the most.
  const first = rows.first();
  const id = await first.getAttribute("data-id");
  expect(id).toBeTruthy();
  await expect(first.locator(".money")).toContainText("$");

  const b = await signIn(browser, "local-approver-2");
  const other = b.locator(`li.row[data-id="${id}"]`);
  await expect(other).toHaveAttribute("data-status", "pending");

  await first.locator("a").click();
  await expect(a).toHaveURL(new RegExp(`/requests/${id}$`));
  await expect(a.getByTestId("chart").first().locator("canvas")).toBeVisible({ timeout: 30_000 });
  await a.getByRole("button", { name: "Approve" }).click();
  await expect(a.getByTestId("status")).toHaveText("approved");
  await expect(a.getByTestId("decisions")).toContainText("local-approver");

  // No reload on b: the decision arrives over its WebSocket.
  await expect(other).toHaveAttribute("data-status", "approved");
  expect(consoleErrors(a)).toEqual([]);
  expect(consoleErrors(b)).toEqual([]);
});

test("a viewer sees no approve button, and a forced approval is refused", async ({ browser }) => {
  const v = await signIn(browser, "local-viewer");
  const row = v.locator("li.row").first();
  await expect(row).toBeVisible();
  await expect(v.locator("li.row input[type=checkbox]")).toHaveCount(0);
  await expect(v.getByRole("button", { name: /^Approve/ })).toHaveCount(0);
  const id = await row.getAttribute("data-id");
  await row.locator("a").click();
  await expect(v.getByTestId("status")).toBeVisible();
  await expect(v.getByRole("button", { name: "Approve" })).toHaveCount(0);
  const status = await v.evaluate(async (rid) => {
    const token = sessionStorage.getItem("finops.session");
    const r = await fetch(`/api/approval-requests/${rid}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: "{}",
    });
    return r.status;
  }, id);
  expect(status).toBe(403);
  await expect(v.getByTestId("status")).toHaveText("pending");
});

test("an operator runs a cycle and watches it complete", async ({ browser }) => {
  const o = await signIn(browser, "local-operator");
  await o.getByRole("link", { name: "Jobs" }).click();
  await o.getByRole("button", { name: "Run cycle" }).click();
  const bar = o.getByTestId("job-progress").first();
  await expect(bar).toBeVisible();
  await expect(bar).toHaveAttribute("data-state", "succeeded", { timeout: 120_000 });
  await expect(bar.locator("progress")).toHaveAttribute("value", "100");
  expect(consoleErrors(o)).toEqual([]);
});

const VIEWS: [string, string, (p: import("@playwright/test").Page) => Promise<void>][] = [
  ["queue", "/", async (p) => {
    await expect(p.locator("li.row").first()).toBeVisible();
    await expect(p.getByTestId("queue-summary")).toContainText("Latest cycle");
    await expect(p.getByTestId("queue-summary")).not.toContainText("loading");
  }],
  ["request", "", async (p) => void (await expect(p.getByTestId("chart").first().locator("canvas")).toBeVisible({ timeout: 30_000 }))],
  ["jobs", "/jobs", async (p) => void (await expect(p.locator("tbody tr").first()).toBeVisible())],
  ["costs", "/costs", async (p) => void (await expect(p.locator(".chart canvas")).toBeVisible())],
  ["savings", "/savings", async (p) => void (await expect(p.locator("tbody tr").first()).toBeVisible())],
  ["audit", "/audit", async (p) => {
    await expect(p.locator("tbody tr").first()).toBeVisible();
    await expect(p.getByRole("button", { name: /compliance report/ })).toBeEnabled();
  }],
  ["thresholds", "/thresholds", async (p) => void (await expect(p.locator("tbody tr").first()).toBeVisible())],
  ["policies", "/policies", async (p) => {
    await expect(p.getByTestId("policies")).toHaveAttribute("data-state", "ready");
    await expect(p.getByRole("button", { name: "Create policy" })).toBeVisible();
  }],
];

for (const width of [1280, 390]) {
  test(`every view at ${width} px: no serious accessibility violation, no console error; screenshots`, async ({ browser }) => {
    const p = await signIn(browser, "local-admin", width);
    await expect(p.locator("li.row").first()).toBeVisible();
    // A request on an EC2 instance: its evidence is a stored series, so the
    // request view draws a chart (a derived metric's has none).
    const first = await p.evaluate(async () => {
      const token = sessionStorage.getItem("finops.session");
      const r = await fetch("/api/approval-requests?status=pending&service=ec2&limit=100", {
        headers: { authorization: `Bearer ${token}` },
      });
      return ((await r.json()) as { items: { id: string }[] }).items[0]?.id ?? null;
    });
    expect(first).toBeTruthy();
    const found: string[] = [];
    for (const [name, path, ready] of VIEWS) {
      await p.goto(`${base()}${path || `/requests/${first}`}`);
      await expect(p.getByTestId("live")).toHaveText(/Live/);
      await ready(p);
      await p.screenshot({ path: `${shots}/${name}-${width}.png`, fullPage: name !== "queue" });
      found.push(...(await serious(p)).map((v) => `${name}: ${v}`));
    }
    expect(found).toEqual([]);
    expect(consoleErrors(p)).toEqual([]);
  });
}

test("the sign-in page is accessible", async ({ page }) => {
  await page.goto(`${base()}/`);
  await expect(page.locator("button[data-user]").first()).toBeVisible();
  await page.screenshot({ path: `${shots}/signin-1280.png` });
  expect(await serious(page)).toEqual([]);
});

test("the compliance report downloads as CSV", async ({ browser }) => {
  const p = await signIn(browser, "local-viewer");
  await p.getByRole("link", { name: "Audit" }).click();
  const button = p.getByRole("button", { name: /compliance report/ });
  await expect(button).toBeEnabled();
  const [download] = await Promise.all([p.waitForEvent("download"), button.click()]);
  expect(download.suggestedFilename()).toMatch(/^compliance-report-.*\.csv$/);
  const path = await download.path();
  const text = (await import("node:fs")).readFileSync(path!, "utf8");
  expect(text).toMatch(/^# compliance report /);
  expect(text).toContain("action,approval.requested,");
});

test("the queue works from the keyboard", async ({ browser }) => {
  const p = await signIn(browser, "local-approver");
  await expect(p.locator("li.row").first()).toBeVisible();
  const link = p.locator("li.row a").first();
  // From the last filter, Tab walks the bulk controls into the list.
  await p.getByLabel("Sort by").focus();
  for (let i = 0; i < 12 && !(await link.evaluate((el) => el === document.activeElement)); i++) {
    await p.keyboard.press("Tab");
  }
  await expect(link).toBeFocused();
  const outline = await link.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline).not.toBe("none");
  await p.keyboard.press("Enter");
  await expect(p).toHaveURL(/\/requests\//);
  await expect(p.getByTestId("status")).toBeVisible();
});

test("bulk approve with a reason", async ({ browser }) => {
  const p = await signIn(browser, "local-approver");
  await p.getByLabel("Sort by").selectOption("resource");
  const rows = p.locator('li.row[data-status="pending"]');
  await expect(rows.nth(1)).toBeVisible();
  const ids = [await rows.nth(0).getAttribute("data-id"), await rows.nth(1).getAttribute("data-id")];
  for (const id of ids) await p.locator(`li.row[data-id="${id}"] input[type=checkbox]`).check();
  await p.getByLabel("Reason").fill("bulk: owner agreed");
  await p.getByRole("button", { name: "Approve 2" }).click();
  for (const id of ids) await expect(p.locator(`li.row[data-id="${id}"]`)).toHaveAttribute("data-status", "approved");
  const r = await fetch(`${base()}/api/approval-requests/${ids[0]}`, {
    headers: { authorization: `Bearer ${await p.evaluate(() => sessionStorage.getItem("finops.session"))}` },
  });
  const body = (await r.json()) as { decisions: { reason: string; actor: string }[] };
  expect(body.decisions[0]).toMatchObject({ reason: "bulk: owner agreed", actor: "local-approver" });
});

test("live updates come back after the connection drops, with what was missed", async ({ browser }) => {
  const p = await signIn(browser, "local-viewer");
  const context = p.context();
  const row = p.locator('li.row[data-status="pending"]').first();
  await expect(row).toBeVisible();
  const id = await row.getAttribute("data-id");
  await context.setOffline(true);
  await expect(p.getByTestId("live")).toContainText("Offline");
  // Decided while this tab hears nothing.
  const users = (await (await fetch(`${base()}/local/tokens`)).json()) as { users: { user: string; token: string }[] };
  const admin = users.users.find((u) => u.user === "local-admin")!.token;
  const r = await fetch(`${base()}/api/approval-requests/${id}/reject`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "decided while offline" }),
  });
  expect(r.status).toBe(200);
  await context.setOffline(false);
  await expect(p.getByTestId("live")).toHaveText(/Live/);
  await expect(p.locator(`li.row[data-id="${id}"]`)).toHaveCount(0); // refetched: no longer pending
});

test("an admin creates a dry-run policy through the form and sees it listed; a non-admin has no Policies view", async ({ browser }) => {
  const a = await signIn(browser, "local-admin");
  await a.getByRole("link", { name: "Policies" }).click();
  await expect(a.getByRole("heading", { name: "Policies", level: 1 })).toBeVisible();
  await expect(a.getByTestId("policies")).toHaveAttribute("data-state", "ready");
  const id = `night-dev-${Date.now().toString(36)}`;
  await a.getByLabel("Id").fill(id);
  await a.getByLabel("Description").fill("dev instances at night");
  await expect(a.getByLabel(/^Dry run/)).toBeChecked();
  await a.getByRole("group", { name: "Services" }).getByLabel("ec2").check();
  await a.getByRole("group", { name: "Actions" }).getByLabel("stop", { exact: true }).check();
  await a.getByLabel("Highest risk approved").selectOption("1");
  await a.getByLabel("Required tags").fill("env=dev");
  await a.getByLabel("Excluded tags").fill("env=production");

  // A window the server cannot read: its message is shown, nothing is saved.
  await a.getByLabel("Execution windows").fill("Someday 22:00-06:00 Europe/Paris");
  await a.getByRole("button", { name: "Create policy" }).click();
  await expect(a.getByTestId("policy-error")).toContainText("(400)");
  await expect(a.getByTestId("policy-error")).toContainText("Someday");
  await expect(a.locator(`tr[data-id="${id}"]`)).toHaveCount(0);

  await a.getByLabel("Execution windows").fill("Mon-Fri 22:00-06:00 Europe/Paris");
  await a.getByRole("button", { name: "Create policy" }).click();
  await expect(a.getByTestId("policy-saved")).toContainText(`Saved policy ${id}, version 1 (dry run)`);
  await expect(a.getByTestId("policy-error")).toHaveCount(0);
  const row = a.locator(`tr[data-id="${id}"]`);
  await expect(row).toContainText("Mon-Fri 22:00-06:00 Europe/Paris");
  await expect(row).toContainText("ec2");
  await expect(row).toContainText("not env=production");
  await expect(row.locator("td").nth(2)).toHaveText("yes"); // dry run
  await expect(row).toContainText("v1");
  expect(await serious(a)).toEqual([]);
  await a.screenshot({ path: `${shots}/policies-listed-1280.png`, fullPage: true });
  await a.setViewportSize({ width: 390, height: 844 });
  await a.screenshot({ path: `${shots}/policies-listed-390.png`, fullPage: true });
  await a.setViewportSize({ width: 1280, height: 900 });

  // Edited from the list: the form names the version it is based on.
  await row.getByRole("button", { name: `Edit ${id}` }).click();
  await expect(a.getByRole("heading", { name: `Edit ${id} (version 1)` })).toBeFocused();
  await expect(a.getByLabel("Id")).toHaveAttribute("readonly", "");
  await a.getByRole("button", { name: "Save version 2" }).click();
  await expect(row).toContainText("v2");
  // The refused window's 400 is the one error the browser logs.
  expect(consoleErrors(a).filter((e) => !/status of 400/.test(e))).toEqual([]);

  const o = await signIn(browser, "local-approver");
  await expect(o.getByRole("link", { name: "Jobs" })).toBeVisible();
  await expect(o.getByRole("link", { name: "Policies" })).toHaveCount(0);
  await o.goto(`${base()}/policies`);
  await expect(o.getByText("Auto-approval policies are for admins.")).toBeVisible();
});

test("an approver previews, executes and rolls back a volume's type change; the page follows the execution live", async ({ browser }) => {
  const a = await signIn(browser, "local-approver");
  await expect(a.locator("li.row").first()).toBeVisible();
  // A gp2 volume the demo estate created through EC2's API, still pending.
  const id = await a.evaluate(async () => {
    const token = sessionStorage.getItem("finops.session");
    const r = await fetch("/api/approval-requests?status=pending&service=ebs&limit=100", {
      headers: { authorization: `Bearer ${token}` },
    });
    const page = (await r.json()) as { items: { id: string; recommendation: { action: string } }[] };
    return page.items.find((i) => i.recommendation.action === "change_storage_class")?.id ?? null;
  });
  expect(id).toBeTruthy();
  await a.goto(`${base()}/requests/${id}`);
  await expect(a.getByTestId("status")).toHaveText("pending");
  await a.getByRole("button", { name: "Approve" }).click();
  await expect(a.getByTestId("status")).toHaveText("approved");

  const execution = a.getByRole("group", { name: "Execution" });
  await execution.getByRole("button", { name: "Preview" }).click();
  // The processor read the volume live: its type now, every check, the step
  // and the type after, in words (the whole answer stays one click away).
  const preview = execution.getByRole("region", { name: "Preview" });
  await expect(preview).toContainText("volumeType gp2", { timeout: 15_000 });
  await expect(preview.locator("ul.checks li")).toContainText(["exclusion tag", "drift", "executable", "window"]);
  await expect(preview.locator("ul.checks li.failed")).toHaveCount(0);
  await expect(preview).toContainText("Steps: ebs modify type");
  await expect(preview).toContainText(/After: .*type gp3/);
  await expect(preview).toContainText("AWS dry runs: would succeed");
  await preview.getByText("The whole answer").click();
  await expect(preview.locator("pre.json")).toContainText('"checks"');

  await execution.getByRole("button", { name: "Execute" }).click();
  // No reload: optimization_action_executed arrives over the WebSocket.
  await expect(a.getByTestId("status")).toHaveText("executed", { timeout: 30_000 });
  await expect(a.getByTestId("decisions")).toContainText("executing");

  await execution.getByLabel("Rollback reason").fill("latency on the batch job");
  await execution.getByRole("button", { name: "Roll back" }).click();
  await expect(a.getByTestId("status")).toHaveText("rolled_back", { timeout: 30_000 });
  await expect(execution.getByRole("status")).toContainText("The request is now rolled_back");
  await a.screenshot({ path: resolve(shots, "request-rolled-back.png"), fullPage: true });
  expect(consoleErrors(a)).toEqual([]);
});
