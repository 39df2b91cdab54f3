// The search page as a person uses it, at desktop and at phone width: words found from
// their start while typing, "jpeg" finding JPEGs, format and status chosen from the
// facets, a reversed date range refused in the form (and never sent), totals and page
// counts, an empty state that helps, and on a phone the results before the filters.
//
//   node search.mjs   (inputs: see harness.mjs). The test seeds, in /content/dam/campaign:
//   spring-hero.jpg "Spring launch hero shot" approved, spring-banner.png "Spring banner"
//   rejected, autumn.jpg "Autumn leaves" approved, harbour.jpg "Harbour at dusk" rejected,
//   notes.txt "Springfield notes"; and 14 PNGs in /content/dam/fillers: 19 assets.
import { DESKTOP, PHONE, URL_, browser, expect, finish, overflow, report, searchTotal, shot, signIn, step } from "./harness.mjs";

const ALL = 19;
report.reversedRangesSent = 0;

/** Counts search requests that carry a modified-date range whose start is after its end. */
function watchRanges(context) {
  const walk = (node) => {
    if (!node || typeof node !== "object") return;
    const r = node.range?.["repositoryMetadata.repo:modifyDate"];
    if (r && (r.gte || r.gt) && (r.lte || r.lt) && (r.gte || r.gt) > (r.lte || r.lt)) report.reversedRangesSent++;
    for (const v of Object.values(node)) (Array.isArray(v) ? v : [v]).forEach(walk);
  };
  context.on("request", (req) => {
    if (req.method() === "POST" && req.url().includes("/adobe/assets/search")) walk(JSON.parse(req.postData() || "{}"));
  });
}

const total = (page) => page.getByTestId("total");
/** Waits for a total of `n`; with `query` (a URL query string), for that query's own total,
 * where the last query's total may have been `n` too. */
async function waitTotal(page, n, query) {
  if (query === undefined) return total(page).filter({ hasText: new RegExp(`^${n} results?\\b`) }).waitFor();
  const got = await searchTotal(page, query);
  expect(got === n, `${got} results for ${query}, not ${n}`);
}
const names = (page) => page.locator(".results .card").evaluateAll((cs) => cs.map((c) => c.dataset.name));
const sameSet = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
const textBox = (page) => page.getByRole("searchbox", { name: "Search text" });

async function openFilters(page) {
  const toggle = page.getByRole("button", { name: /^Filters/ });
  if ((await toggle.isVisible()) && (await toggle.getAttribute("aria-expanded")) === "false") await toggle.click();
  await page.locator("#search-filters").waitFor({ state: "visible" });
}

