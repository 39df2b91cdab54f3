// Share links, /docs' Authorize control and the dark theme, in Debian's chromium driven by
// playwright-core. Prints a JSON report on stdout; exits 1 when a step fails.
//
//   node share_docs_theme.mjs   (reads its inputs from the environment)
//     ASSETVAULT_URL   the server, http://127.0.0.1:<port>
//     ASSETVAULT_TOKEN a write token
//     UI_FOLDER        a folder holding the seeded images, e.g. /content/dam/shared-e2e
//     UI_FILES         JSON {name: sha1} of the seeded images
//     UI_ARTIFACTS     where screenshots go
//     UI_PROFILES      a fresh directory for the browsers' user data dirs
//
// A link made in the UI opens in a fresh browser without any token, shows thumbnails and
// a preview, and downloads byte for byte; revoked on the Share links page, it says so.
// /docs shows no token anywhere (page text, curl snippet), Authorize takes one and "Try it
// out" succeeds. In dark mode the background is dark. axe-core finds no serious or
// critical violation on any of these screens, light and dark. No request may leave
// 127.0.0.1 or fail (but the refused revoked link); no console error may appear.
import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const URL_ = process.env.ASSETVAULT_URL;
const TOKEN = process.env.ASSETVAULT_TOKEN;
const FOLDER = process.env.UI_FOLDER;
const FILES = JSON.parse(process.env.UI_FILES);
const ARTIFACTS = process.env.UI_ARTIFACTS;
const PROFILES = process.env.UI_PROFILES;
const TIMEOUT = 30_000;
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(ARTIFACTS, { recursive: true });

const report = { steps: [], screenshots: [], foreign: [], failedRequests: [], consoleErrors: [], allowed: [], axe: [] };
// The revoked link's info answers 410, on purpose.
const allowed = [{ method: "GET", pattern: /\/s\/avs_[^/]+\/info$/, status: 410 }];
const isAllowed = (method, url, status) => allowed.some((a) => a.method === method && a.pattern.test(url) && a.status === status);
const contexts = [];

async function browser(name, options = {}) {
  const context = await chromium.launchPersistentContext(join(PROFILES, name), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking"],
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    ...options,
  });
  contexts.push(context);
  context.setDefaultTimeout(TIMEOUT);
  context.on("request", (req) => {
    const u = new URL(req.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.hostname !== "127.0.0.1") report.foreign.push(req.url());
  });
  context.on("requestfailed", (req) => {
    report.failedRequests.push({ method: req.method(), url: req.url(), error: req.failure()?.errorText });
  });
  context.on("response", (res) => {
    if (res.status() < 400) return;
    const entry = { method: res.request().method(), url: res.url(), status: res.status() };
    (isAllowed(entry.method, entry.url, entry.status) ? report.allowed : report.failedRequests).push(entry);
  });
  const watch = (page) => {
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      const m = /status of (\d+)/.exec(msg.text());
      if (m && isAllowed("GET", msg.location()?.url || "", Number(m[1]))) return;
      report.consoleErrors.push({ text: msg.text(), url: msg.location()?.url });
    });
    page.on("pageerror", (err) => report.consoleErrors.push({ text: String(err) }));
  };
  context.pages().forEach(watch);
  context.on("page", watch);
  const page = context.pages()[0] || (await context.newPage());
  return { context, page };
}

async function shot(page, name) {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  report.screenshots.push(file);
}

async function step(name, fn) {
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

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

/** axe-core on the page as it is: no serious or critical violation. The script is run
 * through the DevTools protocol (page.evaluate), which the pages' CSP does not govern. */
async function accessible(page, screen) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    window.axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, where: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) })),
    ),
  );
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.axe.push({ screen, violations: result.length, serious: bad.length });
  expect(bad.length === 0, `axe on ${screen}: ${JSON.stringify(bad)}`);
}

