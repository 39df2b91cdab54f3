// The search page: text matched from the start of each word while typing, format and
// status chosen from the facets' values (with names people use: "jpeg" finds JPEGs), a
// date range checked before it is sent, totals and page counts, an empty state that says
// what was searched and how to widen it, and on a phone the results first, with the
// filters behind a button. The query lives in the URL hash (never the token).
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { ROOT } from "./api.js";
import { Thumb, assetHash, go, useTitle } from "./app.js";
import { formatLabel, formatOfWord, statusLabel } from "./formats.js";

const html = htm.bind(h);
export const PAGE_SIZE = 12;
const TYPING_MS = 250; // results follow the text this long after the last key
const MAX_NODES = 5; // the search API's limit on a query array and on and/or children
const FIELDS = ["q", "format", "status", "from", "to", "folder", "sort"];
const FILTERS = ["format", "status", "from", "to", "folder"];
const FORMAT = "repositoryMetadata.dc:format";
const STATUS = "assetMetadata.dam:assetStatus";
const MODIFIED = "repositoryMetadata.repo:modifyDate";

export const SORTS = {
  relevance: null,
  "name-asc": { field: "repositoryMetadata.repo:name", order: "ASC" },
  "modified-desc": { field: MODIFIED, order: "DESC" },
  "size-desc": { field: "repositoryMetadata.repo:size", order: "DESC" },
};
const SORT_LABELS = { relevance: "Relevance", "name-asc": "Name", "modified-desc": "Newest", "size-desc": "Largest" };

export const readForm = (params) => Object.fromEntries(FIELDS.map((k) => [k, params.get(k) || ""]));
/** The form as the URL's query string (the fields that are set, in their order). */
export const queryOf = (form) => new URLSearchParams(FIELDS.filter((k) => form[k]).map((k) => [k, form[k]])).toString();

// -- checking the form ------------------------------------------------------------------

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
function isDay(s) {
  const m = DAY.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
}

/** The form's faults, by field: {from?, to?, folder?}. Empty when it can be sent. */
export function validate(f) {
  const errors = {};
  if (f.from && !isDay(f.from)) errors.from = `“${f.from}” is not a date (YYYY-MM-DD).`;
  if (f.to && !isDay(f.to)) errors.to = `“${f.to}” is not a date (YYYY-MM-DD).`;
  // ISO days compare as strings.
  if (!errors.from && !errors.to && f.from && f.to && f.from > f.to) {
    errors.to = `The end date (${f.to}) is before the start date (${f.from}): no asset can match. Swap them or change one.`;
  }
  const folder = f.folder.trim();
  if (folder && folder !== ROOT && !folder.startsWith(ROOT + "/")) {
    errors.folder = `A folder is a path below ${ROOT}, such as ${ROOT}/photos.`;
  }
  return errors;
}

// -- the request ------------------------------------------------------------------------

/** Nodes joined under `kind` ("and" / "or") in groups the API accepts (at most 5 each). */
function group(kind, nodes) {
  if (nodes.length === 1) return nodes[0];
  if (nodes.length <= MAX_NODES) return { [kind]: nodes };
  const chunks = [];
  for (let i = 0; i < nodes.length; i += MAX_NODES) chunks.push(group(kind, nodes.slice(i, i + MAX_NODES)));
  return group(kind, chunks);
}

// Every word matches from its start ("sprin" finds "spring"). At the top level of the
// query, so that relevance is scored on it.
const textMatch = (text) => ({ match: { text, operator: "startsWith" } });

/** The typed text as query nodes; words that name a format ("jpeg", "pdf", "video")
 * also find assets of that format. -> {nodes, formats: [{word, label}]} */
