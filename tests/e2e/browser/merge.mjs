// Two browsers edit one asset's metadata, at desktop and at phone width. Different fields:
// the second save meets a 412, and the page merges (re-reads the asset, applies only its
// own field again, retries once): both changes are kept. The same field: the conflict is
// shown with the current value, and nothing is overwritten. A retry that meets yet another
// change is not retried a second time: the conflict is shown.
//
//   node merge.mjs   (inputs: see harness.mjs, and UI_ASSETS: JSON {desktop, phone} of
//   asset ids, each with dc:title "Original title" and dc:description "Original description")
import { DESKTOP, PHONE, URL_, allow, api, browser, expect, finish, overflow, shot, signIn, step } from "./harness.mjs";

const ASSETS = JSON.parse(process.env.UI_ASSETS);

const serverMetadata = async (id) => (await (await api("GET", `/adobe/assets/${encodeURIComponent(id)}/metadata`)).json()).assetMetadata;

async function edit(page, key, value) {
  await page.getByRole("button", { name: `Edit ${key}`, exact: true }).click();
  await page.getByLabel(`New value of ${key}`).fill(value);
  await page.getByRole("button", { name: "Save", exact: true }).click();
}

/** Counts the PATCH answers a page gets, by status. */
function patches(page) {
  const seen = [];
  page.on("response", (res) => {
    if (res.request().method() === "PATCH" && res.url().endsWith("/metadata")) seen.push(res.status());
  });
  return seen;
}

async function run(label, viewport) {
  const id = ASSETS[label];
  const assetUrl = `${URL_}/#/asset/${encodeURIComponent(id)}`;
  const a = await browser(`merge-${label}-a`, viewport);
  const b = await browser(`merge-${label}-b`, viewport);
  const seenByA = patches(a.page);
  allow("PATCH", /\/metadata$/, 412);
  for (const { page } of [a, b]) {
    await signIn(page);
    await page.goto(assetUrl);
    await page.getByRole("heading", { level: 1, name: "Original title" }).waitFor();
    await page.getByText("All metadata (raw)").click(); // the field editors fold under the form
  }

  await step(`${label}: tabs that change different fields both keep their change`, async () => {
    const title = `Title from tab B (${label})`;
    await edit(b.page, "dc:title", title);
    await b.page.getByRole("heading", { level: 1, name: title }).waitFor();
    // Tab A still shows the old title; it changes the description.
    const description = `Description from tab A (${label})`;
    await edit(a.page, "dc:description", description);
    await a.page.locator(".notice", { hasText: "Saved dc:description (merged with another change" }).waitFor();
    await a.page.getByRole("heading", { level: 1, name: title }).waitFor(); // B's change shows in A
    await a.page.locator('tr[data-key="dc:description"] .value', { hasText: description }).waitFor();
    expect((await a.page.locator(".conflict").count()) === 0, "no conflict shown");
    expect(JSON.stringify(seenByA) === "[412,200]", `one 412, then the retry saved: ${seenByA}`);
    const held = await serverMetadata(id);
    expect(held["dc:title"] === title && held["dc:description"] === description, `both kept: ${JSON.stringify(held)}`);
    expect((await overflow(a.page)) <= 0, "no sideways scrolling");
    await shot(a.page, `${label}-merge-saved`);
  });

  await step(`${label}: tabs that change the same field: the conflict is shown`, async () => {
    const theirs = `Title from tab B (${label}), again`;
    // Tab B has not seen A's description: its save is merged in turn.
    await edit(b.page, "dc:title", theirs);
    await b.page.locator(".notice", { hasText: "Saved dc:title (merged with another change" }).waitFor();
    await b.page.getByRole("heading", { level: 1, name: theirs }).waitFor();
    seenByA.length = 0;
    await edit(a.page, "dc:title", `Title from tab A (${label})`);
    const conflict = a.page.locator(".conflict");
    await conflict.waitFor();
    const current = await conflict.locator(".current-value").textContent();
    expect(current === theirs, `the current value is shown: ${current}`);
    expect(JSON.stringify(seenByA) === "[412]", `no retry over another's change to the field: ${seenByA}`);
    expect((await serverMetadata(id))["dc:title"] === theirs, "nothing was overwritten");
    await shot(a.page, `${label}-merge-conflict`);
    await a.page.getByRole("button", { name: "Keep the current values" }).click();
    await conflict.waitFor({ state: "detached" });
  });

  await step(`${label}: a retry that meets yet another change is not retried again`, async () => {
    await api("PATCH", `/adobe/assets/${encodeURIComponent(id)}/metadata`,
      JSON.stringify([{ op: "add", path: "/assetMetadata/dc:rights", value: `Rights changed first (${label})` }]),
      { "Content-Type": "application/json-patch+json", "If-Match": "*" });
    let sent = 0;
    // Between tab A's re-read and its retry, someone changes the asset again.
    await a.page.route((url) => url.pathname.endsWith("/metadata"), async (route) => {
      if (route.request().method() === "PATCH" && ++sent === 2) {
        await api("PATCH", `/adobe/assets/${encodeURIComponent(id)}/metadata`,
          JSON.stringify([{ op: "add", path: "/assetMetadata/dc:rights", value: `Rights changed meanwhile (${label})` }]),
          { "Content-Type": "application/json-patch+json", "If-Match": "*" });
      }
      await route.continue();
    });
    seenByA.length = 0;
    await edit(a.page, "dc:description", "Not saved: the asset kept changing");
    await a.page.locator(".conflict").waitFor();
    expect(JSON.stringify(seenByA) === "[412,412]", `one retry only: ${seenByA}`);
    const held = await serverMetadata(id);
    expect(held["dc:description"] === `Description from tab A (${label})`, `nothing written: ${JSON.stringify(held)}`);
    await a.page.locator('tr[data-key="dc:rights"] .value', { hasText: `Rights changed meanwhile (${label})` }).waitFor();
    await shot(a.page, `${label}-merge-retried-once`);
    await a.page.getByRole("button", { name: "Keep the current values" }).click();
  });
  await a.context.close();
  await b.context.close();
}

finish(async () => {
  await run("desktop", DESKTOP);
  await run("phone", PHONE);
});
