// Viewing assets, in Debian's chromium driven by playwright-core, at desktop and at phone
// width: the lightbox (zoom by keys, buttons, wheel and pinch; fullscreen; previous and
// next with the arrow keys; Escape), the lightbox opened from the grid (Space on a
// focused card, a card's Preview button; Escape back to the card), a video played from
// its web rendition through a media URL (byte ranges, a seek to the middle), a PDF's
// second page, text previews that show markup as text and never run it, the metadata
// form (title, keywords as tags, status) checked through the API, relations shown by
// name, and a version previewed, downloaded and restored with the history kept. Prints a
// JSON report on stdout; exits 1 when a step fails.
//
//   node view.mjs   (inputs: see harness.mjs, and)
//     UI_VIEW          {"desktop": {name: assetId, ...}, "phone": {...}, "texts": {...}}
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as harness from "./harness.mjs";
import { DESKTOP, PHONE, TOKEN, URL_, assetShown, browser, expect, finish, requested, signIn } from "./harness.mjs";

const VIEW = JSON.parse(process.env.UI_VIEW);
// This script's steps name their page, and its screenshots are of the window.
const step = (name, _page, fn) => harness.step(name, fn);
const shot = (page, name, fullPage = false) => harness.shot(page, name, fullPage);
const report = { requested };
// The answers to the video's requests: {status, range, url} (the <video> loads by URL).
const VIDEO_PATH = "/renditions/cq5dam.video.fullhd-bp.mp4/";
const media = [];
const { aborted } = harness;
// A <video> drops a range it no longer needs (a seek, enough buffered): not a failure.
harness.mayAbort(VIDEO_PATH);

