// What the browser scripts share: Debian's chromium through playwright-core, every
// request recorded (none may leave 127.0.0.1, none may fail but those a step allows), no
// console error, screenshots, an axe-core check of every screen shot (and of any other
// screen a script names), and one JSON report on stdout: exit 1 when a step fails, a
// request or the console says something went wrong, or axe finds a serious or critical
// violation (on a screen checked strictly, such as /docs: any violation).
//
// Inputs from the environment: ASSETVAULT_URL (the server), ASSETVAULT_TOKEN (a write
// token), UI_ARTIFACTS (where screenshots and downloads go), UI_PROFILES (a fresh
// directory for the browsers' user data dirs).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const URL_ = process.env.ASSETVAULT_URL;
export const TOKEN = process.env.ASSETVAULT_TOKEN;
export const ARTIFACTS = process.env.UI_ARTIFACTS;
const PROFILES = process.env.UI_PROFILES;
const TIMEOUT = 30_000;
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(ARTIFACTS, { recursive: true });

export const report = { steps: [], screenshots: [], foreign: [], failedRequests: [], consoleErrors: [], allowed: [], axe: [] };
/** "METHOD /path" of every request the browsers sent to the server, in order. */
export const requested = [];
const allowedFailures = []; // {method, pattern, status}: failures a step causes on purpose
export const allow = (method, pattern, status) => allowedFailures.push({ method, pattern, status });
/** URLs of requests a step aborts on purpose (their failure is not the page's). */
export const aborted = [];
const abortable = []; // URL parts whose requests the browser itself may drop (ERR_ABORTED)
/** Requests whose URL holds `part` may be dropped by the browser (a <video> drops a range
 * it no longer needs): they are listed in `aborted`, not as failures. */
export const mayAbort = (part) => abortable.push(part);
const isAllowed = (method, url, status) =>
  allowedFailures.some((a) => a.method === method && a.pattern.test(url) && a.status === status);
const contexts = [];

/** A fresh browser (a persistent context named `name`) at `viewport`; `options` go to
 * chromium's launch (extra `args`, `colorScheme`, ...). -> {context, page} */
export async function browser(name, viewport = DESKTOP, options = {}) {
  const { args = [], ...rest } = options;
  const context = await chromium.launchPersistentContext(join(PROFILES, name), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", ...args],
    viewport,
    acceptDownloads: true,
    ...rest,
  });
  contexts.push(context);
  context.setDefaultTimeout(TIMEOUT);
  context.on("request", (req) => {
    const u = new URL(req.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.hostname !== "127.0.0.1") report.foreign.push(req.url());
    if (u.hostname === "127.0.0.1") requested.push(`${req.method()} ${u.pathname}`);
  });
  context.on("requestfailed", (req) => {
    const error = req.failure()?.errorText;
    if (error === "net::ERR_ABORTED" && abortable.some((part) => req.url().includes(part))) aborted.push(req.url());
    if (!aborted.includes(req.url())) report.failedRequests.push({ method: req.method(), url: req.url(), error });
  });
  context.on("response", (res) => {
    if (res.status() < 400) return;
    const entry = { method: res.request().method(), url: res.url(), status: res.status() };
    (isAllowed(entry.method, entry.url, entry.status) ? report.allowed : report.failedRequests).push(entry);
  });
  const watch = (page) => {
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      // Chromium logs every 4xx answer to a fetch; the allowed ones are not the page's errors.
      const m = /status of (\d+)/.exec(msg.text());
      const url = msg.location()?.url || "";
      if (m && allowedFailures.some((a) => a.pattern.test(url) && a.status === Number(m[1]))) return;
      report.consoleErrors.push({ text: msg.text(), url });
    });
    page.on("pageerror", (err) => report.consoleErrors.push({ text: String(err) }));
  };
  context.pages().forEach(watch);
  context.on("page", watch);
  const page = context.pages()[0] || (await context.newPage());
  return { context, page };
}