async function signIn(page) {
  await page.goto(URL_ + "/");
  await page.getByLabel("Token").fill(TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Assetvault" }).waitFor();
}

const browseUrl = (path) => `${URL_}/#/browse${path.slice("/content/dam".length).split("/").map(encodeURIComponent).join("/")}`;
const folderName = FOLDER.split("/").pop();
const sha1 = (buf) => createHash("sha1").update(buf).digest("hex");

/** Makes a link with the Share dialog of the page; -> its URL. */
async function makeLink(page, lifetime) {
  await page.getByRole("toolbar").getByRole("button", { name: "Share" }).click();
  const dialog = page.locator("dialog[open]");
  await dialog.getByLabel("Expires after").selectOption({ label: lifetime });
  await dialog.getByRole("button", { name: "Create link" }).click();
  const url = await dialog.getByTestId("share-url").inputValue();
  expect(url.startsWith(`${URL_}/s/avs_`), `a link was shown: ${url}`);
  return { dialog, url };
}

/** The body's background colour, as relative luminance (0 black .. 1 white). */
const luminance = (page) =>
  page.evaluate(() => {
    const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
    const lin = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  });

async function main() {
  const a = await browser("owner");
  const page = a.page;
  let folderLink;
  let assetLink;

  await step("share a folder from its toolbar", async () => {
    await signIn(page);
    await page.goto(browseUrl(FOLDER));
    await page.locator(".crumbs [aria-current=page]", { hasText: folderName }).waitFor();
    const { dialog, url } = await makeLink(page, "1 day");
    await dialog.getByText(/^Expires /).waitFor();
    await shot(page, "light-01-share-dialog");
    await accessible(page, "share dialog (light)");
    await dialog.getByRole("button", { name: "Done" }).click();
    folderLink = url;
  });

  await step("share an asset from its page", async () => {
    await page.goto(browseUrl(FOLDER));
    const first = Object.keys(FILES).sort()[0];
    await page.getByRole("link", { name: new RegExp(first.replace(".", "\\.")) }).first().click();
    await page.locator(".asset-head h1").waitFor();
    const { dialog, url } = await makeLink(page, "7 days");
    await dialog.getByRole("button", { name: "Done" }).click();
    assetLink = url;
    return { asset: first };
  });

  const guest = await browser("guest"); // a fresh browser: no token, no session
  await step("the folder link opens without a token: thumbnails, preview, downloads", async () => {
    const p = guest.page;
    const sent = [];
    p.on("request", (req) => sent.push(req.headers()));
    const response = await p.goto(folderLink);
    expect(response.headers()["referrer-policy"] === "no-referrer", "the page sends no referrer");
    const cards = p.getByTestId("shared-asset");
    await cards.first().waitFor();
    expect((await cards.count()) === Object.keys(FILES).length, `cards: ${await cards.count()}`);
    await p.waitForFunction(() => {
      const imgs = [...document.querySelectorAll(".thumb img")];
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    });
    expect(await p.evaluate(() => sessionStorage.length === 0 && localStorage.length === 0), "no token anywhere");
    expect(sent.every((h) => !h.authorization), "no request carries credentials");
    await shot(p, "light-02-shared-folder");
    await accessible(p, "shared folder page (light)");
    const names = Object.keys(FILES).sort();
    const downloaded = {};
    for (const name of names) {
      const card = cards.filter({ hasText: name });
      const [download] = await Promise.all([p.waitForEvent("download"), card.getByRole("link", { name: "Download" }).click()]);
      downloaded[name] = sha1(readFileSync(await download.path()));
      expect(download.suggestedFilename() === name, `saved as ${download.suggestedFilename()}`);
    }
    expect(JSON.stringify(downloaded) === JSON.stringify(Object.fromEntries(names.map((n) => [n, FILES[n]]))), `byte for byte: ${JSON.stringify(downloaded)}`);
    await cards.first().getByRole("link", { name: /^Open / }).click();
    await p.waitForFunction(() => {
      const img = document.querySelector("img.preview");
      return img && img.complete && img.naturalWidth > 0;
    });
    await shot(p, "light-03-shared-asset-in-folder");
    return { downloads: names.length };
  });

  await step("the asset link opens that asset without a token", async () => {
    const p = guest.page;
    await p.goto(assetLink);
    await p.waitForFunction(() => {
      const img = document.querySelector("img.preview");
      return img && img.complete && img.naturalWidth > 0;
    });
    const first = Object.keys(FILES).sort()[0];
    const [download] = await Promise.all([p.waitForEvent("download"), p.getByRole("link", { name: "Download" }).click()]);
    expect(sha1(readFileSync(await download.path())) === FILES[first], "the asset's original, byte for byte");
    await shot(p, "light-04-shared-asset");
    await accessible(p, "shared asset page (light)");
  });

  await step("the Share links page lists both and revokes one", async () => {
    await page.goto(URL_ + "/#/shares");
    const rows = page.getByTestId("share-row");
    await rows.first().waitFor();
    expect((await rows.count()) === 2, `rows: ${await rows.count()}`);
    await accessible(page, "share links page (light)");
    await page.getByRole("button", { name: `Revoke the link to ${FOLDER}`, exact: true }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.getByRole("button", { name: "Revoke" }).click();
    await page.getByText(`Revoked the link to ${FOLDER}.`).waitFor();
    await rows.filter({ has: page.getByRole("link", { name: FOLDER, exact: true }) }).getByText("revoked", { exact: true }).waitFor();
    await shot(page, "light-05-share-links");
  });

  await step("a revoked link says so, at once", async () => {
    const p = guest.page;
    await p.goto(folderLink);
    const error = p.getByTestId("share-error");
    await error.waitFor();
    expect((await error.textContent()) === "this share link was revoked", `error: ${await error.textContent()}`);
    await shot(p, "light-06-revoked-link");
    await accessible(p, "revoked link page (light)");
  });

  const docs = await browser("docs"); // not signed in: /docs alone
  await step("/docs: no token shown; Authorize, then Try it out succeeds", async () => {
    const p = docs.page;
    await p.goto(URL_ + "/docs");
    await p.locator(".swagger-ui .opblock").first().waitFor();
    await accessible(p, "API docs (light)");
    await p.getByRole("button", { name: /Authorize/ }).first().click();
    const modal = p.locator(".modal-ux");
    await modal.locator("#auth-bearer-value").fill(TOKEN);
    await modal.getByRole("button", { name: "Authorize", exact: true }).first().click();
    await modal.getByRole("button", { name: "Logout" }).waitFor();
    await accessible(p, "API docs authorize dialog (light)");
    await modal.getByRole("button", { name: "Close", exact: true }).first().click();
    const op = p.locator(".opblock", { has: p.locator('[data-path="/share-links"]') }).filter({ hasText: "GET" });
    await op.locator(".opblock-summary").first().click();
    await op.getByRole("button", { name: "Try it out" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    const status = op.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor();
    const code = (await status.textContent()).trim();
    expect(code === "200", `Try it out answered ${code}`);
    await accessible(p, "API docs try it out (light)");
    const curl = await op.locator(".curl-command").textContent();
    expect(curl.includes("$ASSETVAULT_TOKEN") && !curl.includes(TOKEN), `curl: ${curl}`);
    const text = await p.evaluate(() => document.body.innerText + [...document.querySelectorAll("input")].map((i) => i.value).join(" "));
    expect(!text.includes(TOKEN), "the token is nowhere in the page");
    await shot(p, "light-07-docs-authorized");
    return { curl: curl.slice(0, 200) };
  });

  await step("/docs in a signed-in tab: authorized already, and still no token shown", async () => {
    await page.goto(URL_ + "/docs");
    await page.locator(".swagger-ui .opblock").first().waitFor();
    const op = page.locator(".opblock", { has: page.locator('[data-path="/share-links"]') }).filter({ hasText: "GET" });
    await op.locator(".opblock-summary").first().click();
    await op.getByRole("button", { name: "Try it out" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    const status = op.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor();
    expect((await status.textContent()).trim() === "200", "Try it out with the tab's token");
    const html = await page.content();
    expect(!html.includes(TOKEN), "the token is nowhere in the page");
  });
  await a.context.close();
  await guest.context.close();
  await docs.context.close();

  const dark = await browser("dark", { colorScheme: "dark" });
  await step("dark theme: the system setting darkens every screen, and they stay readable", async () => {
    const p = dark.page;
    await signIn(p);
    await p.goto(browseUrl(FOLDER));
    await p.locator(".crumbs [aria-current=page]", { hasText: folderName }).waitFor();
    await p.waitForFunction(() => [...document.querySelectorAll(".thumb img")].length > 0);
    const level = await luminance(p);
    expect(level < 0.05, `the background is dark (luminance ${level})`);
    await shot(p, "dark-01-folder");
    await accessible(p, "folder (dark)");
    await p.getByRole("link", { name: /\.png/ }).first().click();
    await p.locator(".asset-head h1").waitFor();
    await accessible(p, "asset page (dark)");
    await shot(p, "dark-02-asset");
    const { dialog } = await makeLink(p, "1 day");
    await accessible(p, "share dialog (dark)");
    await shot(p, "dark-03-share-dialog");
    const url = await dialog.getByTestId("share-url").inputValue();
    await dialog.getByRole("button", { name: "Done" }).click();
    await p.goto(URL_ + "/#/shares");
    await p.getByTestId("share-row").first().waitFor();
    await accessible(p, "share links page (dark)");
    await shot(p, "dark-04-share-links");
    await p.goto(url);
    await p.locator(".share-facts").waitFor();
    expect((await luminance(p)) < 0.05, "the shared page is dark too");
    await accessible(p, "shared asset page (dark)");
    await shot(p, "dark-05-shared-asset");
    await p.goto(folderLink);
    await p.getByTestId("share-error").waitFor();
    await accessible(p, "revoked link page (dark)");
    await p.goto(URL_ + "/docs");
    await p.locator(".swagger-ui .opblock").first().waitFor();
    await accessible(p, "API docs (dark)");
    await shot(p, "dark-06-docs");
  });
  await dark.context.close();
}

try {
  await main();
} catch (err) {
  report.error = String(err?.stack || err);
}
for (const c of contexts) await c.close().catch(() => {});
process.stdout.write(JSON.stringify(report));
process.exit(report.error || report.steps.some((s) => !s.ok) ? 1 : 0);
