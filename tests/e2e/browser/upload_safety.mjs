// Uploading into a folder whose names exist, in Debian's chromium driven by playwright-core,
// at desktop and at phone width: every name that exists asks (new version, keep both or
// skip, with "apply to all"), nothing is overwritten silently, and each file fails on its
// own with its own reason, Cancel and Retry. Prints a JSON report on stdout; exits 1 when
// a step fails.
//
//   node upload_safety.mjs   (inputs: see harness.mjs)
//
// No request may leave 127.0.0.1 or fail, but the refused bad name (400 on its initiate)
// and the part cancelled on purpose; no console error may appear.
import { createHash } from "node:crypto";
import { DESKTOP, PHONE, TOKEN, URL_, aborted, allow, api, browser, expect, finish, report, shot, signIn, step } from "./harness.mjs";

allow("POST", /\.initiateUpload\.json$/, 400); // the bad name

const sha1 = (text) => createHash("sha1").update(text).digest("hex");
const auth = { Authorization: `Bearer ${TOKEN}`, "X-Api-Key": "upload-safety" };

/** The text of an asset's original, or null when there is none. */
async function original(path) {
  const r = await fetch(URL_ + path.split("/").map(encodeURIComponent).join("/"), { headers: auth });
  if (r.status === 404) return null;
  expect(r.ok, `GET ${path}: ${r.status}`);
  return r.text();
}

/** Direct binary upload as the AEM clients do it, outside the browser; -> the asset id. */
async function seed(folder, name, text) {
  const post = (path, fields) =>
    api("POST", path, new URLSearchParams(fields), { "Content-Type": "application/x-www-form-urlencoded" });
  const size = String(Buffer.byteLength(text));
  const init = await (await post(`${folder}.initiateUpload.json`, { fileName: name, fileSize: size })).json();
  const entry = init.files[0];
  const put = await fetch(entry.uploadURIs[0], { method: "PUT", body: text });
  expect(put.ok, `part: ${put.status}`);
  const done = await post(new URL(init.completeURI).pathname, { fileName: name, fileSize: size, uploadToken: entry.uploadToken });
  return (await done.json()).assetId;
}

async function dropFiles(page, files) {
  const dt = await page.evaluateHandle((items) => {
    const transfer = new DataTransfer();
    for (const [name, text] of items) transfer.items.add(new File([text], name, { type: "text/plain" }));
    return transfer;
  }, files);
  const zone = page.getByTestId("dropzone");
  await zone.dispatchEvent("dragover", { dataTransfer: dt });
  await zone.dispatchEvent("drop", { dataTransfer: dt });
}

/** Answers the conflict question about `name`; `all` ticks "apply to all". */
async function choose(page, name, choice, all = false) {
  const dialog = page.locator("dialog[open]", { has: page.getByRole("heading", { name: `“${name}” already exists here` }) });
  await dialog.waitFor();
  if (all) await dialog.getByRole("checkbox").check();
  await dialog.getByRole("button", { name: choice, exact: true }).click();
  await dialog.waitFor({ state: "detached" }); // the next question, if any, is another dialog
}

const row = (page, file) => page.locator(`.uploads .upload-row[data-file="${file}"]`);
const stateOf = (page, file) => row(page, file).getAttribute("data-state");
const waitState = (page, file, state) => page.locator(`.uploads .upload-row[data-file="${file}"][data-state="${state}"]`).waitFor();