/**
 * axe-core on the screen as it is now; its violations are recorded in report.axe, and a
 * serious or critical one fails the run (finish); with `strict`, a violation of any
 * impact does. The script is run through the DevTools protocol (page.evaluate), which
 * the pages' CSP does not govern.
 */
export async function accessible(page, screen, { strict = false } = {}) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const violations = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        nodes: v.nodes.length,
        help: v.help,
        where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
        why: v.nodes[0]?.failureSummary?.slice(0, 300),
      })),
    ),
  );
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.axe.push({
    screen,
    violations: violations.length,
    serious: serious.length,
    ...(strict ? { strict } : {}),
    ...(violations.length ? { found: violations } : {}),
  });
}

/** Did axe find what fails a run on this screen (see accessible)? */
export const axeFails = (a) => a.serious > 0 || (a.strict && a.violations > 0);

/** A screenshot of the screen (the whole page, or the window), and axe on it (`axe`:
 * accessible's options). */
export async function shot(page, name, fullPage = true, axe = {}) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  report.screenshots.push(file);
  await accessible(page, name, axe);
}

export async function step(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    report.steps.push({ name, ok: true, ms: Date.now() - started, ...(detail ? { detail } : {}) });
  } catch (err) {
    report.steps.push({ name, ok: false, ms: Date.now() - started, error: String(err?.stack || err) });
    for (const [i, c] of contexts.entries()) {
      for (const [j, p] of c.pages().entries()) {
        await p.screenshot({ path: join(ARTIFACTS, `failed-${i}-${j}.png`), fullPage: true }).catch(() => {});
      }
    }
    throw err;
  }
}

export function expect(cond, message) {
  if (!cond) throw new Error(message);
}

export async function api(method, path, body, headers = {}) {
  const r = await fetch(URL_ + path, {
    method,
    body,
    headers: { Authorization: `Bearer ${TOKEN}`, "X-Api-Key": "browser-test", ...headers },
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r;
}

export async function signIn(page) {
  await page.goto(URL_ + "/");
  await page.getByLabel("Token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Assetvault" }).waitFor();
}

// A hash-only page.goto resolves before the app has re-rendered: until then the last
// screen is still on the page. What a step reads or clicks next must belong to the screen
// it navigated to, so it first waits for that screen by what it shows:
/** The asset page of `id` (an asset page carries the id of the asset it shows). */
export const assetShown = (page, id) => page.locator(`main.asset[data-asset-id=${JSON.stringify(id)}]`).waitFor();
/** The folder page of `path` (a folder page carries its path). */
export const folderShown = (page, path) => page.locator(`main.browse[data-path=${JSON.stringify(path)}]`).waitFor();

/**
 * The total the search page shows for `query` (a URL query string such as
 * "q=*&folder=/content/dam/x"), read once the page answers that very query: the total
 * carries the query it answers (data-query), so the last query's total, still shown
 * right after a navigation, is never taken for this one's. -> the number of results.
 */
export async function searchTotal(page, query) {
  const text = await page.waitForFunction((want) => {
    const norm = (q) => JSON.stringify([...new URLSearchParams(q)].sort());
    const el = document.querySelector("[data-testid=total]");
    return el && norm(el.dataset.query) === norm(want) ? el.textContent : null;
  }, query);
  return Number((await text.jsonValue()).split(" ")[0]);
}

/** How far the page is wider than its window (0 or less: no sideways scrolling). */
export const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

/** Runs `main`, prints the report and exits: 0 when all went well. */
export function finish(main) {
  const done = async (error) => {
    if (error) report.error = String(error?.stack || error);
    for (const c of contexts) await c.close().catch(() => {});
    report.ok =
      !report.error &&
      report.steps.every((s) => s.ok) &&
      !report.foreign.length &&
      !report.failedRequests.length &&
      !report.consoleErrors.length &&
      !report.axe.some(axeFails);
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    process.exit(report.ok ? 0 : 1);
  };
  main().then(() => done(), done);
}
