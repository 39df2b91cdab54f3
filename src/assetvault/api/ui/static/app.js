// The Assetvault web UI: Preact + htm (no build step), hash routes, the public APIs only.
import { h, render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { ROOT, nameOf, parentOf } from "./api.js";
import { FILES_IN_FLIGHT, freeName, uploadFile } from "./upload.js";
import { ShareButton, SharesPage } from "./share.js";
import { AssetPreview } from "./preview.js";
import { Lightbox } from "./lightbox.js";
import { MetadataForm, Relations, Versions, isTechnical } from "./metadata-form.js";
import { saveFields } from "./merge.js";
import { Search } from "./search.js";

const html = htm.bind(h);
const THUMB = "cq5dam.thumbnail.319.319.png";

// -- small helpers ----------------------------------------------------------------------

/** The attributes of a box a wide table may scroll sideways in (on a phone): it takes the
 * focus, so that it scrolls from the keyboard too, and is a region named by its aria-label
 * ("… table": not its section's name, as landmarks' names must differ). */
export const SCROLLS = { tabindex: "0", role: "region" };

function formatSize(n) {
  if (n == null) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

const formatDate = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const show = (v) => (Array.isArray(v) ? v.join(", ") : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));

function useRoute() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const raw = hash.replace(/^#/, "") || "/browse";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

export const go = (hash) => {
  location.hash = hash;
};
const browseHash = (path) => `#/browse${api.enc(path.slice(ROOT.length))}`;
export const assetHash = (id) => `#/asset/${encodeURIComponent(id)}`;

// -- dialogs (native <dialog>: focus trap and Escape come with it) ----------------------

let openDialog = () => {};

/** ask({title, message, input, confirm, danger}) -> the entered text, true, or null.
 * With `choices` ([{value, label}], the first is the default) and an optional `applyAll`
 * label: -> {choice, all}, or null when cancelled. */
export const ask = (options) => new Promise((resolve) => openDialog({ ...options, resolve }));

function Dialog() {
  const [opts, setOpts] = useState(null);
  const ref = useRef();
  const inputRef = useRef();
  const allRef = useRef();
  openDialog = setOpts;
  useEffect(() => {
    if (opts && ref.current && !ref.current.open) {
      ref.current.showModal();
      // A destructive question starts on Cancel, so a stray Enter changes nothing.
      const first = opts.danger ? "button[type=button]" : "button.primary";
      (inputRef.current || ref.current.querySelector(first))?.focus();
    }
  }, [opts]);
  if (!opts) return null;
  const close = (value) => {
    ref.current?.close();
    setOpts(null);
    opts.resolve(value);
  };
  const submit = (e) => {
    e.preventDefault();
    if (opts.choices) return close({ choice: e.submitter?.value || opts.choices[0].value, all: !!allRef.current?.checked });
    close(opts.input !== undefined ? inputRef.current.value.trim() || null : true);
  };
  return html`<dialog ref=${ref} class="dialog" key=${opts.title} onCancel=${(e) => { e.preventDefault(); close(null); }}>
    <form onSubmit=${submit}>
      <h2>${opts.title}</h2>
      ${opts.message && html`<p>${opts.message}</p>`}
      ${opts.input !== undefined &&
      // The start value only (defaultValue): a later drawing of the dialog never puts it
      // back over what the person typed.
      html`<label>${opts.label || "Name"}<input ref=${inputRef} name="value" defaultValue=${opts.input} required /></label>`}
      ${opts.choices
        ? html`${opts.applyAll && html`<label class="check"><input type="checkbox" ref=${allRef} /> ${opts.applyAll}</label>`}
          <div class="row end choices">
            ${opts.choices.map((c, i) => html`<button type="submit" name="choice" value=${c.value} class=${i === 0 ? "primary" : ""}>${c.label}</button>`)}
          </div>`
        : html`<div class="row end">
            <button type="button" onClick=${() => close(null)}>Cancel</button>
            <button type="submit" class=${opts.danger ? "primary danger" : "primary"}>${opts.confirm || "OK"}</button>
          </div>`}
    </form>
  </dialog>`;
}

// -- notices ----------------------------------------------------------------------------

let pushNotice = () => {};
export const notify = (text, kind = "info") => pushNotice({ text, kind, at: Date.now() + Math.random() });

function Notices() {
  const [items, setItems] = useState([]);
  pushNotice = (n) => {
    setItems((xs) => [...xs, n]);
    setTimeout(() => setItems((xs) => xs.filter((x) => x !== n)), n.kind === "error" ? 10000 : 4000);
  };
  return html`<div class="notices" role="status" aria-live="polite">
    ${items.map((n) => html`<p key=${n.at} class=${"notice " + n.kind}>${n.text}</p>`)}
  </div>`;
}

// -- sign in ----------------------------------------------------------------------------

function SignIn({ onDone }) {
  const [error, setError] = useState(null);
  useTitle("Sign in");
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    const token = data.get("token").trim();
    setBusy(true);
    setError(null);
    try {
      // Any read proves the token; the root folder is the first thing shown anyway.
      await api.call("GET", "/api/assets.json?limit=0", { token });
      api.session.signIn(token, data.get("apiKey").trim());
      onDone();
    } catch (err) {
      setError(err.status === 401 ? "This token is not valid (or was revoked)." : err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <form onSubmit=${submit} class="card">
      <h1>Assetvault</h1>
      <p>Sign in with an API token. It is kept for this tab only.</p>
      <label>Token<input type="password" name="token" autocomplete="off" required autofocus /></label>
      <details>
        <summary>API key</summary>
        <label>X-Api-Key (only if the server lists allowed keys)<input name="apiKey" autocomplete="off" /></label>
      </details>
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <button class="primary" disabled=${busy}>Sign in</button>
      <p class="hint">No token yet? On the server: <code>assetvault token create --name me --scope write</code></p>
    </form>
  </main>`;
}

// -- thumbnails -------------------------------------------------------------------------

/** A rendition fetched with the token (an <img src> cannot send it), once it is visible. */
export function Thumb({ asset }) {
  const ref = useRef();
  const [url, setUrl] = useState(null);
  const [failed, setFailed] = useState(false);
  const state = asset.repositoryMetadata?.["aem:assetState"];
  const id = asset.assetId;
  useEffect(() => {
    if (state !== "processed" || url) return;
    let cancelled = false;
    const io = new IntersectionObserver(async (entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      io.disconnect();
      try {
        const list = await api.renditions(id);
        if (cancelled) return; // the card is gone: its image is not asked for
        if (!list.items.some((r) => r.name === THUMB)) throw new Error("no thumbnail");
        const u = await api.blobUrl(api.renditionUrl(id, THUMB, "thumbnail.png"));
        if (cancelled) URL.revokeObjectURL(u);
        else setUrl(u);
      } catch {
        if (!cancelled) setFailed(true);
      }
    });
    io.observe(ref.current);
    return () => {
      cancelled = true;
      io.disconnect();
    };
  }, [id, state]);
  useEffect(() => () => url && URL.revokeObjectURL(url), [url]);
  let inner;
  if (url) inner = html`<img src=${url} alt="" />`;
  else if (state === "processing" || state === "new") inner = html`<span class="placeholder busy">Processing…</span>`;
  else if (state === "failed") inner = html`<span class="placeholder">Processing failed</span>`;
  else if (failed) inner = html`<span class="placeholder">No preview</span>`;
  else inner = html`<span class="placeholder">…</span>`;
  return html`<div class="thumb" ref=${ref} data-state=${state}>${inner}</div>`;
}

// -- breadcrumbs ------------------------------------------------------------------------

function Breadcrumbs({ path, last }) {
  const parts = path.slice(ROOT.length).split("/").filter(Boolean);
  const crumbs = [{ name: "Assets", path: ROOT }];
  parts.forEach((p, i) => crumbs.push({ name: p, path: ROOT + "/" + parts.slice(0, i + 1).join("/") }));
  return html`<nav aria-label="Breadcrumb" class="crumbs"><ol>
    ${crumbs.map((c, i) =>
      i === crumbs.length - 1 && !last
        ? html`<li aria-current="page">${c.name}</li>`
        : html`<li><a href=${browseHash(c.path)}>${c.name}</a></li>`,
    )}
    ${last && html`<li aria-current="page">${last}</li>`}
  </ol></nav>`;
}

// -- node actions (classic API) ---------------------------------------------------------

async function moveOrCopy(path, method, kind) {
  const verb = method === "MOVE" ? "Move" : "Copy";
  const target = await pickFolder({
    title: `${verb} ${kind} “${nameOf(path)}”`,
    start: parentOf(path),
    confirm: verb,
    exclude: kind === "folder" ? [path] : [],
  });
  if (!target) return null;
  const dest = target.replace(/\/+$/, "") + "/" + nameOf(path);
  try {
    await api.copyOrMove(method, path, dest);
  } catch (err) {
    if (err.status !== 412) throw err;
    const sure = await ask({
      title: `Replace “${nameOf(dest)}”?`,
      message: `${dest} already exists (or cannot be written). Replacing deletes what is there now.`,
      confirm: "Replace",
      danger: true,
    });
    if (!sure) return null;
    await api.copyOrMove(method, path, dest, true);
  }
  notify(`${verb === "Move" ? "Moved" : "Copied"} to ${dest}`);
  return dest;
}

async function renameNode(path, kind) {
  const name = await ask({ title: `Rename ${kind}`, label: "New name", input: nameOf(path), confirm: "Rename" });
  if (!name || name === nameOf(path)) return null;
  const dest = parentOf(path) + "/" + name;
  await api.copyOrMove("MOVE", path, dest);
  notify(`Renamed to ${name}`);
  return dest;
}

async function deleteNode(path, kind) {
  const sure = await ask({
    title: `Delete ${kind} “${nameOf(path)}”?`,
    message: kind === "folder" ? "Everything inside it is deleted too. This cannot be undone." : "This cannot be undone.",
    confirm: "Delete",
    danger: true,
  });
  if (!sure) return false;
  await api.remove(path);
  notify(`Deleted ${nameOf(path)}`);
  return true;
}

const guarded = (fn) => async (...args) => {
  try {
    return await fn(...args);
  } catch (err) {
    notify(err.message, "error");
    return null;
  }
};

// -- upload panel -----------------------------------------------------------------------

const ACTIVE = ["queued", "uploading", "retrying"];

function UploadPanel({ uploads, onCancel, onRetry, onRename }) {
  if (!uploads.length) return null;
  const counted = uploads.filter((u) => u.state !== "skipped");
  const total = counted.reduce((s, u) => s + u.size, 0);
  const sent = counted.reduce((s, u) => s + (u.sent || 0), 0);
  const pct = total ? Math.round((100 * sent) / total) : 100;
  const skipped = uploads.length - counted.length;
  return html`<section class="uploads" aria-label="Uploads">
    <div class="upload-row overall">
      <span>All files (${counted.filter((u) => u.state === "done").length}/${counted.length})${skipped ? `, ${skipped} skipped` : ""}</span>
      <progress max="100" value=${pct} aria-label="Overall upload progress">${pct}%</progress>
      <span>${pct}%</span>
    </div>
    ${uploads.map((u) => {
      const p = u.size ? Math.round((100 * (u.sent || 0)) / u.size) : u.state === "done" ? 100 : 0;
      return html`<div class="upload-row" key=${u.id} data-file=${u.file.name} data-state=${u.state}>
        <span class="name">${u.file.name}${u.name !== u.file.name ? html` <span class="renamed">→ ${u.name}</span>` : ""}</span>
        <progress max="100" value=${p} aria-label=${"Upload of " + u.file.name}>${p}%</progress>
        <span class=${"state " + u.state}>${u.state}${u.message ? ` — ${u.message}` : ""}</span>
        <span class="row-actions">
          ${ACTIVE.includes(u.state) && html`<button class="link" onClick=${() => onCancel(u)} aria-label=${"Cancel " + u.file.name}>Cancel</button>`}
          ${["failed", "cancelled"].includes(u.state) && html`<button class="link" onClick=${() => onRetry(u)} aria-label=${"Retry " + u.file.name}>Retry</button>
            <button class="link" onClick=${() => onRename(u)} aria-label=${"Rename " + u.file.name}>Rename…</button>`}
        </span>
      </div>`;
    })}
  </section>`;
}

// Drawn here: no icon font or emoji font is assumed on the machine.
const FolderIcon = () => html`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" width="20" height="20">
  <path d="M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z" fill="#e8b04a" /></svg>`;

// -- page title and scroll memory -------------------------------------------------------

/** The tab's title names the folder, asset or search shown. */
export function useTitle(text) {
  useEffect(() => {
    document.title = text ? `${text} – Assetvault` : "Assetvault";
  }, [text]);
}

const SCROLL = "assetvault.scroll";
const scrolls = () => JSON.parse(sessionStorage.getItem(SCROLL) || "{}");

/** Remember how far a page was scrolled, and go back there when it is shown again
 * (back from an asset), once its content is in (`ready`). */
function useScrollMemory(key, ready) {
  const restored = useRef(null);
  useEffect(() => {
    // Kept on every click (a capturing listener: before a link leaves the page; by the
    // time the hash changes, the next page is drawn already), and never before the page
    // is back where it was: while it loads it is short and scrolls to the top.
    const save = () => restored.current === key && sessionStorage.setItem(SCROLL, JSON.stringify({ ...scrolls(), [key]: scrollY }));
    addEventListener("click", save, true);
    return () => removeEventListener("click", save, true);
  }, [key]);
  useEffect(() => {
    if (!ready || restored.current === key) return;
    restored.current = key;
    const y = scrolls()[key] || 0;
    requestAnimationFrame(() => scrollTo(0, y));
  }, [key, ready]);
}

// -- folder picker (move and copy choose a folder by browsing, never by typing) ---------

let openPicker = () => {};

/** pickFolder({title, start, confirm, exclude}) -> the chosen folder's path, or null.
 * `exclude`: folders that cannot be chosen or entered (a folder cannot go into itself). */
export const pickFolder = (options) => new Promise((resolve) => openPicker({ ...options, resolve }));

function FolderPicker() {
  const [opts, setOpts] = useState(null);
  const [at, setAt] = useState(ROOT);
  // What the listing of a folder found, and which folder (at) it was: a folder just
  // entered shows "Loading…" until its own answer, never the last folder's.
  const [listed, setListed] = useState(null); // {at, folders} or {at, error}
  const folders = listed?.at === at ? listed.folders || null : null;
  const error = listed?.at === at ? listed.error || null : null;
  const ref = useRef();
  openPicker = (o) => {
    setAt(o.start || ROOT);
    setListed(null); // a new opening lists afresh, never showing the last one's answer
    setOpts(o);
  };
  useEffect(() => {
    if (opts && ref.current && !ref.current.open) {
      ref.current.showModal();
      ref.current.querySelector("button.primary")?.focus();
    }
  }, [opts]);
  useEffect(() => {
    if (!opts) return;
    let gone = false;
    api.subfolders(at).then(
      (found) => !gone && setListed({ at, folders: found }),
      (err) => !gone && setListed({ at, error: err.status === 404 ? `The folder ${at} does not exist (any more).` : err.message }),
    );
    return () => {
      gone = true;
    };
  }, [opts, at]);
  if (!opts) return null;
  const close = (value) => {
    ref.current?.close();
    setOpts(null);
    opts.resolve(value);
  };
  const excluded = (p) => (opts.exclude || []).some((x) => p === x || p.startsWith(x + "/"));
  const parts = at.slice(ROOT.length).split("/").filter(Boolean);
  const here = parts.length ? parts[parts.length - 1] : "Assets";
  return html`<dialog ref=${ref} class="dialog picker" aria-labelledby="picker-h" onCancel=${(e) => { e.preventDefault(); close(null); }}>
    <h2 id="picker-h">${opts.title}</h2>
    <nav aria-label="Folder path" class="crumbs"><ol>
      <li><button type="button" class="link" data-crumb=${ROOT} onClick=${() => setAt(ROOT)}>Assets</button></li>
      ${parts.map((p, i) => html`<li key=${i}><button type="button" class="link" onClick=${() => setAt(ROOT + "/" + parts.slice(0, i + 1).join("/"))}>${p}</button></li>`)}
    </ol></nav>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${!folders && !error && html`<p class="loading">Loading…</p>`}
    ${folders && (folders.length
      ? html`<ul class="picker-list" aria-label=${"Folders in " + here}>${folders.map((f) => html`<li key=${f.name}>
          <button type="button" class="picker-folder" data-folder=${f.name} disabled=${excluded(at + "/" + f.name)} onClick=${() => setAt(at + "/" + f.name)}>
            <${FolderIcon} /> ${f.title}</button></li>`)}</ul>`
      : html`<p class="hint">No folders in here.</p>`)}
    <div class="row end">
      <button type="button" onClick=${() => close(null)}>Cancel</button>
      <button type="button" class="primary" data-testid="picker-choose" disabled=${!!error || excluded(at)} onClick=${() => close(at)}>${opts.confirm || "Choose"} into “${here}”</button>
    </div>
  </dialog>`;
}

// -- selection and bulk actions ---------------------------------------------------------

/** Which of `items` are selected: click toggles (once something is), ctrl/cmd-click
 * toggles, shift-click selects the range from the last one clicked. */
function useSelection(items, resetKey) {
  const [ids, setIds] = useState(() => new Set());
  const anchor = useRef(null);
  useEffect(() => {
    anchor.current = null;
    setIds(new Set());
  }, [resetKey]);
  // An asset that left the listing (deleted, moved) leaves the selection too.
  useEffect(() => {
    const live = new Set(items.map((a) => a.assetId));
    setIds((s) => ([...s].every((id) => live.has(id)) ? s : new Set([...s].filter((id) => live.has(id)))));
  }, [items]);
  const toggle = (i) => {
    const id = items[i].assetId;
    anchor.current = i;
    setIds((s) => {
      const n = new Set(s);
      n.has(id) ? n.delete(id) : n.add(id);
      return n;
    });
  };
  const range = (i) => {
    const from = anchor.current ?? i;
    const [lo, hi] = from < i ? [from, i] : [i, from];
    setIds((s) => new Set([...s, ...items.slice(lo, hi + 1).map((a) => a.assetId)]));
  };
  const onClick = (e, i) => {
    if (e.shiftKey) range(i);
    else if (e.ctrlKey || e.metaKey || ids.size) toggle(i);
    else return; // a plain click opens the asset
    e.preventDefault();
  };
  return {
    ids,
    size: ids.size,
    chosen: items.filter((a) => ids.has(a.assetId)),
    has: (id) => ids.has(id),
    toggle,
    range,
    onClick,
    all: () => setIds(new Set(items.map((a) => a.assetId))),
    clear: () => {
      anchor.current = null;
      setIds(new Set());
    },
    select: (list) => setIds(new Set(list)),
  };
}

/** Run `fn` on each asset in turn; each fails on its own and the rest go on. */
async function runBulk(title, assets, fn, setReport) {
  const rows = assets.map((a) => ({ id: a.assetId, name: a.repositoryMetadata["repo:name"], state: "queued", message: "" }));
  const show = (done) => setReport({ title, rows: rows.map((r) => ({ ...r })), done });
  show(false);
  for (const [i, a] of assets.entries()) {
    rows[i].state = "working";
    show(false);
    try {
      await fn(a);
      rows[i].state = "done";
    } catch (err) {
      rows[i].state = "failed";
      rows[i].message = err.status === 412 ? "a file of this name is already there" : err.message;
    }
  }
  show(true);
  const failed = rows.filter((r) => r.state === "failed");
  notify(`${title}: ${rows.length - failed.length} of ${rows.length} done${failed.length ? `, ${failed.length} failed (see each one)` : ""}`, failed.length ? "error" : "info");
  return failed.map((r) => r.id);
}

function BulkReport({ report, onClose }) {
  if (!report) return null;
  return html`<section class="bulk-report" aria-label=${report.title} data-testid="bulk-report">
    <div class="row"><strong>${report.title}</strong><span class="spacer"></span>
      ${report.done && html`<button class="link" onClick=${onClose}>Close</button>`}</div>
    <ul>${report.rows.map((r) => html`<li key=${r.id} data-file=${r.name} data-state=${r.state}>
      <span class="name">${r.name}</span> <span class=${"state " + r.state}>${r.state}${r.message ? ` — ${r.message}` : ""}</span></li>`)}</ul>
  </section>`;
}

/** The bulk actions on the selected assets of the folder `path`. */
function bulkActions(path, sel, setReport, reload) {
  const chosen = sel.chosen;
  const n = chosen.length;
  const label = `${n} asset${n === 1 ? "" : "s"}`;
  const finish = (failedIds) => {
    sel.select(failedIds); // what failed stays selected, to try again
    reload();
  };
  const move = (method) =>
    guarded(async () => {
      const verb = method === "MOVE" ? "Move" : "Copy";
      const dest = await pickFolder({ title: `${verb} ${label}`, start: path, confirm: verb });
      if (!dest) return;
      if (method === "MOVE" && dest === path) return notify("They are in this folder already.");
      finish(await runBulk(`${verb} to ${dest}`, chosen, (a) => api.copyOrMove(method, a.repositoryMetadata["repo:path"], `${dest}/${a.repositoryMetadata["repo:name"]}`), setReport));
    });
  const remove = guarded(async () => {
    const sure = await ask({ title: `Delete ${label}?`, message: "This cannot be undone.", confirm: "Delete", danger: true });
    if (sure) finish(await runBulk("Delete", chosen, (a) => api.deleteAsset(a.assetId, a.repositoryMetadata["repo:path"]), setReport));
  });
  const publish = (on) =>
    guarded(async () => finish(await runBulk(on ? "Publish" : "Unpublish", chosen, (a) => api.setPublished(a.assetId, on), setReport)));
  const setField = guarded(async () => {
    const key = await ask({ title: `Set a metadata field on ${label}`, label: "Field name (e.g. dc:subject)", input: "", confirm: "Next" });
    if (!key) return;
    if (isTechnical(key)) return notify(`${key} is read from the file by processing: it cannot be set here.`, "error");
    const value = await ask({ title: `Set ${key} on ${label}`, label: "Value", input: "", confirm: "Set" });
    if (value === null) return;
    finish(await runBulk(`Set ${key}`, chosen, (a) => api.setField(a.assetId, key, value), setReport));
  });
  const zip = guarded(async () => {
    notify(`Preparing a ZIP of ${label}…`);
    await api.downloadArchive(chosen.map((a) => a.repositoryMetadata["repo:path"]), `${nameOf(path) || "assets"}-${n}.zip`);
  });
  return { move, remove, publish, setField, zip };
}

function SelectionBar({ sel, total, actions }) {
  if (!sel.size) return null;
  return html`<div class="selection-bar" role="toolbar" aria-label="Selection">
    <strong data-testid="selected-count">${sel.size} selected</strong>
    ${sel.size < total && html`<button onClick=${sel.all}>Select all ${total}</button>`}
    <button onClick=${sel.clear}>Clear</button>
    <span class="spacer"></span>
    <button onClick=${actions.zip}>Download ZIP</button>
    <button onClick=${actions.move("MOVE")}>Move…</button>
    <button onClick=${actions.move("COPY")}>Copy…</button>
    <button onClick=${actions.setField}>Set field…</button>
    <button onClick=${actions.publish(true)}>Publish</button>
    <button onClick=${actions.publish(false)}>Unpublish</button>
    <button class="danger" onClick=${actions.remove}>Delete…</button>
  </div>`;
}

/** One card of the grid: a checkbox to select it, its thumbnail, file name and title, and
 * a Preview button; Space on the focused card previews it too (as in a file manager). */
function AssetCard({ asset, index, sel, onPreview }) {
  const name = asset.repositoryMetadata["repo:name"];
  const title = asset.assetMetadata?.["dc:title"];
  const picked = sel.has(asset.assetId);
  const onKeyDown = (e) => {
    if (e.key !== " " || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault(); // not a scroll of the page
    onPreview(asset);
  };
  return html`<li class=${picked ? "picked" : ""}>
    <input type="checkbox" class="pick" checked=${picked} aria-label=${"Select " + name}
      onClick=${(e) => { if (e.shiftKey) { e.preventDefault(); sel.range(index); } else sel.toggle(index); }} />
    <a class="card" href=${assetHash(asset.assetId)} data-name=${name} data-asset=${asset.assetId} aria-current=${picked ? "true" : null}
      aria-keyshortcuts="Space" onClick=${(e) => sel.onClick(e, index)} onKeyDown=${onKeyDown}>
      <${Thumb} asset=${asset} />
      <span class="card-name">${name}</span>
      ${title && title !== name && html`<span class="card-title">${title}</span>`}
    </a>
    <button class="card-preview" onClick=${() => onPreview(asset)} aria-label=${"Preview " + name} title="Preview (Space)">
      <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5" fill="none" stroke="currentColor" stroke-width="2"/></svg>
    </button></li>`;
}

const GRID_SORTS = [
  ["name-asc", "Name A–Z", "repositoryMetadata.repo:name", "ASC"],
  ["name-desc", "Name Z–A", "repositoryMetadata.repo:name", "DESC"],
  ["modified-desc", "Newest first", "repositoryMetadata.repo:modifyDate", "DESC"],
  ["modified-asc", "Oldest first", "repositoryMetadata.repo:modifyDate", "ASC"],
  ["size-desc", "Largest first", "repositoryMetadata.repo:size", "DESC"],
  ["size-asc", "Smallest first", "repositoryMetadata.repo:size", "ASC"],
  ["type-asc", "Type", "repositoryMetadata.dc:format", "ASC"],
  ["state-asc", "State", "repositoryMetadata.aem:assetState", "ASC"],
];

/** The grid's sort menu (the list's column headers sort the same way, by the server). */
function SortMenu({ sort, onSort }) {
  const key = GRID_SORTS.find(([, , f, o]) => f === sort.field && o === sort.order)?.[0] || "name-asc";
  const change = (e) => {
    const [, , field, order] = GRID_SORTS.find(([k]) => k === e.target.value);
    onSort({ field, order });
  };
  return html`<label class="sort-menu">Sort<select value=${key} onChange=${change}>
    ${GRID_SORTS.map(([k, label]) => html`<option value=${k}>${label}</option>`)}</select></label>`;
}

// -- browse -----------------------------------------------------------------------------

const COLUMNS = [
  ["Name", "repositoryMetadata.repo:name"],
  ["Format", "repositoryMetadata.dc:format"],
  ["Size", "repositoryMetadata.repo:size"],
  ["Modified", "repositoryMetadata.repo:modifyDate"],
  ["State", "repositoryMetadata.aem:assetState"],
];

function Browse({ path }) {
  const [listing, setListing] = useState(null);
  const [error, setError] = useState(null);
  const [assets, setAssets] = useState({ items: [], cursor: null, total: 0 });
  const [view, setView] = useState(sessionStorage.getItem("assetvault.view") || "grid");
  const [sort, setSortState] = useState(() => JSON.parse(sessionStorage.getItem("assetvault.sort") || "null") || { field: COLUMNS[0][1], order: "ASC" });
  const setSort = (next) =>
    setSortState((s) => {
      const value = typeof next === "function" ? next(s) : next;
      sessionStorage.setItem("assetvault.sort", JSON.stringify(value));
      return value;
    });
  const [bulkReport, setBulkReport] = useState(null);
  const [preview, setPreview] = useState(null); // the asset the lightbox opened on
  const [uploads, setUploads] = useState([]);
  const [dragging, setDragging] = useState(false);
  const urnRef = useRef(null);
  const fileInput = useRef();

  const asked = useRef(0); // the last listing asked for: an answer to an earlier one (another sort) is dropped
  const loadAssets = useCallback(
    async (folders, cursor = null) => {
      const mine = ++asked.current;
      const names = folders.entities?.filter((e) => e.class.includes("assets/asset")) || [];
      if (!names.length) return setAssets({ items: [], cursor: null, total: 0 });
      if (!urnRef.current) urnRef.current = await api.folderUrn(`${path}/${names[0].properties.name}`);
      if (!urnRef.current) return;
      const found = await api.search({
        query: [{ term: { "repositoryMetadata.repo:parent": [urnRef.current] } }],
        sort: [sort],
        limit: 50,
        ...(cursor ? { cursor } : {}),
      });
      if (mine !== asked.current) return;
      setAssets((prev) => ({
        items: cursor ? [...prev.items, ...found.hits.results] : found.hits.results,
        cursor: found.cursor || null,
        total: found.search_metadata.totalCount.total,
      }));
    },
    [path, sort],
  );

  const load = useCallback(async () => {
    try {
      const folders = await api.listFolder(path);
      setListing(folders);
      setError(null);
      await loadAssets(folders);
    } catch (err) {
      setError(err);
    }
  }, [path, loadAssets]);

  useEffect(() => {
    load();
  }, [load]);

  // While anything here is processing, look again until it is done.
  const processing = assets.items.some((a) => ["processing", "new"].includes(a.repositoryMetadata?.["aem:assetState"]));
  useEffect(() => {
    if (!processing || !listing) return;
    const t = setTimeout(() => loadAssets(listing), 1500);
    return () => clearTimeout(t);
  }, [processing, assets, listing]);

  // Uploads: a name that exists is never overwritten silently. Each such file asks (with
  // "apply to all"): a new version (the current original is kept as a version), keep both
  // (this file takes a free name, as AEM does), or skip. Each file then goes on its own,
  // with its own error, Cancel and Retry.
  const report = (id, change) => setUploads((us) => us.map((u) => (u.id === id ? { ...u, ...change } : u)));
  const controllers = useRef(new Map()); // id -> AbortController of the file in flight
  const targets = useRef(new Map()); // id -> {file, name}: what each row uploads, as which name

  const resolveConflicts = async (entries, existing) => {
    const taken = new Set([...existing, ...entries.map((e) => e.name)]);
    const seen = new Set();
    const conflicts = entries.filter((e) => {
      const clash = existing.has(e.name) || seen.has(e.name);
      seen.add(e.name);
      return clash;
    });
    let always = null;
    for (const [i, e] of conflicts.entries()) {
      const free = freeName(e.name, taken);
      const left = conflicts.length - i - 1;
      let choice = always;
      if (!choice) {
        const answer = await ask({
          title: `“${e.name}” already exists here`,
          message: `New version keeps the current original as an earlier version. Keep both uploads this file as “${free}”. Skip leaves it out.`,
          choices: [
            { value: "version", label: "New version" },
            { value: "keep-both", label: "Keep both" },
            { value: "skip", label: "Skip" },
          ],
          applyAll: left ? `Do the same for the other ${left} file${left > 1 ? "s" : ""} whose names exist` : null,
        });
        choice = answer?.choice || "skip"; // Escape: nothing is sent
        if (answer?.all) always = choice;
      }
      if (choice === "keep-both") {
        e.name = free;
        taken.add(free);
      } else if (choice === "skip") {
        e.state = "skipped";
        e.message = "a file of this name is already here";
      }
    }
  };

  const runOne = async (id) => {
    const ctl = new AbortController();
    controllers.current.set(id, ctl);
    const { file, name } = targets.current.get(id);
    try {
      await uploadFile(path, file, name, (change) => report(id, change), ctl.signal);
      return true;
    } catch (err) {
      if (ctl.signal.aborted) report(id, { state: "cancelled", sent: 0, message: "" });
      else report(id, { state: "failed", sent: 0, message: err.message });
      return false;
    } finally {
      controllers.current.delete(id);
    }
  };

  const startUpload = async (fileList) => {
    const files = [...fileList].filter((f) => f.size !== undefined);
    if (!files.length) return;
    let existing;
    try {
      existing = await api.childNames(path);
    } catch (err) {
      return notify(`Upload not started: ${err.message}`, "error");
    }
    const entries = files.map((file) => ({ id: `${Date.now()}-${Math.random()}`, file, name: file.name, size: file.size, sent: 0, state: "queued", message: "" }));
    await resolveConflicts(entries, existing);
    for (const e of entries) targets.current.set(e.id, { file: e.file, name: e.name });
    setUploads(entries);
    const queue = entries.filter((e) => e.state === "queued");
    let next = 0;
    let failed = 0;
    const lane = async () => {
      while (next < queue.length) {
        const e = queue[next++];
        if (controllers.current.get(e.id)?.signal.aborted) continue; // cancelled while queued
        if (!(await runOne(e.id))) failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, queue.length) }, lane));
    const skipped = entries.length - queue.length;
    const done = queue.length - failed;
    const parts = [`Uploaded ${done} of ${entries.length} file${entries.length > 1 ? "s" : ""}`];
    if (skipped) parts.push(`${skipped} skipped`);
    if (failed) parts.push(`${failed} not uploaded (see each file)`);
    notify(parts.join(", "), failed ? "error" : "info");
    load();
  };

  const cancelUpload = (u) => {
    const ctl = controllers.current.get(u.id);
    if (ctl) ctl.abort();
    else {
      // Still queued: mark it, so its lane passes it by.
      const gone = new AbortController();
      gone.abort();
      controllers.current.set(u.id, gone);
      report(u.id, { state: "cancelled", message: "" });
    }
  };
  const retryUpload = async (u) => {
    report(u.id, { state: "queued", message: "", sent: 0 });
    if (await runOne(u.id)) notify(`Uploaded ${u.name}`);
    load();
  };
  const renameUpload = guarded(async (u) => {
    const name = await ask({ title: `Upload “${u.file.name}” as`, label: "Name", input: u.name, confirm: "Upload" });
    if (!name) return;
    const entry = { ...u, name, state: "queued" };
    await resolveConflicts([entry], await api.childNames(path));
    targets.current.set(u.id, { file: u.file, name: entry.name });
    report(u.id, { name: entry.name, state: entry.state, message: entry.message || "", sent: 0 });
    if (entry.state === "skipped") return;
    if (await runOne(u.id)) notify(`Uploaded ${entry.name}`);
    load();
  });

  const onDrop = (e) => {
    e.preventDefault();
    setDragging(false);
    startUpload(e.dataTransfer.files);
  };

  const newFolder = guarded(async () => {
    const name = await ask({ title: "New folder", label: "Folder name", input: "", confirm: "Create" });
    if (!name) return;
    await api.createFolder(path, name);
    notify(`Created folder ${name}`);
    load();
  });
  const folderAction = (fn, ...rest) =>
    guarded(async () => {
      const result = await fn(path, ...rest);
      if (result === true) go(browseHash(parentOf(path)));
      else if (typeof result === "string") go(browseHash(result));
    });

  // The classic listing pages by offset (1,000 children at a time): more folders on ask.
  const paging = listing?.properties?.["srn:paging"];
  const listed = listing?.entities?.length || 0;
  const moreFolders = guarded(async () => {
    const next = await api.listFolder(path, listed);
    setListing((l) => ({ ...l, entities: [...l.entities, ...(next.entities || [])] }));
  });

  const toggleView = (v) => {
    sessionStorage.setItem("assetvault.view", v);
    setView(v);
  };
  const sortBy = (field) => setSort((s) => ({ field, order: s.field === field && s.order === "ASC" ? "DESC" : "ASC" }));

  const sel = useSelection(assets.items, `${path} ${sort.field} ${sort.order}`);
  const bulk = bulkActions(path, sel, setBulkReport, load);
  useTitle(path === ROOT ? "Assets" : nameOf(path));
  const hasAssets = !!listing?.entities?.some((e) => e.class.includes("assets/asset"));
  useScrollMemory(browseHash(path), !!listing && (!hasAssets || assets.items.length > 0));
  // Back in the grid, the focus is on the card of the asset the lightbox showed last.
  const closePreview = (last) => {
    setPreview(null);
    requestAnimationFrame(() => document.querySelector(`a.card[data-asset="${CSS.escape(last)}"]`)?.focus());
  };
  // Escape clears the selection; Ctrl/Cmd+A selects every asset shown (outside fields).
  // The listener reads the selection of the last render through a ref: an effect that
  // re-registers it runs only after the next paint, and a key pressed before then (right
  // after "Select all") would otherwise meet the previous render's empty selection.
  const keyState = useRef();
  keyState.current = { sel, count: assets.items.length };
  useEffect(() => {
    const on = (e) => {
      if (e.target.closest?.("input, textarea, select, dialog")) return;
      const { sel, count } = keyState.current;
      if (e.key === "Escape" && sel.size) sel.clear();
      else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "a" && count) {
        e.preventDefault();
        sel.all();
      }
    };
    addEventListener("keydown", on);
    return () => removeEventListener("keydown", on);
  }, []);

  if (error) {
    return html`<main><${Breadcrumbs} path=${path} /><p class="error" role="alert">${error.status === 404 ? `There is no folder ${path}.` : error.message}</p></main>`;
  }
  const folders = listing?.entities?.filter((e) => e.class.includes("assets/folder")) || [];
  const isRoot = path === ROOT;
  return html`<main
    class=${"browse" + (dragging ? " dragging" : "")}
    data-path=${path}
    onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
    onDragLeave=${(e) => { if (e.target === e.currentTarget) setDragging(false); }}
    onDrop=${onDrop}
    data-testid="dropzone"
  >
    <h1 class="sr-only">${isRoot ? "Assets" : nameOf(path)}</h1>
    <${Breadcrumbs} path=${path} />
    <div class="toolbar" role="toolbar" aria-label="Folder actions">
      <button onClick=${newFolder}>New folder</button>
      <button onClick=${() => fileInput.current.click()}>Upload files</button>
      <input type="file" multiple hidden ref=${fileInput} onChange=${(e) => { startUpload(e.target.files); e.target.value = ""; }} />
      ${!isRoot && html`
        <button onClick=${folderAction(renameNode, "folder")}>Rename</button>
        <button onClick=${folderAction(moveOrCopy, "MOVE", "folder")}>Move</button>
        <button onClick=${folderAction(async (p) => { await moveOrCopy(p, "COPY", "folder"); load(); return null; })}>Copy</button>
        <button class="danger" onClick=${folderAction(deleteNode, "folder")}>Delete</button>
        <${ShareButton} target=${path} kind="folder" />`}
      <span class="spacer"></span>
      ${assets.items.length > 0 && html`<button onClick=${sel.all} aria-keyshortcuts="Control+A">Select all</button>`}
      ${view === "grid" && html`<${SortMenu} sort=${sort} onSort=${setSort} />`}
      <div class="segmented" role="group" aria-label="View">
        <button aria-pressed=${view === "grid"} onClick=${() => toggleView("grid")}>Grid</button>
        <button aria-pressed=${view === "list"} onClick=${() => toggleView("list")}>List</button>
      </div>
    </div>
    <p class="hint drop-hint">Drop files anywhere here to upload them into this folder.</p>
    <${UploadPanel} uploads=${uploads} onCancel=${cancelUpload} onRetry=${retryUpload} onRename=${renameUpload} />
    <${SelectionBar} sel=${sel} total=${assets.items.length} actions=${bulk} />
    <${BulkReport} report=${bulkReport} onClose=${() => setBulkReport(null)} />
    ${!listing && html`<p class="loading">Loading…</p>`}
    ${folders.length > 0 && html`<ul class="folders" aria-label="Folders">
      ${folders.map((f) => html`<li key=${f.properties.name}><a class="folder" href=${browseHash(`${path}/${f.properties.name}`)}>
        <${FolderIcon} /> ${f.properties["dc:title"] || f.properties.name}</a></li>`)}
    </ul>`}
    ${paging && paging.total > listed && html`<button class="more" onClick=${moreFolders}>Show more folders</button>`}
    ${listing && !folders.length && !assets.items.length && html`<p class="empty">This folder is empty. Drop files here or use “Upload files”.</p>`}
    ${assets.items.length > 0 && (view === "grid"
      ? html`<ul class="grid" aria-label="Assets">
          ${assets.items.map((a, i) => html`<${AssetCard} key=${a.assetId} asset=${a} index=${i} sel=${sel} onPreview=${setPreview} />`)}
        </ul>`
      : html`<div class="table-wrap" ...${SCROLLS} aria-label="Assets table"><table class="list">
          <thead><tr><th><span class="sr-only">Selected</span></th>${COLUMNS.map(([label, field]) => html`<th aria-sort=${sort.field === field ? (sort.order === "ASC" ? "ascending" : "descending") : "none"}>
            <button class="sort" onClick=${() => sortBy(field)}>${label}${sort.field === field ? (sort.order === "ASC" ? " ▲" : " ▼") : ""}</button></th>`)}</tr></thead>
          <tbody>${assets.items.map((a, i) => { const r = a.repositoryMetadata; return html`<tr key=${a.assetId} class=${sel.has(a.assetId) ? "picked" : ""}>
            <td><input type="checkbox" checked=${sel.has(a.assetId)} aria-label=${"Select " + r["repo:name"]} onClick=${(e) => { if (e.shiftKey) { e.preventDefault(); sel.range(i); } else sel.toggle(i); }} /></td>
            <td><a href=${assetHash(a.assetId)} onClick=${(e) => sel.onClick(e, i)}>${r["repo:name"]}</a></td><td>${r["dc:format"]}</td>
            <td>${formatSize(r["repo:size"])}</td><td>${formatDate(r["repo:modifyDate"])}</td><td>${r["aem:assetState"]}</td></tr>`; })}
          </tbody></table></div>`)}
    ${assets.cursor && html`<button class="more" onClick=${() => loadAssets(listing, assets.cursor)}>Show more (${assets.items.length} of ${assets.total})</button>`}
    ${preview && html`<${Lightbox} start=${preview} list=${assets.items} onClose=${closePreview} />`}
  </main>`;
}

// -- asset page -------------------------------------------------------------------------

function MetadataEditor({ meta, onSaved }) {
  const [editing, setEditing] = useState(null); // {key, value, base: the metadata it was started on}
  const [conflict, setConflict] = useState(null); // {mine: {key, value}, current: meta}
  const [busy, setBusy] = useState(false);
  const fields = Object.entries(meta.assetMetadata || {}).sort(([a], [b]) => a.localeCompare(b));
  // Technical facts (read from the file) are read only here too, as in the form.
  const editable = (key, v) => !isTechnical(key) && (typeof v === "string" || typeof v === "number" || v === undefined);

  // `base`: the metadata the value was typed over. Another change to a different field is
  // merged (merge.js); to the same field, it is a conflict for the person to decide.
  const save = async (key, value, base) => {
    setBusy(true);
    try {
      const outcome = await saveFields(base, { [key]: value });
      if (outcome.conflict) {
        // Nothing was written. Show what is there now, and let the person choose.
        setConflict({ key, value, current: outcome.conflict.current });
        setEditing(null);
        onSaved(outcome.conflict.current, { keepConflict: true });
        return;
      }
      setEditing(null);
      setConflict(null);
      notify(outcome.merged ? `Saved ${key} (merged with another change to this asset)` : `Saved ${key}`);
      onSaved(outcome.saved);
    } catch (err) {
      notify(err.message, "error");
    } finally {
      setBusy(false);
    }
  };

  const submit = (e) => {
    e.preventDefault();
    const value = new FormData(e.target).get("value");
    save(editing.key, value, editing.base);
  };
  const addField = async () => {
    const key = await ask({ title: "Add a metadata field", label: "Field name (e.g. dc:subject)", input: "", confirm: "Add" });
    if (key && isTechnical(key)) return notify(`${key} is read from the file by processing: it cannot be set here.`, "error");
    if (key) setEditing({ key, value: "", base: meta });
  };

  return html`<section aria-labelledby="meta-h">
    <h2 id="meta-h">assetMetadata</h2>
    ${conflict && html`<div class="conflict" role="alert">
      <h3>Not saved: this asset was changed by someone else</h3>
      <p>Your value for <code>${conflict.key}</code> was <strong>${conflict.value}</strong>. Nothing was overwritten.
      The current values are shown below; the current <code>${conflict.key}</code> is${" "}
      <strong class="current-value">${show(conflict.current.assetMetadata?.[conflict.key] ?? "(none)")}</strong>.</p>
      <div class="row">
        <button class="primary" disabled=${busy} onClick=${() => save(conflict.key, conflict.value, conflict.current)}>Apply my value to the current version</button>
        <button onClick=${() => { setConflict(null); setEditing(null); }}>Keep the current values</button>
      </div>
    </div>`}
    <div class="table-wrap" ...${SCROLLS} aria-label="Editable metadata table"><table class="kv">
      <tbody>
        ${fields.map(([key, value]) => html`<tr key=${key} data-key=${key}>
          <th scope="row">${key}</th>
          <td>${editing?.key === key
            ? html`<form class="inline" onSubmit=${submit}>
                <input name="value" value=${editing.value} aria-label=${"New value of " + key} autofocus
                  /* what is typed is kept in the state: a drawing of the page meanwhile (its
                     renditions arriving) never puts the old value back before Save */
                  onInput=${(e) => { const value = e.target.value; setEditing((ed) => ed && { ...ed, value }); }} />
                <button class="primary" disabled=${busy}>Save</button>
                <button type="button" onClick=${() => setEditing(null)}>Cancel</button></form>`
            : html`<span class="value">${show(value)}</span>
                ${editable(key, value) && html` <button class="link" aria-label=${"Edit " + key} onClick=${() => setEditing({ key, value: String(value), base: meta })}>Edit</button>`}`}
          </td></tr>`)}
        ${editing && !(editing.key in (meta.assetMetadata || {})) && html`<tr><th scope="row">${editing.key}</th><td>
          <form class="inline" onSubmit=${submit}><input name="value" aria-label=${"Value of " + editing.key} autofocus />
          <button class="primary" disabled=${busy}>Save</button><button type="button" onClick=${() => setEditing(null)}>Cancel</button></form></td></tr>`}
      </tbody>
    </table></div>
    <div class="row">
      ${!("dc:title" in (meta.assetMetadata || {})) && html`<button onClick=${() => setEditing({ key: "dc:title", value: "", base: meta })}>Add a title</button>`}
      <button onClick=${addField}>Add a field</button>
    </div>
  </section>`;
}

function KeyValues({ data, label }) {
  return html`<div class="table-wrap" ...${SCROLLS} aria-label=${label + " table"}><table class="kv"><tbody>
    ${Object.entries(data || {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => html`<tr key=${k} data-key=${k}><th scope="row">${k}</th><td>${show(v)}</td></tr>`)}
  </tbody></table></div>`;
}

/** The page of an asset that is not there: deleted in this tab (`deletedAt`: its path
 * then; nothing is asked of the server about it), or answered 404. */
function AssetGone({ id, deletedAt }) {
  const folder = deletedAt ? parentOf(deletedAt) : null;
  return html`<main class="asset-gone" data-asset-id=${id}>
    ${deletedAt && html`<${Breadcrumbs} path=${folder} last=${nameOf(deletedAt)} />`}
    <h1>${deletedAt ? "This asset was deleted" : "Asset not found"}</h1>
    <p role="status">${deletedAt
      ? html`<strong>${nameOf(deletedAt)}</strong> was deleted from ${folder} in this tab. It cannot be opened any more.`
      : "There is no asset with this id: it was deleted, or the link is wrong."}</p>
    <p><a href=${folder ? browseHash(folder) : "#/browse"}>${folder ? `Go to ${folder === ROOT ? "Assets" : nameOf(folder)}` : "Go to the assets"}</a></p>
  </main>`;
}

function AssetPage({ id }) {
  // An asset this tab deleted: its page says so, and asks nothing about it.
  const [deletedAt] = useState(() => api.deletedPath(id));
  const [meta, setMeta] = useState(null);
  const [rends, setRends] = useState(null);
  const [rels, setRels] = useState(null);
  const [vers, setVers] = useState(null);
  const [comments, setComments] = useState([]);
  const [error, setError] = useState(null);
  const [deleting, setDeleting] = useState(false);
  const [lightbox, setLightbox] = useState(false);
  const [raw, setRaw] = useState(sessionStorage.getItem("assetvault.raw") === "open");
  const ui = { ask, notify, format: { size: formatSize, date: formatDate } };
  // The asset shown now: an answer about another (the page was left for another asset
  // while it was on its way, e.g. after the lightbox) is dropped, never drawn here.
  const shown = useRef(id);
  shown.current = id;
  const leaving = useRef(false); // being deleted: what its reads meet is no news

  const loadExtras = async (m) => {
    const [r, rel, ver, classic] = await Promise.all([
      api.renditions(id),
      api.relations(id),
      api.versions(id),
      api.classicAsset(m.repositoryMetadata["repo:path"]),
    ]);
    if (shown.current !== id) return;
    setRends(r);
    setRels(rel);
    setVers(ver);
    setComments((classic.entities || []).filter((e) => e.class.includes("assets/comment")).map((e) => e.properties));
  };
  const load = async () => {
    try {
      const m = await api.metadata(id);
      if (shown.current !== id) return;
      setMeta(m);
      await loadExtras(m);
    } catch (err) {
      if (shown.current === id && !leaving.current) setError(err);
    }
  };
  useEffect(() => {
    if (!deletedAt) load();
  }, [id]);

  // The processing state updates by itself: poll the metadata until processing ends
  // (and never while the asset is being deleted).
  const state = meta?.repositoryMetadata?.["aem:assetState"];
  const metaNow = useRef(null); // the metadata drawn last: a poll's answer older than it is dropped
  metaNow.current = meta;
  useEffect(() => {
    if ((state !== "processing" && state !== "new") || deleting) return;
    const t = setTimeout(async () => {
      try {
        const asked = metaNow.current;
        const m = await api.metadata(id);
        // A save (or a reload) that came in while this was on its way is newer: the
        // poll's answer never puts the page back to before it.
        if (shown.current !== id || metaNow.current !== asked) return;
        setMeta(m);
        if (m.repositoryMetadata["aem:assetState"] !== state) await loadExtras(m);
      } catch (err) {
        if (shown.current === id && !leaving.current) setError(err);
      }
    }, 1500);
    return () => clearTimeout(t);
  }, [meta, deleting]);

  const gone = deletedAt || error?.status === 404;
  useTitle(deletedAt ? "Deleted" : gone ? "Not found" : meta ? meta.assetMetadata?.["dc:title"] || meta.repositoryMetadata["repo:name"] : error ? "Not loaded" : "Loading…");
  if (gone) return html`<${AssetGone} id=${id} deletedAt=${deletedAt} />`;
  if (error) {
    return html`<main class="asset-error" data-asset-id=${id}><h1>The asset could not be loaded</h1>
      <p class="error" role="alert">${error.message}</p>
      <p><button onClick=${() => { setError(null); load(); }}>Try again</button> <a href="#/browse">Go to the assets</a></p></main>`;
  }
  if (!meta) return html`<main><p class="loading">Loading…</p></main>`;
  const repo = meta.repositoryMetadata;
  const path = repo["repo:path"];
  // An action that finds the asset gone (deleted elsewhere meanwhile) shows the page as such.
  const act = (fn, ...rest) =>
    guarded(async () => {
      try {
        const result = await fn(path, ...rest);
        if (typeof result === "string") load();
      } catch (err) {
        if (err.status !== 404) throw err;
        setError(err);
      }
    });
  const remove = guarded(async () => {
    const sure = await ask({ title: `Delete asset “${repo["repo:name"]}”?`, message: "This cannot be undone.", confirm: "Delete", danger: true });
    if (!sure) return;
    // The page stops showing (and so reading) the asset, and its poll stops; the reads it
    // sent are answered before the DELETE goes, and none starts after (api.deleteAsset).
    leaving.current = true;
    setDeleting(true);
    try {
      await api.deleteAsset(id, path);
    } catch (err) {
      leaving.current = false;
      setDeleting(false);
      if (err.status === 404) return setError(err);
      throw err;
    }
    notify(`Deleted ${repo["repo:name"]}`);
    go(browseHash(parentOf(path)));
  });
  const download = guarded(async (r) => {
    const seo = r.name === "original" ? repo["repo:name"] : r.name;
    await api.download(api.renditionUrl(id, r.name, seo), seo);
  });
  const comment = guarded(async (e) => {
    e.preventDefault();
    const form = e.target;
    const message = new FormData(form).get("message").trim();
    if (!message) return;
    await api.addComment(path, message);
    form.reset();
    await loadExtras(meta);
  });
  if (deleting) {
    return html`<main class="asset" data-asset-id=${id}>
      <${Breadcrumbs} path=${parentOf(path)} last=${repo["repo:name"]} />
      <h1>${meta.assetMetadata?.["dc:title"] || repo["repo:name"]}</h1>
      <p class="loading" role="status">Deleting…</p>
    </main>`;
  }
  return html`<main class="asset" data-asset-id=${id}>
    <${Breadcrumbs} path=${parentOf(path)} last=${repo["repo:name"]} />
    <div class="asset-head">
      <h1>${meta.assetMetadata?.["dc:title"] || repo["repo:name"]}</h1>
      <p class=${"badge " + state} data-testid="asset-state">${state}${repo["aem:assetStateReason"] ? `: ${repo["aem:assetStateReason"]}` : ""}</p>
    </div>
    <div class="toolbar" role="toolbar" aria-label="Asset actions">
      <button onClick=${act(renameNode, "asset")}>Rename</button>
      <button onClick=${act(moveOrCopy, "MOVE", "asset")}>Move</button>
      <button onClick=${act(moveOrCopy, "COPY", "asset")}>Copy</button>
      <button class="danger" onClick=${remove}>Delete</button>
      <${ShareButton} target=${id} kind="asset" />
    </div>
    <div class="asset-body">
      <div class="asset-media">
        <${AssetPreview} meta=${meta} renditions=${rends} onOpen=${() => setLightbox(true)} />
        ${lightbox && html`<${Lightbox} start=${meta} onClose=${(last) => { setLightbox(false); if (last !== id) go(assetHash(last)); }} />`}
        <section aria-labelledby="rend-h">
          <h2 id="rend-h">Renditions</h2>
          <div class="table-wrap" ...${SCROLLS} aria-label="Renditions table"><table class="list">
            <thead><tr><th>Name</th><th>Format</th><th>Size</th><th>Dimensions</th><th><span class="sr-only">Download</span></th></tr></thead>
            <tbody>${(rends?.items || []).map((r) => html`<tr key=${r.name}>
              <td>${r.name}</td><td>${r.format}</td><td>${formatSize(r.size)}</td>
              <td>${r.dimensions ? `${r.dimensions.width} × ${r.dimensions.height}` : "—"}</td>
              <td><button class="link" onClick=${() => download(r)} aria-label=${"Download " + r.name}>Download</button></td></tr>`)}</tbody>
          </table></div>
        </section>
      </div>
      <div class="asset-info">
        <${MetadataForm} meta=${meta} onSaved=${(m) => setMeta(m)} ui=${ui} />
        <details class="raw" open=${raw} onToggle=${(e) => { setRaw(e.target.open); sessionStorage.setItem("assetvault.raw", e.target.open ? "open" : ""); }}>
          <summary>All metadata (raw)</summary>
          <${MetadataEditor} meta=${meta} onSaved=${(m) => setMeta(m)} />
          <section aria-labelledby="repo-h"><h2 id="repo-h">repositoryMetadata</h2><${KeyValues} data=${repo} label="repositoryMetadata" /></section>
        </details>
        <section aria-labelledby="rel-h"><h2 id="rel-h">Relations</h2><${Relations} rels=${rels} assetHash=${assetHash} /></section>
        <section aria-labelledby="ver-h"><h2 id="ver-h">Versions</h2>
          <${Versions} meta=${meta} vers=${vers} ui=${ui} onRestored=${load} />
        </section>
        <section aria-labelledby="com-h"><h2 id="com-h">Comments</h2>
          ${comments.length ? html`<ul class="comments">${comments.map((c, i) => html`<li key=${i}><p>${c.message}</p><small>${c.createdBy}, ${formatDate(c.created)}</small></li>`)}</ul>` : html`<p class="hint">No comments.</p>`}
          <form class="inline" onSubmit=${comment}><input name="message" aria-label="New comment" placeholder="Add a comment" /><button>Comment</button></form>
        </section>
      </div>
    </div>
  </main>`;
}

// -- the app ----------------------------------------------------------------------------

function Header({ onSignOut, q }) {
  const submit = (e) => {
    e.preventDefault();
    go(`#/search?q=${encodeURIComponent(new FormData(e.target).get("q"))}`);
  };
  return html`<header class="top">
    <a class="brand" href="#/browse">Assetvault</a>
    <form class="quick" role="search" onSubmit=${submit}>
      <input type="search" name="q" aria-label="Search assets" placeholder="Search assets" value=${q} />
      <button>Search</button>
    </form>
    <nav class="top-links"><a href="#/shares">Share links</a><a href="/docs">API docs</a><button onClick=${onSignOut}>Sign out</button></nav>
  </header>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(!!api.session.token);
  const { path, params } = useRoute();
  useEffect(() => {
    const expired = () => {
      // Requests in flight together all fail alike: the first signs out, and says so once.
      if (!api.session.token) return;
      api.session.signOut();
      setSignedIn(false);
      notify("The token is no longer valid: sign in again.", "error");
    };
    addEventListener("assetvault:unauthorized", expired);
    return () => removeEventListener("assetvault:unauthorized", expired);
  }, []);
  if (!signedIn) return html`<${SignIn} onDone=${() => setSignedIn(true)} /><${Notices} />`;
  const signOut = () => {
    api.session.signOut();
    setSignedIn(false);
  };
  let page;
  if (path.startsWith("/asset/")) {
    // One page per asset: another asset's page starts empty, never showing (and acting
    // on) the last asset's metadata, renditions and versions until its own arrive.
    const id = decodeURIComponent(path.slice(7));
    page = html`<${AssetPage} key=${id} id=${id} />`;
  }
  else if (path === "/search") page = html`<${Search} params=${params} />`;
  else if (path === "/shares") page = html`<${SharesPage} ask=${ask} browseHref=${(l) => (l.assetId ? assetHash(l.assetId) : browseHash(l.path))} />`;
  else {
    const rest = path.replace(/^\/browse/, "");
    const folder = ROOT + rest.split("/").map(decodeURIComponent).join("/").replace(/\/+$/, "");
    // One page per folder, as for assets: another folder's page starts empty, never
    // showing (and acting on) the last folder's listing and selection, and an answer
    // about the last folder cannot land on it.
    page = html`<${Browse} key=${folder} path=${folder} />`;
  }
  return html`<${Header} onSignOut=${signOut} q=${path === "/search" ? params.get("q") || "" : ""} />${page}<${Dialog} /><${FolderPicker} /><${Notices} />`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading" line
render(html`<${App} />`, root);