async function run(label, viewport) {
  const name = `up-${label}`;
  const folder = `/content/dam/${name}`;
  await api("POST", `/api/assets/${name}`, JSON.stringify({ class: "assetFolder", properties: { title: name } }), { "Content-Type": "application/json" });
  const old = Object.fromEntries(["a", "b", "c", "d"].map((k) => [k, `old ${k} at ${label} width`]));
  const ids = {};
  for (const k of Object.keys(old)) ids[k] = await seed(folder, `${k}.txt`, old[k]);
  const { context, page } = await browser(label, viewport);

  await step(`${label}: sign in and open the folder`, async () => {
    await signIn(page);
    await page.goto(`${URL_}/#/browse/${name}`);
    await page.locator('.grid .card[data-name="d.txt"]').waitFor();
  });

  await step(`${label}: names that exist ask; one bad name fails alone`, async () => {
    const fresh = `fresh at ${label} width`;
    await dropFiles(page, [
      ["a.txt", "new a"],
      ["b.txt", "new b"],
      ["c.txt", "new c"],
      ["fresh.txt", fresh],
      ["bad|name.txt", "bad name's bytes"],
    ]);
    await choose(page, "a.txt", "New version");
    const keep = page.locator("dialog[open]", { hasText: "Keep both uploads this file as “b1.txt”" });
    await keep.waitFor();
    await shot(page, `${label}-conflict`, false);
    await choose(page, "b.txt", "Keep both");
    await choose(page, "c.txt", "Skip");
    for (const f of ["a.txt", "b.txt", "fresh.txt"]) await waitState(page, f, "done");
    await waitState(page, "c.txt", "skipped");
    await waitState(page, "bad|name.txt", "failed");
    const reason = await row(page, "bad|name.txt").locator(".state").textContent();
    expect(/not allowed: '\|'/.test(reason), `the bad name says why: ${reason}`);
    for (const f of ["a.txt", "b.txt", "fresh.txt"]) {
      const text = await row(page, f).locator(".state").textContent();
      expect(text === "done", `${f} shows no other file's error: ${text}`);
    }
    expect((await row(page, "b.txt").locator(".renamed").textContent()) === "→ b1.txt", "keep both names the new file b1.txt");
    await page.locator(".uploads .overall", { hasText: "All files (3/4), 1 skipped" }).waitFor();
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(over <= 0, `no sideways scrolling with the upload rows (${over} px)`);
    await shot(page, `${label}-uploads`);

    // New version: the same asset, the new bytes, and the old original kept as a version.
    expect((await original(`${folder}/a.txt`)) === "new a", "a.txt holds the new bytes");
    const versions = (await (await api("GET", `/adobe/assets/${encodeURIComponent(ids.a)}/versions`)).json()).items;
    expect(versions.length === 2 && !versions[0].current && versions[1].current, `one version kept: ${JSON.stringify(versions)}`);
    expect(versions[0].sha1 === sha1(old.a) && versions[0].size === Buffer.byteLength(old.a), "the old original survives as version 1.0");
    expect(versions[1].sha1 === sha1("new a"), "the current original is the new file");
    // Keep both: the old asset untouched, the new file beside it; skip: nothing sent.
    expect((await original(`${folder}/b.txt`)) === old.b && (await original(`${folder}/b1.txt`)) === "new b", "b.txt kept, b1.txt added");
    expect((await original(`${folder}/c.txt`)) === old.c && (await original(`${folder}/c1.txt`)) === null, "c.txt skipped");
    expect((await original(`${folder}/fresh.txt`)) === fresh, "a new name is simply uploaded");
    for (const k of ["b", "c"]) {
      const v = (await (await api("GET", `/adobe/assets/${encodeURIComponent(ids[k])}/versions`)).json()).items;
      expect(v.length === 1, `${k}.txt has no new version`);
    }
    return { versions: versions.map((v) => v.name) };
  });

  await step(`${label}: the refused file is renamed and retried`, async () => {
    await row(page, "bad|name.txt").getByRole("button", { name: "Rename bad|name.txt" }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.locator("input").fill("bad-name.txt");
    await dialog.getByRole("button", { name: "Upload" }).click();
    await waitState(page, "bad|name.txt", "done");
    expect((await original(`${folder}/bad-name.txt`)) === "bad name's bytes", "bad-name.txt arrived");
  });

  await step(`${label}: "apply to all" answers every name that exists at once`, async () => {
    await dropFiles(page, [
      ["c.txt", "new c, again"],
      ["d.txt", "new d"],
      ["e.txt", "new e"],
    ]);
    await choose(page, "c.txt", "Keep both", true);
    for (const f of ["c.txt", "d.txt", "e.txt"]) await waitState(page, f, "done");
    expect((await page.locator("dialog[open]").count()) === 0, "no second question");
    expect((await original(`${folder}/c1.txt`)) === "new c, again" && (await original(`${folder}/d1.txt`)) === "new d", "both kept under free names");
    expect((await original(`${folder}/c.txt`)) === old.c && (await original(`${folder}/d.txt`)) === old.d, "the existing ones untouched");
    expect((await original(`${folder}/e.txt`)) === "new e", "the new name uploaded as it is");
  });

  await step(`${label}: a file is cancelled while it uploads, then retried`, async () => {
    let held = null;
    let holding;
    const partHeld = new Promise((resolve) => (holding = resolve));
    await page.route("**/binary-upload/**", (route) => {
      if (held) return route.continue();
      held = route; // never answered: the part hangs until the person cancels
      aborted.push(route.request().url());
      holding();
    });
    await dropFiles(page, [["slow.txt", "slow bytes"]]);
    // Waited for as it happens, not for a fixed while: on a loaded machine the listing and
    // the initiate before the part took more than the 10 s this step once allowed.
    await waitState(page, "slow.txt", "uploading");
    await Promise.race([partHeld, page.waitForTimeout(30_000)]);
    expect(held, "the part was sent");
    await row(page, "slow.txt").getByRole("button", { name: "Cancel slow.txt" }).click();
    await waitState(page, "slow.txt", "cancelled");
    await held.abort().catch(() => {});
    expect((await original(`${folder}/slow.txt`)) === null, "a cancelled file is not created");
    await row(page, "slow.txt").getByRole("button", { name: "Retry slow.txt" }).click();
    await waitState(page, "slow.txt", "done");
    await page.unroute("**/binary-upload/**");
    expect((await original(`${folder}/slow.txt`)) === "slow bytes", "the retried file arrived");
  });
  await context.close();
  return { folder, versioned: ids.a };
}

finish(async () => {
  report.desktop = await run("desktop", DESKTOP);
  report.phone = await run("phone", PHONE);
});