async function run(label, viewport) {
  const { context, page } = await browser(`search-${label}`, viewport);
  watchRanges(context);
  const day = (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

  await step(`${label}: "sprin" typed finds "spring", as it is typed`, async () => {
    await signIn(page);
    await page.goto(`${URL_}/#/search`);
    await waitTotal(page, ALL);
    const before = await page.evaluate(() => history.length);
    await textBox(page).pressSequentially("sprin", { delay: 80 });
    // The query goes into the URL once typing pauses.
    await page.waitForFunction(() => location.hash === "#/search?q=sprin");
    await waitTotal(page, 3);
    const found = await names(page);
    expect(sameSet(found, ["spring-hero.jpg", "spring-banner.png", "notes.txt"]), `sprin finds spring and Springfield: ${found}`);
    expect((await page.evaluate(() => history.length)) - before <= 1, "typing adds no history entry per key");
    await shot(page, `${label}-search-prefix`);
    // Typing on narrows as the words grow.
    await textBox(page).pressSequentially("g laun", { delay: 50 });
    await page.waitForFunction(() => location.hash === "#/search?q=spring+laun");
    await waitTotal(page, 1);
    expect(sameSet(await names(page), ["spring-hero.jpg"]), "every word matches from its start");
    return { found };
  });

  await step(`${label}: "jpeg" typed finds the JPEGs`, async () => {
    await textBox(page).fill("jpeg");
    await waitTotal(page, 3);
    const found = await names(page);
    expect(sameSet(found, ["spring-hero.jpg", "autumn.jpg", "harbour.jpg"]), `jpeg finds the JPEGs: ${found}`);
    await page.locator("#search-hint", { hasText: "JPEG image" }).waitFor();
    await textBox(page).fill("spring png");
    await waitTotal(page, 1);
    expect(sameSet(await names(page), ["spring-banner.png"]), "a format word narrows the other words");
    return { found };
  });

  await step(`${label}: format and status are choices drawn from the facets`, async () => {
    await textBox(page).fill("");
    await waitTotal(page, ALL);
    await openFilters(page);
    const format = page.locator("#search-filters select[name=format]");
    const formats = await format.locator("option").allTextContents();
    for (const want of ["Any format", "JPEG image (3)", "PNG image (15)", "Plain text (1)"]) {
      expect(formats.includes(want), `format offers ${want}: ${formats}`);
    }
    await format.selectOption({ label: "JPEG image (3)" });
    await waitTotal(page, 3);
    // The other formats stay on offer, with their counts, while one is chosen.
    const still = await format.locator("option").allTextContents();
    expect(still.includes("PNG image (15)"), `other formats still offered: ${still}`);
    const status = page.locator("#search-filters select[name=status]");
    const statuses = await status.locator("option").allTextContents();
    expect(sameSet(statuses, ["Any status", "Approved (2)", "Rejected (1)"]), `statuses of the JPEGs: ${statuses}`);
    await status.selectOption({ label: "Approved (2)" });
    await waitTotal(page, 2);
    expect(sameSet(await names(page), ["spring-hero.jpg", "autumn.jpg"]), "approved JPEGs");
    expect(page.url().includes("format=image%2Fjpeg") && page.url().includes("status=approved"), `in the URL: ${page.url()}`);
    if (viewport.width < 700) {
      const says = await page.getByRole("button", { name: /^Filters/ }).textContent();
      expect(says === "Filters (2)", `the button counts the filters: ${says}`);
    }
    await shot(page, `${label}-search-choices`);
    await page.getByRole("button", { name: "Clear filters" }).click();
    await waitTotal(page, ALL, "");
    return { formats, statuses };
  });

  await step(`${label}: a reversed date range is an error in the form and is not sent`, async () => {
    await openFilters(page);
    const sent = report.reversedRangesSent;
    await page.locator("#search-filters input[name=from]").fill(day(0));
    await waitTotal(page, ALL, `from=${day(0)}`); // the last search had as many hits
    await page.locator("#search-filters input[name=to]").fill(day(-1));
    const error = page.locator("#range-error");
    await error.filter({ hasText: "before the start date" }).waitFor();
    expect((await page.locator("#search-filters input[name=to]").getAttribute("aria-invalid")) === "true", "the end date is marked invalid");
    await page.getByTestId("invalid").waitFor();
    expect((await total(page).count()) === 0, "no total of 0 is shown for it");
    await shot(page, `${label}-search-range-error`);
    // The same range in a link is refused alike.
    await page.goto(`${URL_}/#/search?from=${day(0)}&to=${day(-1)}`);
    await page.getByTestId("invalid").waitFor();
    await page.waitForTimeout(500); // a request, if one were sent, would be seen by now
    expect(report.reversedRangesSent === sent, "the reversed range never reached the server");
    // Corrected, it searches.
    await openFilters(page);
    await page.locator("#search-filters input[name=to]").fill(day(1));
    await waitTotal(page, ALL, `from=${day(0)}&to=${day(1)}`);
    expect((await error.textContent()) === "", "the error is gone");
    await page.getByRole("button", { name: "Clear filters" }).click();
    await waitTotal(page, ALL, "");
  });

  await step(`${label}: totals and page counts`, async () => {
    await page.goto(`${URL_}/#/search?q=*&sort=name-asc`);
    // The last search also had 19 hits: wait for this one's order (by name).
    const first = (name, n) =>
      page.waitForFunction(([name, n]) => {
        const cards = [...document.querySelectorAll(".results .card")];
        return cards.length === n && cards[0].dataset.name === name;
      }, [name, n]);
    await first("autumn.jpg", 12);
    await total(page).filter({ hasText: `${ALL} results · page 1 of 2` }).waitFor();
    await page.getByRole("button", { name: "Next page" }).click();
    await first("filler-11.png", ALL - 12);
    await total(page).filter({ hasText: "page 2 of 2" }).waitFor();
    await page.locator(".pager", { hasText: "Page 2 of 2" }).waitFor();
  });

  await step(`${label}: an empty state says what was searched and how to widen it`, async () => {
    await page.goto(`${URL_}/#/search?q=spring&format=image%2Fjpeg&status=rejected`);
    await waitTotal(page, 0);
    const empty = page.getByTestId("empty");
    const text = await empty.textContent();
    for (const want of ["“spring”", "JPEG image", "Rejected"]) expect(text.includes(want), `says ${want}: ${text}`);
    await empty.getByTestId("without-filters").filter({ hasText: "3 assets match without the filters" }).waitFor();
    await shot(page, `${label}-search-empty`);
    await empty.getByRole("button", { name: "Clear all filters" }).click();
    await waitTotal(page, 3);
    await page.goto(`${URL_}/#/search?q=zzzqqq`);
    await waitTotal(page, 0);
    await page.getByTestId("empty").filter({ hasText: "Check the spelling" }).waitFor();
    await page.getByRole("button", { name: "Show everything" }).click();
    await waitTotal(page, ALL);
  });

  await step(`${label}: the results come first`, async () => {
    await page.goto(`${URL_}/#/search?q=*`);
    await waitTotal(page, ALL, "q=*");
    const card = await page.locator(".results .card").first().boundingBox();
    expect(card && card.y < viewport.height - 100, `the first result is on the first screen (y ${card?.y})`);
    const panel = page.locator("#search-filters");
    const toggle = page.getByRole("button", { name: /^Filters/ });
    if (viewport.width < 700) {
      expect(!(await panel.isVisible()), "the filters are closed on a phone");
      expect((await toggle.getAttribute("aria-expanded")) === "false", "the button says so");
      expect((await overflow(page)) <= 0, "no sideways scrolling");
      await shot(page, `${label}-search-results`);
      await toggle.click();
      await panel.waitFor({ state: "visible" });
      await page.locator("#search-filters select[name=format]").waitFor();
      expect((await overflow(page)) <= 0, "no sideways scrolling with the filters open");
      await shot(page, `${label}-search-filters`);
      await page.getByRole("button", { name: `Show ${ALL} results` }).click();
      await panel.waitFor({ state: "hidden" });
    } else {
      expect(!(await toggle.isVisible()), "no filter button on a wide screen");
      const box = await panel.boundingBox();
      expect(box && box.x + box.width <= card.x, "the filters beside the results");
      await shot(page, `${label}-search-results`);
      await shot(page, `${label}-search-filters`);
    }
  });
  await context.close();
}

finish(async () => {
  await run("desktop", DESKTOP);
  await run("phone", PHONE);
});
