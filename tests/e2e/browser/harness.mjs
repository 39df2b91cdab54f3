// What search.mjs and merge.mjs share: Debian's chromium through playwright-core, every
// request recorded (none may leave 127.0.0.1, none may fail but those a step allows), no
// console error, screenshots, and one JSON report on stdout (exit 1 when a step fails).
//
// Inputs from the environment: ASSETVAULT_URL (the server), ASSETVAULT_TOKEN (a write
// token), UI_ARTIFACTS (where screenshots go), UI_PROFILES (a fresh directory for the
// browsers' user data dirs).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export const URL_ = process.env.ASSETVAULT_URL;
export const TOKEN = process.env.ASSETVAULT_TOKEN;
const ARTIFACTS = process.env.UI_ARTIFACTS;
const PROFILES = process.env.UI_PROFILES;
const TIMEOUT = 30_000;
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };
mkdirSync(ARTIFACTS, { recursive: true });

export const report = { steps: [], screenshots: [], foreign: [], failedRequests: [], consoleErrors: [], allowed: [] };
const allowedFailures = []; // {method, pattern, status}: failures a step causes on purpose
export const allow = (method, pattern, status) => allowedFailures.push({ method, pattern, status });
const isAllowed = (method, url, status) =>
  allowedFailures.some((a) => a.method === method && a.pattern.test(url) && a.status === status);
const openPages = [];

export async function browser(name, viewport) {
  const context = await chromium.launchPersistentContext(join(PROFILES, name), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking"],
    viewport,
  });
  context.setDefaultTimeout(TIMEOUT);
  context.on("request", (req) => {
    const u = new URL(req.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.hostname !== "127.0.0.1") report.foreign.push(req.url());
  });
  context.on("requestfailed", (req) => report.failedRequests.push({ method: req.method(), url: req.url(), error: req.failure()?.errorText }));
  context.on("response", (res) => {
    if (res.status() < 400) return;
    const entry = { method: res.request().method(), url: res.url(), status: res.status() };
    (isAllowed(entry.method, entry.url, entry.status) ? report.allowed : report.failedRequests).push(entry);
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // Chromium logs every 4xx answer to a fetch; the allowed ones are not the page's errors.
    const m = /status of (\d+)/.exec(msg.text());
    const url = msg.location()?.url || "";
    if (m && allowedFailures.some((a) => a.pattern.test(url) && a.status === Number(m[1]))) return;
    report.consoleErrors.push({ text: msg.text(), url });
  });
  page.on("pageerror", (err) => report.consoleErrors.push({ text: String(err) }));
  openPages.push(page);
  return { context, page };
}

export async function shot(page, name) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  report.screenshots.push(file);
}

export async function step(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    report.steps.push({ name, ok: true, ms: Date.now() - started, ...(detail ? { detail } : {}) });
  } catch (err) {
    report.steps.push({ name, ok: false, ms: Date.now() - started, error: String(err?.stack || err) });
    for (const [i, p] of openPages.entries()) {
      await p.screenshot({ path: join(ARTIFACTS, `failed-${i}.png`), fullPage: true }).catch(() => {});
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

/** How far the page is wider than its window (0 or less: no sideways scrolling). */
export const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

export function finish(main) {
  main()
    .then(() => {
      report.ok = !report.foreign.length && !report.failedRequests.length && !report.consoleErrors.length;
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      process.exit(report.ok ? 0 : 1);
    })
    .catch((err) => {
      report.ok = false;
      report.error = String(err?.stack || err);
      process.stdout.write(JSON.stringify(report, null, 2) + "\n");
      process.exit(1);
    });
}