export function textQuery(q) {
  const text = (q || "").trim();
  if (!text || text === "*") return { nodes: [{ match: { text: "*" } }], formats: [] };
  const words = text.match(/[\p{L}\p{N}]+/gu) || [];
  if (!words.length) return { nodes: [{ match: { text } }], formats: [] }; // "!!!": no hit, as the API says
  const plain = [];
  const named = [];
  for (const w of words) {
    const f = formatOfWord(w);
    if (f) named.push({ word: w, ...f });
    else plain.push(w);
  }
  const nodes = plain.length ? [textMatch(plain.join(" "))] : [];
  if (named.length) {
    // Format words are alternatives: "jpeg png" finds JPEGs and PNGs.
    const mimes = [...new Set(named.filter((n) => n.mime).map((n) => n.mime))];
    const families = [...new Set(named.filter((n) => n.family).map((n) => n.family))];
    const alternatives = [
      ...(mimes.length ? [{ term: { [FORMAT]: mimes } }] : []),
      // "image/" up to, not including, "image0" ("0" follows "/"): every image type.
      ...families.map((p) => ({ range: { [FORMAT]: { gte: p, lt: p.slice(0, -1) + "0" } } })),
      ...named.map((n) => textMatch(n.word)),
    ];
    nodes.push(group("or", alternatives));
  }
  return { nodes, formats: named.map(({ word, label }) => ({ word, label })) };
}

function filterNodes(f, without = null) {
  const nodes = [];
  if (f.format && without !== "format") nodes.push({ term: { [FORMAT]: [f.format] } });
  if (f.status && without !== "status") nodes.push({ term: { [STATUS]: [f.status] } });
  if (f.from || f.to) {
    const range = {};
    if (f.from) range.gte = `${f.from}T00:00:00Z`;
    if (f.to) range.lte = `${f.to}T23:59:59.999999Z`;
    nodes.push({ range: { [MODIFIED]: range } });
  }
  const folder = f.folder.trim().replace(/\/+$/, "");
  if (folder && folder !== ROOT) {
    // Everything below the folder: paths from "<folder>/" up to, not including,
    // "<folder>0" ("0" follows "/" in code-point order).
    nodes.push({ range: { "repositoryMetadata.repo:path": { gte: folder + "/", lt: folder + "0" } } });
  }
  return nodes;
}

const pack = (nodes) => (nodes.length <= MAX_NODES ? nodes : [group("and", nodes)]);

/** The search request of a form. */
export function buildQuery(f) {
  const sort = SORTS[f.sort || "relevance"];
  return {
    query: pack([...textQuery(f.q).nodes, ...filterNodes(f)]),
    facets: [
      { type: "CATEGORY", id: "format", field: "dc:format" },
      { type: "CATEGORY", id: "status", field: "dam:assetStatus" },
    ],
    limit: PAGE_SIZE,
    ...(sort ? { sort: [sort] } : {}),
  };
}

// A count-only request: sorted by date (no relevance snapshot is kept), one hit, its id.
const countOnly = (nodes, facets = []) => ({
  query: pack(nodes),
  sort: [{ field: MODIFIED, order: "DESC" }],
  limit: 1,
  projectedFields: { includes: ["assetId"] },
  ...(facets.length ? { facets } : {}),
});

/** The choices of a facet when its own filter is set: the same query without that filter,
 * so the other values stay on offer with their counts. */
function facetWithout(f, id) {
  const field = id === "format" ? "dc:format" : "dam:assetStatus";
  return countOnly([...textQuery(f.q).nodes, ...filterNodes(f, id)], [{ type: "CATEGORY", id, field }]);
}

// -- the page ---------------------------------------------------------------------------

function describe(f) {
  const parts = [];
  if (f.q && f.q.trim() !== "*") parts.push(html`<strong>“${f.q.trim()}”</strong>`);
  else parts.push(html`all assets`);
  if (f.format) parts.push(html` of format <strong>${formatLabel(f.format)}</strong>`);
  if (f.status) parts.push(html` with status <strong>${statusLabel(f.status)}</strong>`);
  if (f.from && f.to) parts.push(html` modified from <strong>${f.from}</strong> to <strong>${f.to}</strong>`);
  else if (f.from) parts.push(html` modified on or after <strong>${f.from}</strong>`);
  else if (f.to) parts.push(html` modified on or before <strong>${f.to}</strong>`);
  if (f.folder && f.folder !== ROOT) parts.push(html` in <strong>${f.folder}</strong>`);
  return parts;
}

