// A person's way through the Assetvault web UI, in Debian's chromium driven by
// playwright-core. Prints a JSON report on stdout; exits 1 when a step fails.
//
//   node journey.mjs   (inputs: see harness.mjs, and)
//     UI_IMAGES             JSON list of local image files to drop into a new folder
//     UI_DOCUMENTS          JSON list of a PDF and a video, chosen with "Upload files"
//     UI_WORKER             JSON argv that processes every queued job and exits: the
//                           server runs no worker, so the test decides when processing
//                           ends and can watch the pages update by themselves
//     UI_REVOKE             JSON argv that revokes the token (the last step)
//     UI_VERSIONED          JSON {assetId, rows}: an asset whose original was replaced
//                           twice with a version kept, and the rows its Versions
//                           table must show ([name, label / comment, bytes], oldest first)
//
// Every request the browsers make is recorded: none may leave 127.0.0.1, none may fail
// (but the 412 of the conflict and the part this script fails on purpose), and no
// console error or page error may appear.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { basename } from "node:path";
import { PHONE, TOKEN, URL_, allow, api, assetShown, browser, expect, finish, folderShown, requested, searchTotal, shot, signIn, step } from "./harness.mjs";

const IMAGES = JSON.parse(process.env.UI_IMAGES);
const DOCUMENTS = JSON.parse(process.env.UI_DOCUMENTS);
const WORKER = JSON.parse(process.env.UI_WORKER);
const REVOKE = JSON.parse(process.env.UI_REVOKE);
const VERSIONED = JSON.parse(process.env.UI_VERSIONED);

/** A pattern of the URLs that end with `text`, taken literally. */
const urlEnding = (text) => new RegExp(text.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&") + "$");

const processQueuedJobs = () => promisify(execFile)(WORKER[0], WORKER.slice(1), { timeout: 120_000 });

async function answerDialog(page, value, confirm) {
  const dialog = page.locator("dialog[open]");
  await dialog.waitFor();
  if (value !== undefined) await dialog.locator("input").fill(value);
  await dialog.getByRole("button", { name: confirm }).click();
  await dialog.waitFor({ state: "detached" });
}

/** Move and copy choose their folder in a picker: from the top, folder by folder. */
async function chooseFolder(page, path, verb) {
  const dialog = page.locator("dialog[open].picker");
  await dialog.waitFor();
  await dialog.locator("[data-crumb]").click();
  await dialog.getByRole("list", { name: "Folders in Assets" }).waitFor();
  const names = path.replace(/^\/content\/dam\/?/, "").split("/").filter(Boolean);
  let here = "Assets";
  for (const name of names) {
    await dialog.getByRole("list", { name: `Folders in ${here}` }).locator(`.picker-folder[data-folder="${name}"]`).click();
    here = name;
    await dialog.getByRole("button", { name: `${verb} into “${here}”` }).waitFor();
  }
  await dialog.getByRole("button", { name: `${verb} into “${here}”` }).click();
  await dialog.waitFor({ state: "detached" });
}

async function dropFiles(page, files) {
  const payload = files.map((f) => ({ name: basename(f), data: readFileSync(f).toString("base64"), type: f.endsWith(".png") ? "image/png" : "image/jpeg" }));
  const dt = await page.evaluateHandle((items) => {
    const transfer = new DataTransfer();
    for (const it of items) {
      const bytes = Uint8Array.from(atob(it.data), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], it.name, { type: it.type }));
    }
    return transfer;
  }, payload);
  const zone = page.getByTestId("dropzone");
  await zone.dispatchEvent("dragover", { dataTransfer: dt });
  await zone.dispatchEvent("drop", { dataTransfer: dt });
}