const sha1 = (data) => createHash("sha1").update(data).digest("hex");
const auth = { Authorization: `Bearer ${TOKEN}`, "X-Api-Key": "view-test" };
async function api(method, path) {
  const r = await fetch(URL_ + path, { method, headers: auth });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
const assetUrl = (id) => `${URL_}/#/asset/${encodeURIComponent(id)}`;
const zoomLevel = async (page) => (await page.getByTestId("zoom-level").textContent()).trim();
/** The zoom shown becomes `level` (a key or a click re-renders after it returns). */
const zoomIs = (page, level) => page.getByTestId("zoom-level").filter({ hasText: new RegExp(`^\\s*${level}\\s*$`) }).waitFor();
/** Opens the page of asset `id` and waits until it shows that asset, not the last one. */
async function openAsset(page, id) {
  await page.goto(assetUrl(id));
  await assetShown(page, id);
}

async function run(label, viewport) {
  const ids = VIEW[label];
  // Played without a gesture: the video step starts it from the script.
  const { context, page } = await browser(label, viewport, { args: ["--autoplay-policy=no-user-gesture-required"] });
  context.on("response", (res) => {
    if (!res.url().includes(VIDEO_PATH)) return;
    const got = res.headers();
    const headers = { type: got["content-type"], nosniff: got["x-content-type-options"], referrer: got["referrer-policy"], range: got["content-range"] };
    media.push(res.request().allHeaders().then((h) => ({ status: res.status(), range: h.range || null, url: res.url(), headers })));
  });
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

  await step(`${label}: sign in`, page, async () => {
    await signIn(page);
  });

  await step(`${label}: the lightbox zooms, goes full screen, and steps through the folder`, page, async () => {
    await openAsset(page, ids["a-red.png"]);
    await page.locator("img.preview").waitFor();
    await page.getByRole("button", { name: "Open in the lightbox" }).click();
    const box = page.locator("dialog.lightbox[open]");
    await box.waitFor();
    await box.locator(".zoom-stage img").waitFor();
    const count = Object.keys(ids).length;
    await box.getByTestId("lightbox-position").filter({ hasText: `1 of ${count}` }).waitFor();
    expect((await box.getByTestId("lightbox-name").textContent()) === "a-red.png", "opens on the asset");
    expect((await zoomLevel(page)) === "100%", "starts fitted");
    await page.keyboard.press("+");
    await zoomIs(page, "150%"); // + zooms in
    await box.getByRole("button", { name: "Zoom in" }).click();
    await zoomIs(page, "225%"); // the button zooms in
    await box.getByRole("button", { name: "Zoom out" }).click();
    await zoomIs(page, "150%");
    await page.keyboard.press("0");
    await zoomIs(page, "100%"); // 0 fits again
    const stage = box.locator(".zoom-stage");
    const at = await stage.boundingBox();
    await page.mouse.move(at.x + at.width / 2, at.y + at.height / 2);
    await page.mouse.wheel(0, -100);
    await page.locator('[data-testid=zoom-level]:text("120%")').waitFor();
    const transform = await box.locator(".zoom-stage img").evaluate((img) => img.style.transform);
    expect(transform.includes("scale(1.2)"), `the image is scaled: ${transform}`);
    // Pinch: two pointers move apart to twice their distance.
    await page.keyboard.press("0");
    await zoomIs(page, "100%");
    await stage.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const y = r.top + r.height / 2;
      const x = r.left + r.width / 2;
      const ev = (type, id, cx) => el.dispatchEvent(new PointerEvent(type, { pointerId: id, clientX: cx, clientY: y, bubbles: true, pointerType: "touch", isPrimary: id === 1 }));
      ev("pointerdown", 1, x - 40);
      ev("pointerdown", 2, x + 40);
      ev("pointermove", 2, x + 120);
      ev("pointerup", 1, x - 40);
      ev("pointerup", 2, x + 120);
    });
    await page.locator('[data-testid=zoom-level]:text("200%")').waitFor();
    await page.keyboard.press("0");
    await box.getByRole("button", { name: "Fullscreen" }).click();
    await page.waitForFunction(() => document.fullscreenElement?.classList.contains("lightbox-frame"));
    await shot(page, `${label}-lightbox`);
    await page.keyboard.press("f"); // leaves full screen again
    await page.waitForFunction(() => !document.fullscreenElement);
    await page.keyboard.press("ArrowRight");
    await box.getByTestId("lightbox-name").filter({ hasText: "b-green.jpg" }).waitFor();
    await box.getByTestId("lightbox-position").filter({ hasText: `2 of ${count}` }).waitFor();
    await page.keyboard.press("ArrowRight"); // by name: big.txt comes next, shown as text
    await box.getByTestId("lightbox-name").filter({ hasText: "big.txt" }).waitFor();
    await box.getByTestId("text-preview").waitFor();
    await page.keyboard.press("ArrowLeft");
    await box.getByTestId("lightbox-name").filter({ hasText: "b-green.jpg" }).waitFor();
    await box.locator('.zoom-stage img[alt="Preview of b-green.jpg"]').waitFor();
    await page.keyboard.press("Escape");
    await box.waitFor({ state: "detached" });
    // Closed on the asset shown last: its page.
    await page.waitForURL(assetUrl(ids["b-green.jpg"]));
    await page.getByRole("heading", { level: 1, name: "b-green.jpg" }).waitFor();
  });

  await step(`${label}: the lightbox opens from the grid and goes back to the card`, page, async () => {
    await page.goto(`${URL_}/#/browse/view-${label}`);
    const grid = page.getByRole("list", { name: "Assets" });
    const names = Object.keys(ids).sort(); // the grid's order: by name
    const card = (name) => grid.locator(`a.card[data-name="${name}"]`);
    await card(names[names.length - 1]).waitFor();
    // Space on a focused card, as in a file manager.
    await card("b-green.jpg").focus();
    await page.keyboard.press(" ");
    const box = page.locator("dialog.lightbox[open]");
    await box.waitFor();
    await box.getByTestId("lightbox-name").filter({ hasText: "b-green.jpg" }).waitFor();
    const at = names.indexOf("b-green.jpg") + 1;
    await box.getByTestId("lightbox-position").filter({ hasText: `${at} of ${names.length}` }).waitFor();
    await box.locator('.zoom-stage img[alt="Preview of b-green.jpg"]').waitFor();
    await page.keyboard.press("ArrowRight"); // the next card of the grid
    await box.getByTestId("lightbox-name").filter({ hasText: names[at] }).waitFor();
    await page.keyboard.press("ArrowRight");
    await box.getByTestId("lightbox-name").filter({ hasText: names[at + 1] }).waitFor();
    await box.getByTestId("lightbox-position").filter({ hasText: `${at + 2} of ${names.length}` }).waitFor();
    await box.locator(`.zoom-stage img[alt="Preview of ${names[at + 1]}"]`).waitFor();
    await shot(page, `${label}-grid-lightbox`);
    await page.keyboard.press("Escape");
    await box.waitFor({ state: "detached" });
    // Back in the grid (no page left), the focus on the card of the asset shown last.
    expect(page.url() === `${URL_}/#/browse/view-${label}`, `still the grid: ${page.url()}`);
    await page.waitForFunction((name) => document.activeElement?.matches(`a.card[data-name="${name}"]`), names[at + 1]);
    // The card's Preview button does the same, for a pointer or a finger.
    await grid.getByRole("button", { name: "Preview a-red.png" }).click();
    await box.waitFor();
    await box.getByTestId("lightbox-position").filter({ hasText: `1 of ${names.length}` }).waitFor();
    await box.locator('.zoom-stage img[alt="Preview of a-red.png"]').waitFor();
    expect(await box.getByRole("button", { name: "Previous asset" }).isDisabled(), "nothing before the first");
    await box.getByRole("button", { name: "Close" }).click();
    await box.waitFor({ state: "detached" });
    await page.waitForFunction(() => document.activeElement?.matches('a.card[data-name="a-red.png"]'));
    expect((await overflow()) <= 0, "no sideways scrolling on the grid");
    // A selection's ZIP is the browser's own download, from a media URL that carries
    // the paths: nothing held in the tab, no POST of the paths.
    for (const name of ["a-red.png", "notes.txt"]) await grid.getByRole("checkbox", { name: `Select ${name}` }).click();
    const downloading = page.waitForEvent("download");
    await page.getByRole("toolbar", { name: "Selection" }).getByRole("button", { name: "Download ZIP", exact: true }).click();
    const download = await downloading;
    expect(download.suggestedFilename() === `view-${label}-2.zip`, `saved as ${download.suggestedFilename()}`);
    const zip = readFileSync(await download.path());
    expect(zip.subarray(0, 2).toString() === "PK" && zip.includes("a-red.png") && zip.includes("notes.txt") && !zip.includes("b-green.jpg"), "the two chosen, in a ZIP");
    const from = new URL(download.url());
    expect(from.origin + from.pathname === `${URL_}/adobe/assets/archive` && from.searchParams.has("media"), `by a media URL: ${download.url()}`);
    expect(!report.requested.includes("POST /adobe/assets/archive") && !download.url().includes(TOKEN), "no POST of the paths, no token");
    await page.getByRole("toolbar", { name: "Selection" }).getByRole("button", { name: "Clear", exact: true }).click();
  });

  await step(`${label}: a video plays from its web rendition`, page, async () => {
    media.length = 0;
    await page.goto(assetUrl(ids["clip.avi"]));
    // The page is this asset's, with its renditions in (the button depends on them).
    await page.getByRole("heading", { level: 1, name: "clip.avi" }).waitFor();
    await page.getByRole("button", { name: "▶ Play video" }).click();
    const video = page.getByTestId("video");
    await video.waitFor();
    // Played from a media URL (signed, minutes long, no token), not a blob held in the tab.
    const src = new URL(await video.getAttribute("src"));
    const path = `/adobe/assets/${encodeURIComponent(ids["clip.avi"])}/renditions/cq5dam.video.fullhd-bp.mp4/as/video.mp4`;
    const grant = src.searchParams.get("media") || "";
    expect(src.origin === URL_ && src.pathname === path && /^\d+\.[0-9a-f-]{36}\.[\w-]{43}$/.test(grant), `a media URL: ${src}`);
    expect(!src.href.includes(TOKEN) && [...src.searchParams.keys()].join() === "media", `nothing else in it: ${src}`);
    await page.waitForFunction(() => {
      const v = document.querySelector("video[data-testid=video]");
      return v && v.readyState >= 1 && v.duration > 0;
    });
    // Seek to the middle; then it plays on from there.
    const mid = await video.evaluate((v) => {
      v.dataset.seeked = "";
      v.addEventListener("seeked", () => (v.dataset.seeked = "yes"), { once: true });
      v.currentTime = v.duration / 2;
      return v.duration / 2;
    });
    await page.waitForFunction(() => document.querySelector("video[data-testid=video]").dataset.seeked === "yes");
    await video.evaluate((v) => v.play());
    await page.waitForFunction((from) => {
      const v = document.querySelector("video[data-testid=video]");
      return (!v.paused && v.currentTime > from + 0.2) || v.ended;
    }, mid);
    const state = await video.evaluate((v) => ({ duration: v.duration, readyState: v.readyState, width: v.videoWidth, height: v.videoHeight, at: v.currentTime, error: v.error?.message || null }));
    expect(Math.abs(state.duration - 2) < 0.2, `the video lasts 2 s: ${JSON.stringify(state)}`);
    expect(state.width === 320 && state.height === 240 && state.at > mid && !state.error, `decoded, seeked and playing: ${JSON.stringify(state)}`);
    const answers = await Promise.all(media);
    expect(answers.length > 0 && answers.every((a) => a.url.includes("?media=")), `loaded by its media URL: ${JSON.stringify(answers)}`);
    expect(answers.some((a) => a.status === 206 && /^bytes=\d+-\d*$/.test(a.range || "")), `a range answered with 206: ${JSON.stringify(answers)}`);
    expect(answers.every((a) => [200, 206].includes(a.status)), `nothing refused: ${JSON.stringify(answers)}`);
    const h = answers[0].headers;
    expect(h.type === "video/mp4" && h.nosniff === "nosniff" && h.referrer === "no-referrer", `the download headers: ${JSON.stringify(h)}`);
    // A 2 s clip comes whole with the first range (bytes=0-), so the seek above was
    // served from what the <video> holds; the same URL, from this page and without the
    // token, answers a range from the middle as a longer video's seek asks for it.
    const half = await page.evaluate(async (url) => {
      const r = await fetch(url, { headers: { Range: "bytes=1000-" }, credentials: "omit" });
      return { status: r.status, range: r.headers.get("content-range"), length: (await r.arrayBuffer()).byteLength };
    }, src.href);
    const total = Number(half.range?.split("/")[1]);
    expect(half.status === 206 && half.range === `bytes 1000-${total - 1}/${total}` && half.length === total - 1000, `a range from the middle: ${JSON.stringify(half)}`);
    expect(report.requested.some((r) => r.includes(VIDEO_PATH)), "played from the web rendition");
    await shot(page, `${label}-video`);
    return { ...state, mid, answers: answers.map((a) => `${a.status} ${a.range}`), aborted: aborted.length };
  });

  await step(`${label}: a PDF shows its second page`, page, async () => {
    await openAsset(page, ids["report.pdf"]);
    await page.getByTestId("page-number").filter({ hasText: "Page 1 of 3" }).waitFor();
    await page.getByRole("button", { name: "Next page" }).click();
    await page.getByTestId("page-number").filter({ hasText: "Page 2 of 3" }).waitFor();
    const img = page.locator('img.preview[alt="Page 2 of report.pdf"]');
    await img.waitFor();
    await page.waitForFunction(() => document.querySelector('img.preview[alt="Page 2 of report.pdf"]')?.naturalWidth > 0);
    expect(report.requested.some((r) => r.includes("/renditions/cq5dam.page.2.1280.1280.jpeg/")), "page 2 is its own rendition");
    await shot(page, `${label}-pdf-page-2`);
  });

  await step(`${label}: text, CSV and JSON show as text, markup never runs`, page, async () => {
    await openAsset(page, ids["notes.txt"]);
    const pre = page.getByTestId("text-preview");
    await pre.waitFor();
    const text = await pre.textContent();
    expect(text === VIEW.texts["notes.txt"], `the text as it is: ${JSON.stringify(text)}`);
    const safe = await page.evaluate(() => ({
      pwned: window.__pwned === undefined,
      elements: document.querySelectorAll(".text-preview *").length,
    }));
    expect(safe.pwned && safe.elements === 0, `nothing in the file ran or became an element: ${JSON.stringify(safe)}`);
    await shot(page, `${label}-text`);
    await openAsset(page, ids["data.json"]);
    await page.getByTestId("text-preview").filter({ hasText: '"title": "Spring launch"' }).waitFor();
    await openAsset(page, ids["table.csv"]);
    await page.getByTestId("text-preview").filter({ hasText: "name,size\nhero.jpg,1200" }).waitFor();
    // The large one: only its start is read (a range), and the page says so.
    await openAsset(page, ids["big.txt"]);
    await page.getByText(/Showing the first 256 KB of/).waitFor();
    expect((await page.getByTestId("text-preview").textContent()).length === 256 * 1024, "256 KB shown");
    const csp = await (await fetch(URL_ + "/")).headers.get("content-security-policy");
    expect(csp.includes("default-src 'self'") && !csp.includes("unsafe-eval"), `CSP unchanged: ${csp}`);
  });

  await step(`${label}: the metadata form edits the title, keywords and status`, page, async () => {
    await openAsset(page, ids["a-red.png"]);
    const form = page.locator("form.metadata-form");
    await form.waitFor();
    expect((await form.locator("[data-fact=Width]").textContent()) === "800", "width shown, read only");
    expect((await form.locator("[data-fact=Height]").textContent()) === "600", "height shown");
    expect((await form.locator("[data-fact=Format]").textContent()) === "image/png", "format shown");
    await form.getByLabel("Title").fill("Red hero");
    const keywords = form.getByPlaceholder("Add keywords (Enter)");
    for (const k of ["spring", "launch", "hero"]) {
      await keywords.fill(k);
      await keywords.press("Enter");
    }
    await form.getByRole("button", { name: "Remove keyword launch" }).click();
    await form.getByLabel("Status").selectOption("approved");
    // Save; and in the very instant the saved revision is drawn (the heading changes),
    // a keyword is removed: the edit acts on the saved revision's values and stays (the
    // form is never reset under it a moment later).
    await page.evaluate(() => new Promise((resolve) => {
      const heading = document.querySelector(".asset-head h1");
      const seen = new MutationObserver(() => {
        if (heading.textContent !== "Red hero") return;
        seen.disconnect();
        document.querySelector('form.metadata-form button[aria-label="Remove keyword spring"]').click();
        resolve();
      });
      seen.observe(heading, { subtree: true, childList: true, characterData: true });
      [...document.querySelectorAll("form.metadata-form button")].find((b) => b.textContent === "Save changes").click();
    }));
    await page.getByRole("heading", { level: 1, name: "Red hero" }).waitFor();
    const meta = await api("GET", `/adobe/assets/${encodeURIComponent(ids["a-red.png"])}/metadata`);
    const got = meta.assetMetadata;
    expect(got["dc:title"] === "Red hero", `title saved: ${got["dc:title"]}`);
    expect(JSON.stringify(got["dc:subject"]) === '["spring","hero"]', `keywords saved: ${JSON.stringify(got["dc:subject"])}`);
    expect(got["dam:assetStatus"] === "approved", "status saved");
    await form.getByText("1 unsaved change").waitFor(); // the removal made then, kept
    await page.waitForTimeout(300); // past the next frames: still kept
    expect((await form.locator('.tags li[data-tag="spring"]').count()) === 0, "the keyword removed as the save came in stays removed");
    // Removing every keyword removes the property.
    await form.getByRole("button", { name: "Remove keyword hero" }).click();
    await form.getByRole("button", { name: "Save changes" }).click();
    await form.getByText(/unsaved change/).waitFor({ state: "detached" }); // the saved revision is in
    const after = await api("GET", `/adobe/assets/${encodeURIComponent(ids["a-red.png"])}/metadata`);
    expect(!("dc:subject" in after.assetMetadata) && after.assetMetadata["dc:title"] === "Red hero", "keywords removed, title kept");
    // The rest is in the raw view, where the technical facts are read only too.
    await page.getByText("All metadata (raw)").click();
    await page.getByRole("heading", { name: "repositoryMetadata" }).waitFor();
    await page.getByRole("button", { name: "Edit dc:title" }).waitFor();
    const width = page.locator('tr[data-key="tiff:ImageWidth"]');
    expect((await width.locator(".value").textContent()) === "800", "the width is shown in the raw view");
    expect((await width.getByRole("button").count()) === 0, "and cannot be edited there");
    expect((await overflow()) <= 0, "no sideways scrolling on the asset page");
    await shot(page, `${label}-metadata-form`, true);
  });

  await step(`${label}: relations show the related asset's name and thumbnail`, page, async () => {
    const rel = page.locator(`.relation[data-related="${ids["b-green.jpg"]}"]`);
    await rel.locator(".relation-name", { hasText: "b-green.jpg" }).waitFor();
    await rel.locator(".small-thumb img").waitFor();
    expect((await rel.textContent()).includes("/content/dam/"), "its path is shown");
    expect(!(await page.locator("section[aria-labelledby=rel-h]").textContent()).includes("urn:aaid"), "no bare URN");
    await rel.scrollIntoViewIfNeeded();
    await shot(page, `${label}-relations`);
  });

  await step(`${label}: a version is previewed, downloaded and restored, the history kept`, page, async () => {
    const id = ids["notes.txt"];
    await openAsset(page, id);
    const rows = page.locator("[data-testid=versions] tbody tr");
    await rows.nth(1).waitFor();
    await page.getByRole("button", { name: "Preview version 1.0" }).click();
    await page.locator(".version-preview [data-testid=text-preview]").filter({ hasText: VIEW.texts.first }).waitFor();
    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download version 1.0" }).click();
    const download = await downloading;
    expect(download.suggestedFilename() === "notes-1.0.txt", `saved as ${download.suggestedFilename()}`);
    expect(readFileSync(await download.path(), "utf8") === VIEW.texts.first, "the download is version 1.0");
    const from = new URL(download.url());
    const path = `/adobe/assets/${encodeURIComponent(id)}/versions/1.0/as/notes-1.0.txt`;
    expect(from.origin + from.pathname === URL_ + path && from.searchParams.has("media"), `by a media URL: ${download.url()}`);
    await shot(page, `${label}-version-preview`);
    await page.getByRole("button", { name: "Restore version 1.0" }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.getByRole("button", { name: "Restore" }).click();
    await page.locator("[data-testid=versions] tbody tr[data-version='1.1']").waitFor();
    const seen = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-version")));
    expect(JSON.stringify(seen) === '["1.0","1.1","current"]', `versions shown: ${seen}`);
    const items = (await api("GET", `/adobe/assets/${encodeURIComponent(id)}/versions`)).items;
    expect(items.map((v) => v.name).join() === "1.0,1.1,current", "the server keeps three");
    expect(items[0].sha1 === sha1(VIEW.texts.first) && items[2].sha1 === sha1(VIEW.texts.first), "1.0 is the current original again");
    expect(items[1].sha1 === sha1(VIEW.texts["notes.txt"]), "the replaced original is kept as 1.1");
    await shot(page, `${label}-version-restored`, true);
  });
  await context.close();
}

finish(async () => {
  await run("desktop", DESKTOP);
  await run("phone", PHONE);
});