function EmptyState({ form, withoutFilters, set }) {
  const filtered = FILTERS.filter((k) => form[k]);
  const hasText = form.q && form.q.trim() !== "*";
  const remove = {
    format: "Any format",
    status: "Any status",
    from: "No start date",
    to: "No end date",
    folder: "All folders",
  };
  return html`<div class="empty-state" data-testid="empty">
    <h2>No assets found</h2>
    <p>You searched for ${describe(form)}.</p>
    <ul class="suggestions">
      ${filtered.length > 0 && html`<li>
        ${withoutFilters != null && html`<span data-testid="without-filters">${withoutFilters
          ? `${withoutFilters} asset${withoutFilters === 1 ? "" : "s"} match without the filters. `
          : "Nothing matches without the filters either. "}</span>`}
        <button class="primary" onClick=${() => set(Object.fromEntries(FILTERS.map((k) => [k, ""])))}>Clear all filters</button>
      </li>
      <li class="row">Or drop one: ${filtered.map((k) => html`<button key=${k} onClick=${() => set({ [k]: "" })}>${remove[k]}</button>`)}</li>`}
      ${hasText && html`<li>Check the spelling, or type fewer words: each word matches from its start
        (“sprin” finds “spring”), and every word must match.</li>
      <li><button onClick=${() => set({ q: "" })}>Show everything${filtered.length ? " with these filters" : ""}</button></li>`}
      ${!hasText && !filtered.length && html`<li>There are no assets yet. Upload some in a <a href="#/browse">folder</a>.</li>`}
    </ul>
  </div>`;
}

function Choice({ name, label, value, options, describe: say, onChange }) {
  // The value in the URL stays on offer even when no hit has it now.
  const values = options.some((o) => o.value === value) || !value ? options : [{ value, count: 0 }, ...options];
  return html`<label>${label}<select name=${name} value=${value} onChange=${(e) => onChange(e.target.value)}>
    <option value="">Any ${label.toLowerCase()}</option>
    ${values.map((o) => html`<option key=${o.value} value=${o.value}>${say(o.value)} (${o.count})</option>`)}
  </select></label>`;
}

