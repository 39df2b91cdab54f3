// Selecting many assets and acting once, in Debian's chromium driven by playwright-core, at
// desktop and at phone width: click, shift-click and ctrl-click select, a count and Clear;
// bulk set-field, publish, move (one fails alone, the rest go on), copy, delete and a ZIP
// download; move and copy choose their folder in a picker; a folder gone meanwhile is
// refused with its reason (AEM answers 500 there); cards show file names and titles; the
// sort menu orders the grid;
// back from an asset keeps the scroll; the tab's title names the folder or asset. Prints a
// JSON report on stdout (the saved ZIPs among it); exits 1 when a step fails.
//
//   node bulk.mjs   (inputs: see harness.mjs; UI_ARTIFACTS holds the downloaded ZIPs too)
//     UI_WORKER        JSON argv of a worker run that processes what is queued, then exits
import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, DESKTOP, PHONE, TOKEN, URL_, allow, api, browser, expect, finish, report, shot, signIn, step } from "./harness.mjs";

const WORKER = JSON.parse(process.env.UI_WORKER);
allow("MOVE", /\/api\/assets\//, 412); // the name that is taken, on purpose
allow("MOVE", /\/api\/assets\//, 500); // the folder deleted meanwhile (AEM's status)

const auth = { Authorization: `Bearer ${TOKEN}`, "X-Api-Key": "bulk" };
const enc = (path) => path.split("/").map(encodeURIComponent).join("/");

const folderOf = (path) => api("POST", "/api/assets" + enc(path.slice("/content/dam".length)), JSON.stringify({ class: "assetFolder", properties: { title: path.split("/").pop() } }), { "Content-Type": "application/json" });

/** Direct binary upload as the AEM clients do it, outside the browser; -> the asset id. */
async function seed(folder, name, text) {
  const post = (path, fields) =>
    api("POST", path, new URLSearchParams(fields), { "Content-Type": "application/x-www-form-urlencoded" });
  const size = String(Buffer.byteLength(text));
  const init = await (await post(`${enc(folder)}.initiateUpload.json`, { fileName: name, fileSize: size })).json();
  const entry = init.files[0];
  const put = await fetch(entry.uploadURIs[0], { method: "PUT", body: text });
  expect(put.ok, `part: ${put.status}`);
  const done = await post(new URL(init.completeURI).pathname, { fileName: name, fileSize: size, uploadToken: entry.uploadToken });
  return (await done.json()).assetId;
}

const metadataOf = async (id) => (await api("GET", `/adobe/assets/${encodeURIComponent(id)}/metadata`)).json();
async function exists(path) {
  const r = await fetch(URL_ + "/api/assets" + enc(path.slice("/content/dam".length)) + ".json", { headers: auth });
  return r.status === 200;
}

const card = (page, name) => page.locator(`.grid .card[data-name="${name}"]`);
const count = (page) => page.getByTestId("selected-count");
const shown = (page) => page.locator(".grid .card").evaluateAll((cs) => cs.map((c) => c.dataset.name));

async function selectedNames(page) {
  return page.locator(".grid > li.picked .card").evaluateAll((cs) => cs.map((c) => c.dataset.name).sort());
}

/** The picker: from the top, folder by folder, then "<verb> into “<last>”". */
async function chooseFolder(page, path, verb) {
  const dialog = page.locator("dialog[open].picker");
  await dialog.waitFor();
  await dialog.locator("[data-crumb]").click();
  let here = "Assets";
  for (const name of path.replace(/^\/content\/dam\/?/, "").split("/").filter(Boolean)) {
    await dialog.getByRole("list", { name: `Folders in ${here}` }).locator(`.picker-folder[data-folder="${name}"]`).click();
    here = name;
    await dialog.getByRole("button", { name: `${verb} into “${here}”` }).waitFor();
  }
  // Listed: a folder deleted from here on is one the picker had shown as there.
  await dialog.locator(".loading").waitFor({ state: "detached" });
  return dialog.getByRole("button", { name: `${verb} into “${here}”` });
}

async function selectionBar(page, action) {
  await page.getByRole("toolbar", { name: "Selection" }).getByRole("button", { name: action, exact: true }).click();
}

async function answer(page, value, confirm) {
  const dialog = page.locator("dialog[open]");
  await dialog.waitFor();
  const handle = await dialog.elementHandle(); // a next question may open a dialog of its own
  if (value !== undefined) await dialog.locator("input").fill(value);
  await dialog.getByRole("button", { name: confirm }).click();
  await handle.waitForElementState("hidden");
}

async function run(label, viewport) {
  const name = `bulk-${label}`;
  const folder = `/content/dam/${name}`;
  const target = `${folder}/target`;
  const dest = `/content/dam/${name}-copies`;
  const gone = `/content/dam/${name}-gone`;
  const many = `${folder}/many`;
  for (const f of [folder, target, dest, gone, many]) await folderOf(f);
  const texts = {};
  const ids = {};
  for (const k of ["a", "b", "c", "d", "e", "f"]) {
    texts[k] = `${k} at ${label} width `.repeat(k.charCodeAt(0) - 96); // sizes differ: f is largest
    ids[k] = await seed(folder, `${k}.txt`, texts[k]);
  }
  await seed(target, "b.txt", "already in the target"); // b's move fails alone
  for (let i = 0; i < 36; i++) await seed(many, `item-${String(i).padStart(2, "0")}.txt`, `item ${i}`);
  // Two cards with one title, told apart by their file names.
  for (const k of ["a", "b"]) {
    await api("PATCH", `/adobe/assets/${encodeURIComponent(ids[k])}/metadata`, JSON.stringify([{ op: "add", path: "/assetMetadata/dc:title", value: "Spring launch hero shot" }]), {
      "Content-Type": "application/json-patch+json",
      "If-Match": (await api("GET", `/adobe/assets/${encodeURIComponent(ids[k])}/metadata`)).headers.get("ETag"),
    });
  }
  execFileSync(WORKER[0], WORKER.slice(1), { stdio: "ignore", timeout: 120_000 });
  const { context, page } = await browser(label, viewport);
  const result = {};

  await step(`${label}: cards show file names and titles; the tab names the folder`, async () => {
    await signIn(page);
    await page.evaluate(() => sessionStorage.removeItem("assetvault.sort"));
    await page.goto(`${URL_}/#/browse/${name}`);
    await card(page, "f.txt").waitFor();
    await page.waitForFunction((t) => document.title === t, `${name} – Assetvault`);
    for (const k of ["a", "b"]) {
      expect((await card(page, `${k}.txt`).locator(".card-name").textContent()) === `${k}.txt`, "the file name is on the card");
      expect((await card(page, `${k}.txt`).locator(".card-title").textContent()) === "Spring launch hero shot", "and the title under it");
    }
    expect((await card(page, "c.txt").locator(".card-title").count()) === 0, "no title line when there is no title");
  });

  await step(`${label}: the sort menu orders the grid by the server`, async () => {
    const menu = page.getByLabel("Sort");
    await menu.selectOption({ label: "Name Z–A" });
    await page.waitForFunction(() => document.querySelector(".grid .card")?.dataset.name === "f.txt");
    expect(JSON.stringify(await shown(page)) === JSON.stringify(["f.txt", "e.txt", "d.txt", "c.txt", "b.txt", "a.txt"]), `Z–A: ${await shown(page)}`);
    await menu.selectOption({ label: "Smallest first" });
    await page.waitForFunction(() => document.querySelector(".grid .card")?.dataset.name === "a.txt");
    expect(JSON.stringify(await shown(page)) === JSON.stringify(["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"]), `by size: ${await shown(page)}`);
    await menu.selectOption({ label: "Largest first" });
    await page.waitForFunction(() => document.querySelector(".grid .card")?.dataset.name === "f.txt");
    await shot(page, `${label}-sort`, false);
    await menu.selectOption({ label: "Name A–Z" });
    await page.waitForFunction(() => document.querySelector(".grid .card")?.dataset.name === "a.txt");
  });

  await step(`${label}: click, shift-click and ctrl-click select; a count and Clear`, async () => {
    const ctrl = process.platform === "darwin" ? "Meta" : "Control";
    await card(page, "a.txt").click({ modifiers: [ctrl] });
    await count(page).filter({ hasText: "1 selected" }).waitFor();
    await card(page, "d.txt").click({ modifiers: ["Shift"] });
    await count(page).filter({ hasText: "4 selected" }).waitFor();
    expect(JSON.stringify(await selectedNames(page)) === JSON.stringify(["a.txt", "b.txt", "c.txt", "d.txt"]), "shift selects the range");
    await card(page, "b.txt").click({ modifiers: [ctrl] });
    await count(page).filter({ hasText: "3 selected" }).waitFor();
    await card(page, "f.txt").click(); // with a selection, a plain click toggles too
    expect(JSON.stringify(await selectedNames(page)) === JSON.stringify(["a.txt", "c.txt", "d.txt", "f.txt"]), `ctrl and plain clicks toggle: ${await selectedNames(page)}`);
    expect(page.url().includes(`#/browse/${name}`), "no asset was opened");
    await shot(page, `${label}-selection`, false);
    await page.getByRole("toolbar", { name: "Selection" }).getByRole("button", { name: "Clear" }).click();
    await count(page).waitFor({ state: "detached" });
    await page.getByRole("toolbar", { name: "Folder actions" }).getByRole("button", { name: "Select all" }).click();
    await count(page).filter({ hasText: "6 selected" }).waitFor();
    await page.keyboard.press("Escape");
    await count(page).waitFor({ state: "detached" });
    await page.getByRole("checkbox", { name: "Select e.txt" }).click(); // the checkbox is a tap target
    await count(page).filter({ hasText: "1 selected" }).waitFor();
    await page.getByRole("checkbox", { name: "Select e.txt" }).click();
    await count(page).waitFor({ state: "detached" });
  });

  await step(`${label}: set a field and publish on several, checked through the API`, async () => {
    for (const k of ["a", "b", "c"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await selectionBar(page, "Set field…");
    await answer(page, "dc:description", "Next");
    await answer(page, `set in bulk at ${label} width`, "Set");
    await page.locator(".bulk-report li[data-state=done]").nth(2).waitFor();
    for (const k of ["a", "b", "c"]) {
      const meta = await metadataOf(ids[k]);
      expect(meta.assetMetadata["dc:description"] === `set in bulk at ${label} width`, `${k}: ${meta.assetMetadata["dc:description"]}`);
    }
    expect(!("dc:description" in (await metadataOf(ids.d)).assetMetadata), "d was not selected");
    for (const k of ["a", "b", "c"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await count(page).filter({ hasText: "3 selected" }).waitFor();
    await selectionBar(page, "Publish");
    await page.locator(".bulk-report", { hasText: "Publish" }).locator("li[data-state=done]").nth(2).waitFor();
    for (const k of ["a", "b", "c"]) expect((await metadataOf(ids[k])).repositoryMetadata["aem:published"] === true, `${k} is published`);
    expect((await metadataOf(ids.d)).repositoryMetadata["aem:published"] === false, "d is not");
    for (const k of ["a", "b", "c"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await selectionBar(page, "Unpublish");
    await page.locator(".bulk-report", { hasText: "Unpublish" }).locator("li[data-state=done]").nth(2).waitFor();
    expect((await metadataOf(ids.b)).repositoryMetadata["aem:published"] === false, "b is unpublished");
  });

  await step(`${label}: move several through the folder picker; one taken name fails alone`, async () => {
    for (const k of ["a", "b", "c"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await selectionBar(page, "Move…");
    const choose = await chooseFolder(page, target, "Move");
    await shot(page, `${label}-picker`, false);
    await choose.click();
    const rows = page.locator(".bulk-report li");
    await page.locator('.bulk-report li[data-file="b.txt"][data-state=failed]').waitFor();
    await page.locator('.bulk-report li[data-file="c.txt"][data-state=done]').waitFor();
    expect((await rows.count()) === 3, "one row per asset");
    const reason = await page.locator('.bulk-report li[data-file="b.txt"] .state').textContent();
    expect(reason.includes("a file of this name is already there"), `b says why: ${reason}`);
    await shot(page, `${label}-bulk-report`, false);
    expect(await exists(`${target}/a.txt`) && await exists(`${target}/c.txt`), "a and c moved");
    expect(await exists(`${folder}/b.txt`), "b stayed");
    expect((await metadataOf(ids.a)).repositoryMetadata["repo:path"] === `${target}/a.txt`, "a kept its id");
    await card(page, "a.txt").waitFor({ state: "detached" });
    expect(JSON.stringify(await selectedNames(page)) === JSON.stringify(["b.txt"]), "what failed stays selected");
    await page.getByRole("toolbar", { name: "Selection" }).getByRole("button", { name: "Clear" }).click();
  });

  await step(`${label}: copy several, then download them as one ZIP`, async () => {
    for (const k of ["d", "e"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await selectionBar(page, "Copy…");
    await (await chooseFolder(page, dest, "Copy")).click();
    await page.locator('.bulk-report li[data-file="e.txt"][data-state=done]').waitFor();
    expect(await exists(`${dest}/d.txt`) && await exists(`${dest}/e.txt`), "copied");
    expect(await exists(`${folder}/d.txt`), "and still here");
    await count(page).waitFor({ state: "detached" }); // done: the selection is cleared
    for (const k of ["d", "e", "f"]) await page.getByRole("checkbox", { name: `Select ${k}.txt` }).click();
    await count(page).filter({ hasText: "3 selected" }).waitFor();
    const downloading = page.waitForEvent("download");
    await selectionBar(page, "Download ZIP");
    const download = await downloading;
    const saved = join(ARTIFACTS, `${label}-selection.zip`);
    copyFileSync(await download.path(), saved);
    result.zip = { path: saved, name: download.suggestedFilename(), expected: { "d.txt": texts.d, "e.txt": texts.e, "f.txt": texts.f } };
  });

  await step(`${label}: delete several after confirming, checked through the API`, async () => {
    await selectionBar(page, "Delete…");
    await page.locator("dialog[open]", { hasText: "Delete 3 assets?" }).waitFor();
    await answer(page, undefined, "Delete");
    await page.locator('.bulk-report li[data-file="f.txt"][data-state=done]').waitFor();
    for (const k of ["d", "e", "f"]) {
      const r = await fetch(`${URL_}/adobe/assets/${encodeURIComponent(ids[k])}/metadata`, { headers: auth });
      expect(r.status === 404, `${k} is gone (${r.status})`);
    }
    expect(await exists(`${dest}/d.txt`), "its copy is not");
  });

  await step(`${label}: a folder deleted while it is picked is refused with its reason, not a status code`, async () => {
    await page.goto(`${URL_}/#/asset/${encodeURIComponent(ids.b)}`);
    await page.waitForFunction((t) => document.title === t, "Spring launch hero shot – Assetvault");
    await page.getByRole("toolbar", { name: "Asset actions" }).getByRole("button", { name: "Move" }).click();
    const choose = await chooseFolder(page, gone, "Move");
    await api("DELETE", "/api/assets" + enc(gone.slice("/content/dam".length)));
    await choose.click();
    const notice = page.locator(".notice.error", { hasText: `the destination folder ${gone} does not exist` });
    await notice.waitFor();
    expect(!(await notice.textContent()).includes("500"), "the reason, not the status");
    expect(await exists(`${folder}/b.txt`), "b did not move");
  });

  await step(`${label}: back from an asset keeps the scroll position`, async () => {
    await page.goto(`${URL_}/#/browse/${name}/many`);
    await card(page, "item-35.txt").waitFor();
    await page.waitForFunction(() => document.title === "many – Assetvault");
    await card(page, "item-30.txt").scrollIntoViewIfNeeded();
    await page.waitForTimeout(200);
    // Opened from the keyboard: a click may scroll the page a little further first (to
    // clear a sticky bar at phone width), and the position to keep is the one left from.
    await card(page, "item-30.txt").focus();
    const before = await page.evaluate(() => scrollY);
    expect(before > 200, `the folder scrolled (${before})`);
    await page.keyboard.press("Enter");
    await page.locator(".asset-head h1", { hasText: "item-30.txt" }).waitFor();
    await page.waitForFunction(() => document.title === "item-30.txt – Assetvault");
    await page.goBack();
    await card(page, "item-35.txt").waitFor();
    await page.waitForFunction((y) => Math.abs(scrollY - y) < 4, before, { timeout: 10_000 }).catch(async () => {
      const now = await page.evaluate(() => [scrollY, sessionStorage.getItem("assetvault.scroll"), document.documentElement.scrollHeight]);
      throw new Error(`back at ${JSON.stringify(now)}, not ${before}`);
    });
    await shot(page, `${label}-back-scrolled`, false);
  });

  await context.close();
  return result;
}

finish(async () => {
  report.desktop = await run("desktop", DESKTOP);
  report.phone = await run("phone", PHONE);
});