async function main() {
  const a = await browser("a");
  const page = a.page;
  let assetId;
  let assetUrl;

  await step("sign in with a token", async () => {
    await page.goto(URL_ + "/");
    await page.getByLabel("Token").waitFor();
    await shot(page, "desktop-01-sign-in");
    await signIn(page);
    const stored = await page.evaluate(() => ({ s: sessionStorage.getItem("assetvault.token"), l: localStorage.length, url: location.href }));
    expect(stored.s === TOKEN && stored.l === 0 && !stored.url.includes(TOKEN), "the token is kept in sessionStorage only");
  });

  await step("create a folder, and one inside it from the keyboard only", async () => {
    await page.getByRole("button", { name: "New folder" }).click();
    await answerDialog(page, "journey", "Create");
    await page.getByRole("link", { name: "journey" }).click();
    await page.locator(".crumbs [aria-current=page]", { hasText: "journey" }).waitFor();
    // Keyboard: Tab to "New folder", Enter, type, Enter. Focus must be visible.
    await page.locator("body").focus();
    let outline = null;
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press("Tab");
      const label = await page.evaluate(() => document.activeElement?.textContent?.trim());
      if (label === "New folder") {
        outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
        break;
      }
    }
    expect(outline && outline !== "none", `"New folder" reached by Tab with a visible focus (outline ${outline})`);
    await page.keyboard.press("Enter");
    await page.locator("dialog[open] input").waitFor();
    await page.keyboard.type("archive");
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: "archive" }).waitFor();
  });

  await step("upload three images by drag and drop, one part failing once", async () => {
    // The first part sent fails with a 503, as a flaky proxy would; the UI retries it.
    let failedOnce = null;
    let partRequests = 0;
    allow("PUT", /\/binary-upload\//, 503);
    await page.route("**/binary-upload/**", async (route) => {
      partRequests++;
      if (!failedOnce) {
        failedOnce = route.request().url();
        return route.fulfill({ status: 503, body: "try again" });
      }
      return route.continue();
    });
    await dropFiles(page, IMAGES);
    await page.locator(".uploads .upload-row.overall", { hasText: `(${IMAGES.length}/${IMAGES.length})` }).waitFor();
    // Nothing is processed yet: a placeholder for each, until a worker has run.
    await page.locator(".grid .thumb .placeholder.busy").nth(IMAGES.length - 1).waitFor();
    await shot(page, "desktop-02-processing");
    await processQueuedJobs();
    await page.locator(".grid .thumb img").nth(IMAGES.length - 1).waitFor({ timeout: 60_000 });
    await page.unroute("**/binary-upload/**");
    const states = await page.locator(".uploads .upload-row[data-file]").evaluateAll((rows) => rows.map((r) => r.dataset.state));
    expect(states.length === IMAGES.length && states.every((s) => s === "done"), `every file done: ${states}`);
    expect(failedOnce && partRequests === IMAGES.length + 1, `a failed part was retried (${partRequests} part requests)`);
    await shot(page, "desktop-02-folder-grid");
    return { partRequests };
  });

  await step("list view sorted by size", async () => { // the first column is the checkbox
    await page.getByRole("button", { name: "List" }).click();
    await page.getByRole("button", { name: "Size" }).click();
    await page.locator("th[aria-sort=ascending]", { hasText: "Size" }).waitFor();
    const sizes = IMAGES.map((f) => [basename(f), readFileSync(f).length]).sort((x, y) => x[1] - y[1]).map((x) => x[0]);
    const rowsAre = (names) =>
      page.waitForFunction(
        (want) => JSON.stringify([...document.querySelectorAll("table.list tbody tr td:nth-child(2)")].map((td) => td.textContent)) === want,
        JSON.stringify(names),
      );
    await rowsAre(sizes);
    await page.getByRole("button", { name: "Size" }).click();
    await page.locator("th[aria-sort=descending]", { hasText: "Size" }).waitFor();
    await rowsAre([...sizes].reverse());
    await shot(page, "desktop-03-folder-list");
    await page.getByRole("button", { name: "Grid" }).click();
  });

  await step("upload a PDF and a video with the button; their pages update when processed", async () => {
    const chooser = page.waitForEvent("filechooser");
    await page.getByRole("button", { name: "Upload files" }).click();
    await (await chooser).setFiles(DOCUMENTS);
    await page.locator(".uploads .upload-row.overall", { hasText: `(${DOCUMENTS.length}/${DOCUMENTS.length})` }).waitFor();
    const pdf = basename(DOCUMENTS[0]);
    await page.locator(`.grid .card[data-name="${pdf}"]`).click();
    await page.locator("[data-testid=asset-state]", { hasText: "processing" }).waitFor();
    await page.locator("div.preview.placeholder").waitFor();
    await processQueuedJobs();
    // No reload: the page sees processing end, then shows the PDF's first page.
    await page.locator("[data-testid=asset-state]", { hasText: "processed" }).waitFor({ timeout: 60_000 });
    await page.locator("img.preview").waitFor();
    await shot(page, "desktop-04-pdf-asset");
    await page.goBack();
    await page.locator(`.grid .card[data-name="${basename(DOCUMENTS[1])}"]`).click();
    await page.locator("img.preview").waitFor(); // the video's poster frame
    const urls = page.url();
    await page.goto(URL_ + "/#/browse/journey");
    return { video: urls };
  });

  const first = basename(IMAGES[0]);
  await step("open an asset: preview, renditions, metadata", async () => {
    // From the keyboard: focus the card, Enter opens it.
    await page.locator(`.grid .card[data-name="${first}"]`).focus();
    await page.keyboard.press("Enter");
    await page.locator("img.preview").waitFor();
    await page.getByRole("heading", { name: "Renditions" }).waitFor();
    await page.locator("section[aria-labelledby=rend-h] tbody tr").first().waitFor(); // they load after the metadata
    const rends = await page.locator("section[aria-labelledby=rend-h] tbody tr td:first-child").allTextContents();
    expect(rends[0] === "original" && rends.some((r) => r.startsWith("cq5dam.web.")), `renditions listed: ${rends}`);
    await page.locator("[data-testid=asset-state]", { hasText: "processed" }).waitFor();
    await page.getByText("All metadata (raw)").click(); // folded under the form; stays open in this tab
    for (const h of ["Metadata", "assetMetadata", "repositoryMetadata", "Relations", "Versions", "Comments"]) {
      await page.getByRole("heading", { name: h, exact: true }).waitFor();
    }
    assetUrl = page.url();
    assetId = decodeURIComponent(assetUrl.split("#/asset/")[1]);
    // A relation made through the Author API shows as a link to the other asset.
    const other = await (await api("POST", "/adobe/assets/search?allowUnsafeSearch=true", JSON.stringify({
      query: [{ term: { "repositoryMetadata.repo:path": [`/content/dam/journey/${basename(IMAGES[1])}`] } }],
    }), { "Content-Type": "application/json" })).json();
    const otherId = other.hits.results[0].assetId;
    await api("POST", `/adobe/assets/${encodeURIComponent(assetId)}/relations`, JSON.stringify({
      items: [{ relationType: "derived", relatedAssetId: otherId }],
    }), { "Content-Type": "application/json" });
    await page.reload();
    await page.locator(`section[aria-labelledby=rel-h] a[href="#/asset/${encodeURIComponent(otherId)}"]`).waitFor();
    // The original downloads byte for byte (fetched with the token, saved under its name).
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download original" }).click();
    const download = await downloading;
    expect(download.suggestedFilename() === first, `saved as ${download.suggestedFilename()}`);
    const saved = readFileSync(await download.path());
    expect(Buffer.compare(saved, readFileSync(IMAGES[0])) === 0, "the download is the original");
    await shot(page, "desktop-05-asset");
    return { assetId };
  });

  await step("edit the title in place", async () => {
    await page.getByRole("button", { name: "Add a title" }).click();
    await page.getByLabel("Value of dc:title").fill("Red square");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Red square" }).waitFor();
    const meta = await (await api("GET", `/adobe/assets/${encodeURIComponent(assetId)}/metadata`)).json();
    expect(meta.assetMetadata["dc:title"] === "Red square", "the title reached the server");
  });

  await step("a 412 conflict from a second browser shows the current values", async () => {
    const b = await browser("b");
    await signIn(b.page);
    await b.page.goto(assetUrl);
    await b.page.getByText("All metadata (raw)").click();
    await b.page.getByRole("button", { name: "Edit dc:title" }).click();
    await b.page.getByLabel("New value of dc:title").fill("Title from the other tab");
    await b.page.getByRole("button", { name: "Save", exact: true }).click();
    await b.page.getByRole("heading", { level: 1, name: "Title from the other tab" }).waitFor();
    await b.context.close();

    allow("PATCH", /\/metadata$/, 412);
    await page.getByRole("button", { name: "Edit dc:title" }).click();
    await page.getByLabel("New value of dc:title").fill("My stale title");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    const conflict = page.locator(".conflict");
    await conflict.waitFor();
    const current = await conflict.locator(".current-value").textContent();
    expect(current === "Title from the other tab", `the current value is shown: ${current}`);
    await page.locator('tr[data-key="dc:title"] .value', { hasText: "Title from the other tab" }).waitFor();
    await shot(page, "desktop-06-conflict");
    const meta = await (await api("GET", `/adobe/assets/${encodeURIComponent(assetId)}/metadata`)).json();
    expect(meta.assetMetadata["dc:title"] === "Title from the other tab", "nothing was overwritten");
    await page.getByRole("button", { name: "Keep the current values" }).click();
  });

  await step("search with a facet", async () => {
    await page.getByLabel("Search assets").fill("*");
    await page.getByLabel("Search assets").press("Enter");
    await searchTotal(page, "q=*");
    const png = page.locator('button.facet[data-facet=format][data-value="image/png"]');
    await png.waitFor();
    const count = Number(await png.locator(".count").textContent());
    await png.click();
    expect((await searchTotal(page, "q=*&format=image/png")) === count, `the facet's count is its total (${count})`);
    await page.locator(".results .card .thumb img").first().waitFor();
    const shown = await page.locator(".results .grid .card").count();
    expect(shown === Math.min(count, 12), `${shown} hits shown for a facet of ${count}`);
    await shot(page, "desktop-07-search-facet");
    // The folder filter keeps what is below the folder; the date range, what changed in it.
    // A hash-only navigation resolves before the page has re-rendered: the last query's
    // total may still be shown, so the total read is the one that carries this query.
    const totalOf = async (query) => {
      await page.goto(`${URL_}/#/search?${query}`);
      return searchTotal(page, query);
    };
    const inJourney = await totalOf("q=*&folder=/content/dam/journey");
    expect(inJourney === IMAGES.length + DOCUMENTS.length, `${inJourney} assets below /content/dam/journey`);
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const changedToday = await totalOf(`q=*&folder=/content/dam/journey&from=${today}&to=${today}`);
    expect(changedToday === inJourney, `${changedToday} changed today`);
    const before = await totalOf(`q=*&to=${yesterday}`);
    expect(before === 0, `${before} changed before today`);
    return { pngCount: count };
  });

  await step("page through results with the cursor", async () => {
    await page.goto(URL_ + "/#/search?q=*&sort=name-asc");
    const total = await searchTotal(page, "q=*&sort=name-asc");
    expect(total > 12, `enough results to page (${total})`);
    const seen = [];
    for (let p = 1; ; p++) {
      await page.locator("[data-testid=total]", { hasText: `page ${p}` }).waitFor();
      await page.waitForFunction(() => document.querySelectorAll(".results .card").length > 0);
      seen.push(...(await page.locator(".results .card").evaluateAll((cs) => cs.map((c) => c.dataset.name))));
      const next = page.getByRole("button", { name: "Next page" });
      if (await next.isDisabled()) break;
      await next.click();
    }
    expect(seen.length === total && new Set(seen).size === total, `every hit once over the pages: ${seen.length} of ${total}`);
    expect(JSON.stringify(seen) === JSON.stringify([...seen].sort()), "in name order across pages");
    const pages = Math.ceil(total / 12);
    await page.getByRole("button", { name: "Previous page" }).click();
    await page.locator("[data-testid=total]", { hasText: `page ${pages - 1}` }).waitFor();
    const back = await page.locator(".results .card").evaluateAll((cs) => cs.map((c) => c.dataset.name));
    expect(JSON.stringify(back) === JSON.stringify(seen.slice((pages - 2) * 12, (pages - 1) * 12)), "Previous page shows that page again");
    return { total, pages };
  });

  await step("move an asset into another folder", async () => {
    await page.goto(assetUrl);
    await assetShown(page, assetId);
    await page.getByRole("button", { name: "Move" }).click();
    await chooseFolder(page, "/content/dam/journey/archive", "Move");
    await page.locator(".crumbs a", { hasText: "archive" }).waitFor();
    const meta = await (await api("GET", `/adobe/assets/${encodeURIComponent(assetId)}/metadata`)).json();
    expect(meta.repositoryMetadata["repo:path"] === `/content/dam/journey/archive/${first}`, `moved: ${meta.repositoryMetadata["repo:path"]}`);
    await page.locator(".crumbs a", { hasText: "archive" }).click();
    await page.locator(`.grid .card[data-name="${first}"] .thumb img`).waitFor();
  });

  await step("copy an asset, then delete the copy after confirming", async () => {
    await page.goto(assetUrl);
    await assetShown(page, assetId);
    await page.getByRole("toolbar", { name: "Asset actions" }).getByRole("button", { name: "Copy" }).click();
    await chooseFolder(page, "/content/dam/seeded", "Copy");
    await page.locator(".notice", { hasText: `Copied to /content/dam/seeded/${first}` }).waitFor();
    const copy = await (await api("POST", "/adobe/assets/search?allowUnsafeSearch=true", JSON.stringify({
      query: [{ term: { "repositoryMetadata.repo:path": [`/content/dam/seeded/${first}`] } }],
    }), { "Content-Type": "application/json" })).json();
    const copyId = copy.hits.results[0].assetId;
    expect(copyId !== assetId, "a copy has its own id");
    // Delete is clicked while the page still reads the copy: its versions are held on
    // their way until the confirmation is given. The DELETE waits for them (a read that
    // reached the server after it would answer 404), and after it nothing asks about the
    // copy any more: no request of the whole run answers 404 but the one asked for below.
    const copyKey = encodeURIComponent(copyId);
    const copyPath = `/api/assets/seeded/${encodeURIComponent(first)}`;
    const aboutCopy = (r) => r.includes(`/adobe/assets/${copyKey}`) || r.includes(copyPath);
    let release;
    const held = new Promise((resolve) => (release = resolve));
    const versionsOfCopy = (url) => url.pathname === `/adobe/assets/${copyKey}/versions`;
    await page.route(versionsOfCopy, async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(URL_ + "/" + `#/asset/${copyKey}`);
    await assetShown(page, copyId); // not the original's page still: its Delete would delete the original
    await page.getByRole("toolbar", { name: "Asset actions" }).getByRole("button", { name: "Delete" }).click();
    await answerDialog(page, undefined, "Delete");
    await page.getByText("Deleting…").waitFor();
    await page.waitForTimeout(500);
    expect(!requested.includes(`DELETE ${copyPath}`), "no DELETE while a read of the copy is on its way");
    release();
    await page.locator(".crumbs [aria-current=page]", { hasText: "seeded" }).waitFor();
    await page.unroute(versionsOfCopy);
    const deleted = requested.indexOf(`DELETE ${copyPath}`);
    expect(deleted > requested.indexOf(`GET /adobe/assets/${copyKey}/versions`), "the DELETE went after the versions were asked for");
    await page.locator(`.grid .card[data-name="seed-01.png"] .thumb img`).waitFor(); // the folder is in
    const after = requested.slice(deleted + 1).filter(aboutCopy);
    expect(after.length === 0, `nothing asked about the deleted copy: ${after}`);
    const gone = await fetch(`${URL_}/adobe/assets/${copyKey}/metadata`, { headers: { Authorization: `Bearer ${TOKEN}`, "X-Api-Key": "journey" } });
    expect(gone.status === 404, `the deleted copy is gone (${gone.status})`);

    // Back on its page: it says the asset was deleted, without asking the server.
    const before = requested.length;
    await page.goBack();
    await page.locator(`main.asset-gone[data-asset-id="${copyId}"]`, { hasText: "This asset was deleted" }).waitFor();
    await page.getByRole("link", { name: "Go to seeded" }).waitFor();
    await shot(page, "desktop-10-asset-deleted");
    const asked = requested.slice(before).filter(aboutCopy);
    expect(asked.length === 0, `its page asked nothing about it: ${asked}`);
  });

  await step("the page of an asset deleted elsewhere says it is not found, after one request", async () => {
    // Deleted through the API, not in this tab: one read finds it gone (its 404 is the
    // answer that says so), and the page asks nothing more about it.
    const path = "/content/dam/seeded/seed-11.png";
    const found = await (await api("POST", "/adobe/assets/search?allowUnsafeSearch=true", JSON.stringify({
      query: [{ term: { "repositoryMetadata.repo:path": [path] } }],
    }), { "Content-Type": "application/json" })).json();
    const id = found.hits.results[0].assetId;
    await api("DELETE", "/api/assets/seeded/seed-11.png");
    const key = encodeURIComponent(id);
    allow("GET", urlEnding(`/adobe/assets/${key}/metadata`), 404);
    const before = requested.length;
    await page.goto(`${URL_}/#/asset/${key}`);
    await page.locator(`main.asset-gone[data-asset-id="${id}"]`, { hasText: "Asset not found" }).waitFor();
    await page.waitForTimeout(500); // a request, if one were sent after the answer, would be seen by now
    const asked = requested.slice(before).filter((r) => r.includes(key));
    expect(JSON.stringify(asked) === JSON.stringify([`GET /adobe/assets/${key}/metadata`]), `one request about it: ${asked}`);
    expect((await page.title()) === "Not found – Assetvault", `the tab says so: ${await page.title()}`);
    await shot(page, "desktop-11-asset-not-found");
  });

  await step("rename, copy and delete folders; deleting asks first", async () => {
    await page.goto(URL_ + "/#/browse/journey/archive");
    await page.locator(".crumbs [aria-current=page]", { hasText: "archive" }).waitFor();
    await page.getByRole("toolbar", { name: "Folder actions" }).getByRole("button", { name: "Rename" }).click();
    await answerDialog(page, "kept", "Rename");
    await page.locator(".crumbs [aria-current=page]", { hasText: "kept" }).waitFor();
    await page.getByRole("toolbar", { name: "Folder actions" }).getByRole("button", { name: "Copy" }).click();
    await chooseFolder(page, "/content/dam/seeded", "Copy");
    await page.locator(".notice", { hasText: "Copied to /content/dam/seeded/kept" }).waitFor();
    await api("GET", `/api/assets/seeded/kept/${encodeURIComponent(first)}.json`);
    // The first drawing of the next folder shows none of the last one's cards (it starts
    // empty: "Loading…"), not even for one frame.
    await page.evaluate((want) => {
      window.__firstDraw = new Promise((resolve) => {
        const look = () => {
          const main = document.querySelector(`main.browse[data-path="${want}"]`);
          if (!main) return;
          seen.disconnect();
          resolve(main.querySelectorAll(".grid .card").length);
        };
        const seen = new MutationObserver(look);
        seen.observe(document.body, { subtree: true, childList: true, attributes: true });
      });
    }, "/content/dam/seeded/kept");
    await page.goto(URL_ + "/#/browse/seeded/kept");
    const carried = await page.evaluate(() => window.__firstDraw);
    expect(carried === 0, `the folder's first drawing showed ${carried} card(s) of the last folder`);
    await folderShown(page, "/content/dam/seeded/kept"); // not /content/dam/journey/kept, still shown
    const del = page.getByRole("toolbar", { name: "Folder actions" }).getByRole("button", { name: "Delete" });
    await del.click();
    await page.locator("dialog[open]", { hasText: "Everything inside it is deleted too" }).waitFor();
    await page.keyboard.press("Escape"); // cancels, as the Cancel button does
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    await api("GET", "/api/assets/seeded/kept.json"); // still there
    await del.click();
    await answerDialog(page, undefined, "Delete");
    await page.locator(".crumbs [aria-current=page]", { hasText: "seeded" }).waitFor();
    const gone = await fetch(URL_ + "/api/assets/seeded/kept.json", { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(gone.status === 404, `the deleted folder is gone (${gone.status})`);
  });

  await step("comment on an asset", async () => {
    await page.goto(assetUrl);
    await assetShown(page, assetId);
    await page.getByLabel("New comment").fill("Looks good to me");
    await page.getByRole("button", { name: "Comment", exact: true }).click();
    await page.locator(".comments li", { hasText: "Looks good to me" }).waitFor();
    const meta = await (await api("GET", `/adobe/assets/${encodeURIComponent(assetId)}/metadata`)).json();
    const path = meta.repositoryMetadata["repo:path"].slice("/content/dam".length);
    const classic = await (await api("GET", `/api/assets${path.split("/").map(encodeURIComponent).join("/")}.json`)).json();
    expect(classic.entities.some((e) => e.properties?.message === "Looks good to me"), "the comment reached the server");
  });

  await step("the asset page lists the versions kept, then the current original", async () => {
    await page.goto(URL_ + "/#/asset/" + encodeURIComponent(VERSIONED.assetId));
    await assetShown(page, VERSIONED.assetId);
    const rows = page.locator("[data-testid=versions] tbody tr");
    await rows.nth(VERSIONED.rows.length - 1).waitFor();
    const seen = [];
    for (let i = 0; i < (await rows.count()); i++) {
      const cells = await rows.nth(i).locator("td").allTextContents();
      seen.push({ cells, current: await rows.nth(i).getAttribute("aria-current") });
    }
    const want = VERSIONED.rows.map(([name, note, bytes], i) => ({
      cells: [name, note, `${bytes} B`],
      current: i === VERSIONED.rows.length - 1 ? "true" : null,
    }));
    const got = seen.map((s) => ({ cells: s.cells.slice(0, 3), current: s.current }));
    expect(JSON.stringify(got) === JSON.stringify(want), `versions shown: ${JSON.stringify(seen)}`);
    // Every row has a date and a user.
    expect(seen.every((s) => s.cells[3] && s.cells[3] !== "—" && s.cells[4]), `dates and users: ${JSON.stringify(seen)}`);
    await shot(page, "desktop-09-versions");
    return { versions: seen.length };
  });

  await step("the API documentation works offline", async () => {
    await page.goto(URL_ + "/docs");
    await page.locator(".swagger-ui .opblock").first().waitFor();
    const ops = await page.locator(".swagger-ui .opblock").count();
    expect(ops > 5, `operations rendered: ${ops}`);
    await shot(page, "desktop-08-docs", true, { strict: true }); // no axe violation of any impact
    return { operations: ops };
  });
  await a.context.close();

  await step("phone width: folder, asset and search readable; a revoked token signs out", async () => {
    const p = await browser("phone", PHONE);
    await signIn(p.page);
    await p.page.goto(URL_ + "/#/browse/journey");
    await p.page.locator(".grid .thumb img").first().waitFor();
    // How far the page is wider than the screen, and the elements that stick out.
    const wide = () =>
      p.page.evaluate(() =>
        [...document.querySelectorAll("body *")]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
          .slice(0, 5)
          .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)} ${getComputedStyle(e.parentElement).overflowX} ${e.parentElement.className} ${Math.round(e.parentElement.getBoundingClientRect().right)}`),
      );
    const overflow = async () => {
      const over = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (over > 0) console.error("too wide:", over, await wide());
      return over;
    };
    expect((await overflow()) <= 0, "no sideways scrolling in the folder");
    await shot(p.page, "phone-01-folder");
    await p.page.goto(assetUrl);
    await assetShown(p.page, assetId);
    await p.page.locator("img.preview").waitFor();
    expect((await overflow()) <= 0, "no sideways scrolling on the asset page");
    await shot(p.page, "phone-02-asset");
    await p.page.goto(URL_ + "/#/search?q=*");
    // Thumbnails load as they come into view (lazily): scroll to the first hit.
    await p.page.locator(".results .card").first().scrollIntoViewIfNeeded();
    await p.page.locator(".results .card .thumb img").first().waitFor();
    expect((await overflow()) <= 0, "no sideways scrolling in search");
    await shot(p.page, "phone-03-search");

    // The token is revoked while the tab is open: the next call signs the tab out.
    allow("GET", /./, 401);
    allow("POST", /\/adobe\/assets\/search/, 401);
    await promisify(execFile)(REVOKE[0], REVOKE.slice(1), { timeout: 60_000 });
    // The server remembers a verified token for up to 5 s: look again until it notices.
    for (let i = 0; i < 20 && !(await p.page.getByLabel("Token").isVisible()); i++) {
      await p.page.waitForTimeout(500);
      await p.page.reload();
      await p.page.locator("main").first().waitFor();
      await p.page.waitForTimeout(300);
    }
    await p.page.getByLabel("Token").waitFor();
    await p.page.locator(".notice", { hasText: "no longer valid" }).waitFor();
    expect((await p.page.evaluate(() => sessionStorage.length)) === 0, "the token is forgotten");
    await p.context.close();
  });
}

finish(main);
