// Share links, /docs' Authorize control and the dark theme, in Debian's chromium driven by
// playwright-core. Prints a JSON report on stdout; exits 1 when a step fails.
//
//   node share_docs_theme.mjs   (inputs: see harness.mjs, and)
//     UI_FOLDER        a folder holding the seeded images, e.g. /content/dam/shared-e2e
//     UI_FILES         JSON {name: sha1} of the seeded images
//
// A link made in the UI opens in a fresh browser without any token, shows thumbnails and
// a preview, and downloads byte for byte; revoked on the Share links page, it says so.
// /docs shows no token anywhere (page text, curl snippet), Authorize takes one and "Try it
// out" succeeds. In dark mode the background is dark. axe-core finds no serious or
// critical violation on any of these screens, light and dark (harness.mjs checks each
// screen shot; the few screens not shot are checked by name). No request may leave
// 127.0.0.1 or fail (but the refused revoked link); no console error may appear.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { PHONE, URL_, accessible, allow, browser, expect, finish, shot, signIn, step, TOKEN } from "./harness.mjs";

const FOLDER = process.env.UI_FOLDER;
const FILES = JSON.parse(process.env.UI_FILES);
const WIDE = { width: 1280, height: 900 };
allow("GET", /\/s\/avs_[^/]+\/info$/, 410); // the revoked link's info, on purpose

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
  const a = await browser("owner", WIDE);
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

  const guest = await browser("guest", WIDE); // a fresh browser: no token, no session
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
  });

  const docs = await browser("docs", WIDE); // not signed in: /docs alone
  await step("/docs: no token shown; Authorize, then Try it out succeeds", async () => {
    const p = docs.page;
    await p.goto(URL_ + "/docs");
    await p.locator(".swagger-ui .opblock").first().waitFor();
    await accessible(p, "API docs (light)", { strict: true }); // none at all: see docs.html
    await p.getByRole("button", { name: /Authorize/ }).first().click();
    const modal = p.locator(".modal-ux");
    await modal.locator("#auth-bearer-value").fill(TOKEN);
    await modal.getByRole("button", { name: "Authorize", exact: true }).first().click();
    await modal.getByRole("button", { name: "Logout" }).waitFor();
    await accessible(p, "API docs authorize dialog (light)", { strict: true });
    await modal.getByRole("button", { name: "Close", exact: true }).first().click();
    const op = p.locator(".opblock", { has: p.locator('[data-path="/share-links"]') }).filter({ hasText: "GET" });
    await op.locator(".opblock-summary").first().click();
    await op.getByRole("button", { name: "Try it out" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    const status = op.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor();
    const code = (await status.textContent()).trim();
    expect(code === "200", `Try it out answered ${code}`);
    const curl = await op.locator(".curl-command").textContent();
    expect(curl.includes("$ASSETVAULT_TOKEN") && !curl.includes(TOKEN), `curl: ${curl}`);
    const text = await p.evaluate(() => document.body.innerText + [...document.querySelectorAll("input")].map((i) => i.value).join(" "));
    expect(!text.includes(TOKEN), "the token is nowhere in the page");
    await shot(p, "light-07-docs-authorized", true, { strict: true });
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

  const phoneDocs = await browser("docs-phone", PHONE);
  await step("/docs at phone width: Authorize within reach, no token shown, no axe finding", async () => {
    const p = phoneDocs.page;
    await p.goto(URL_ + "/docs");
    await p.locator(".swagger-ui .opblock").first().waitFor();
    await p.getByRole("button", { name: /Authorize/ }).first().click();
    const modal = p.locator(".modal-ux");
    await modal.locator("#auth-bearer-value").fill(TOKEN);
    await modal.getByRole("button", { name: "Authorize", exact: true }).first().click();
    await modal.getByRole("button", { name: "Logout" }).waitFor();
    await shot(p, "phone-01-docs-authorize", false, { strict: true });
    await modal.getByRole("button", { name: "Close", exact: true }).first().click();
    // Try it out: its curl snippet, wider than the screen, scrolls in its own box.
    const op = p.locator(".opblock", { has: p.locator('[data-path="/share-links"]') }).filter({ hasText: "GET" });
    await op.locator(".opblock-summary").first().click();
    await op.getByRole("button", { name: "Try it out" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    const status = op.locator(".live-responses-table tbody .response-col_status").first();
    await status.waitFor();
    expect((await status.textContent()).trim() === "200", "Try it out at phone width");
    await op.locator(".curl").scrollIntoViewIfNeeded();
    await accessible(p, "phone docs after Try it out", { strict: true });
    const text = await p.evaluate(() => document.body.innerText + [...document.querySelectorAll("input")].map((i) => i.value).join(" "));
    expect(!text.includes(TOKEN), "the token is nowhere in the page");
  });
  await phoneDocs.context.close();

  const dark = await browser("dark", WIDE, { colorScheme: "dark" });
  await step("dark theme: the system setting darkens every screen, and they stay readable", async () => {
    const p = dark.page;
    await signIn(p);
    await p.goto(browseUrl(FOLDER));
    await p.locator(".crumbs [aria-current=page]", { hasText: folderName }).waitFor();
    await p.waitForFunction(() => [...document.querySelectorAll(".thumb img")].length > 0);
    const level = await luminance(p);
    expect(level < 0.05, `the background is dark (luminance ${level})`);
    await shot(p, "dark-01-folder");
    await p.getByRole("link", { name: /\.png/ }).first().click();
    await p.locator(".asset-head h1").waitFor();
    await shot(p, "dark-02-asset");
    const { dialog } = await makeLink(p, "1 day");
    await shot(p, "dark-03-share-dialog");
    const url = await dialog.getByTestId("share-url").inputValue();
    await dialog.getByRole("button", { name: "Done" }).click();
    await p.goto(URL_ + "/#/shares");
    await p.getByTestId("share-row").first().waitFor();
    await shot(p, "dark-04-share-links");
    await p.goto(url);
    await p.locator(".share-facts").waitFor();
    expect((await luminance(p)) < 0.05, "the shared page is dark too");
    await shot(p, "dark-05-shared-asset");
    await p.goto(folderLink);
    await p.getByTestId("share-error").waitFor();
    await accessible(p, "revoked link page (dark)");
    await p.goto(URL_ + "/docs");
    await p.locator(".swagger-ui .opblock").first().waitFor();
    await shot(p, "dark-06-docs", true, { strict: true });
    expect((await luminance(p)) < 0.05, "/docs is dark too");
  });
  await dark.context.close();
}

finish(main);