export function Search({ params }) {
  const applied = readForm(params);
  const key = FIELDS.map((k) => applied[k]).join("\n");
  const [draft, setDraft] = useState(applied);
  // The answer and the form it answers (its key): the page shows only its own query's
  // answer, never the last one's while the next is on its way. With it: `cursors`, the
  // cursor of each page shown so far; `choices`, facet id -> values without its own
  // filter; `wider`, the count without the filters when nothing matched.
  const [answer, setAnswer] = useState(null); // {key, found, cursors, choices, wider}
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(false); // the filters, at phone width
  const pushed = useRef(null); // the form this page put in the URL itself
  const latest = useRef(0); // answers to older requests (typing) are dropped
  const typing = useRef(null);
  const errors = validate(applied);
  const draftErrors = validate(draft);
  const own = answer?.key === key ? answer : null; // the answer to the query in the URL
  const cursors = own?.cursors || [null];
  const choices = own?.choices || {};
  const withoutFilters = own ? own.wider : null;
  const page = cursors.length - 1;
  useTitle(applied.q && applied.q !== "*" ? `Search “${applied.q}”` : "Search");

  const run = async (stack) => {
    const mine = ++latest.current;
    setBusy(true);
    try {
      const body = buildQuery(applied);
      const cursor = stack[stack.length - 1];
      if (cursor) {
        // A later page: the choices and suggestions of the first one stand.
        const found = await api.search({ ...body, cursor });
        if (mine !== latest.current) return;
        setAnswer((a) => ({ key, found, cursors: stack, choices: a?.key === key ? a.choices : {}, wider: null }));
        setError(null);
        return;
      }
      // The hits and the choices of each chosen facet (without its own filter) together,
      // so the page never shows one without the other.
      const chosen = ["format", "status"].filter((id) => applied[id]);
      const [found, ...others] = await Promise.all([
        api.search(body),
        ...chosen.map((id) => api.search(facetWithout(applied, id))),
      ]);
      let wider = null;
      if (!found.search_metadata.totalCount.total && FILTERS.some((k) => applied[k])) {
        wider = (await api.search(countOnly(textQuery(applied.q).nodes))).search_metadata.totalCount.total;
      }
      if (mine !== latest.current) return;
      const choices = Object.fromEntries(chosen.map((id, i) => [id, others[i].facets?.[0]?.values || []]));
      setAnswer({ key, found, cursors: stack, choices, wider });
      setError(null);
    } catch (err) {
      if (mine === latest.current) setError(err.message);
    } finally {
      if (mine === latest.current) setBusy(false);
    }
  };

  useEffect(() => {
    if (pushed.current !== key) setDraft(applied); // come from elsewhere: the form follows
    pushed.current = null;
    setAnswer(null);
    if (Object.keys(errors).length) {
      latest.current++;
      setBusy(false);
      return;
    }
    run([null]);
  }, [key]);
  useEffect(() => () => clearTimeout(typing.current), []);

  /** Puts changes in the URL; `replace` for typing, so Back skips the keystrokes. */
  const set = (changes, replace = false) => {
    const f = { ...applied, ...changes };
    const p = queryOf(f);
    pushed.current = FIELDS.map((k) => f[k] || "").join("\n");
    setDraft((d) => ({ ...d, ...changes }));
    if (replace) {
      history.replaceState(null, "", `#/search?${p}`);
      dispatchEvent(new HashChangeEvent("hashchange"));
    } else go(`#/search?${p}`);
  };
  const type = (q) => {
    setDraft((d) => ({ ...d, q }));
    clearTimeout(typing.current);
    typing.current = setTimeout(() => set({ q }, true), TYPING_MS);
  };
  const change = (k, v) => {
    const next = { ...draft, [k]: v };
    setDraft(next);
    // A date takes effect as soon as the range makes sense; a fault is shown, not sent.
    if (!Object.keys(validate(next)).length) set({ from: next.from, to: next.to });
  };
  const submit = (e) => {
    e.preventDefault();
    clearTimeout(typing.current);
    if (Object.keys(draftErrors).length) {
      e.target.querySelector("[aria-invalid=true]")?.focus();
      return;
    }
    set(Object.fromEntries(FIELDS.map((k) => [k, draft[k]])));
    setOpen(false);
  };
  const result = own ? own.found : null;
  const next = () => run([...cursors, result.cursor]);
  const prev = () => run(cursors.slice(0, -1));
  const facet = (id) => choices[id] || result?.facets?.find((f) => f.id === id)?.values || [];
  const total = result?.search_metadata?.totalCount;
  const pages = total ? Math.max(1, Math.ceil(total.total / PAGE_SIZE)) : 0;
  const active = FILTERS.filter((k) => applied[k]).length;
  const formats = textQuery(applied.q).formats;
  const invalid = (k) => (draftErrors[k] ? "true" : null);
  const shown = { ...errors, ...draftErrors };
  // A range the form holds but could not send: the results shown would not be its own.
  const blocked = errors.from || errors.to || errors.folder || draftErrors.from || draftErrors.to;
  const ok = !blocked && total;

  return html`<main class="search">
    <h1 class="sr-only">Search</h1>
    <form class="search-form" onSubmit=${submit} novalidate>
      <div class="search-bar" role="search">
        <label class="grow"><span class="sr-only">Search text</span>
          <input type="search" name="q" value=${draft.q} placeholder="Search: words match from their start"
            onInput=${(e) => type(e.target.value)} aria-describedby="search-hint" autocomplete="off" /></label>
        <label class="sort"><span class="sr-only">Sort by</span><select name="sort" value=${applied.sort || "relevance"}
          onChange=${(e) => set({ sort: e.target.value === "relevance" ? "" : e.target.value })} aria-label="Sort by">
          ${Object.entries(SORT_LABELS).map(([v, l]) => html`<option key=${v} value=${v}>Sort: ${l}</option>`)}</select></label>
        <button type="button" class="filters-toggle" aria-expanded=${open ? "true" : "false"} aria-controls="search-filters"
          onClick=${() => setOpen(!open)}>Filters${active ? ` (${active})` : ""}</button>
      </div>
      <p id="search-hint" class="hint search-hint">${formats.length
        ? html`Also finding ${formats.map((f, i) => html`${i ? ", " : ""}<strong>${f.label}</strong> for “${f.word}”`)}.`
        : ""}</p>
      <div class="search-body">
        <aside id="search-filters" class=${"search-panel" + (open ? " open" : "")} aria-label="Filters">
          <h2 class="panel-title">Filters</h2>
          <${Choice} name="format" label="Format" value=${applied.format} options=${facet("format")} describe=${formatLabel}
            onChange=${(v) => set({ format: v })} />
          <${Choice} name="status" label="Status" value=${applied.status} options=${facet("status")} describe=${statusLabel}
            onChange=${(v) => set({ status: v })} />
          <fieldset class="range">
            <legend>Modified (whole days, UTC)</legend>
            <label>From<input type="date" name="from" value=${draft.from} aria-invalid=${invalid("from")}
              aria-describedby="range-error" onChange=${(e) => change("from", e.target.value)} /></label>
            <label>To<input type="date" name="to" value=${draft.to} aria-invalid=${invalid("to")}
              aria-describedby="range-error" onChange=${(e) => change("to", e.target.value)} /></label>
            <p id="range-error" class="error field-error" role="alert">${shown.from || shown.to || ""}</p>
          </fieldset>
          <label>Folder<input name="folder" value=${draft.folder} placeholder=${ROOT + "/…"} aria-invalid=${invalid("folder")}
            aria-describedby="folder-error" onInput=${(e) => setDraft({ ...draft, folder: e.target.value })} /></label>
          <p id="folder-error" class="error field-error" role="alert">${shown.folder || ""}</p>
          <div class="row">
            <button class="primary">Apply</button>
            <button type="button" disabled=${!active} onClick=${() => set(Object.fromEntries(FILTERS.map((k) => [k, ""])))}>Clear filters</button>
          </div>
          <section class="facets" aria-label="Facets">
            ${[["format", "Format", formatLabel], ["status", "Status", statusLabel]].map(([id, label, say]) => html`<section key=${id}>
              <h2>${label}</h2>
              ${facet(id).length ? html`<ul>${facet(id).map((v) => html`<li key=${v.value}>
                <button type="button" class="facet" aria-pressed=${applied[id] === String(v.value)} data-facet=${id} data-value=${v.value}
                  title=${v.value} onClick=${() => set({ [id]: applied[id] === String(v.value) ? "" : String(v.value) })}>
                  <span>${say(v.value)}</span> <span class="count">${v.count}</span></button></li>`)}</ul>` : html`<p class="hint">—</p>`}
            </section>`)}
          </section>
          <button type="button" class="show-results" onClick=${() => setOpen(false)}>Show ${total ? `${total.total}${total.relation === "gte" ? "+" : ""} ` : ""}results</button>
        </aside>
        <section class="results" aria-label="Results" aria-busy=${busy ? "true" : "false"}>
          ${error && html`<p class="error" role="alert">${error}</p>`}
          ${blocked && html`<div class="empty-state" data-testid="invalid"><h2>Not searched</h2>
            <p>${blocked}</p><p>Fix the filter to see results.</p></div>`}
          ${ok && html`<p class="total" data-testid="total" data-query=${queryOf(applied)}>${total.total}${total.relation === "gte" ? "+" : ""} result${total.total === 1 ? "" : "s"}${total.total
            ? ` · page ${page + 1} of ${pages}${total.relation === "gte" ? " or more" : ""}`
            : ""}</p>`}
          ${ok && !total.total && html`<${EmptyState} form=${applied} withoutFilters=${withoutFilters} set=${set} />`}
          <ul class="grid">${(blocked ? [] : result?.hits?.results || []).map((a) => html`<li key=${a.assetId}><a class="card" href=${assetHash(a.assetId)} data-name=${a.repositoryMetadata?.["repo:name"]}>
            <${Thumb} asset=${a} /><span class="card-name">${a.assetMetadata?.["dc:title"] || a.repositoryMetadata?.["repo:name"]}</span>
            <small>${a.repositoryMetadata?.["repo:path"]}</small></a></li>`)}</ul>
          ${ok && pages > 1 && html`<div class="row pager">
            <button type="button" onClick=${prev} disabled=${busy || page === 0}>Previous page</button>
            <span class="hint">Page ${page + 1} of ${pages}</span>
            <button type="button" onClick=${next} disabled=${busy || !result?.cursor}>Next page</button>
          </div>`}
        </section>
      </div>
    </form>
  </main>`;
}
