// The Assetvault web UI: Preact + htm (no build step), hash routes, the public APIs only.
import { h, render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { ROOT, nameOf, parentOf } from "./api.js";
import { FILES_IN_FLIGHT, freeName, uploadFile } from "./upload.js";
import { saveFields } from "./merge.js";
import { Search } from "./search.js";

const html = htm.bind(h);
const THUMB = "cq5dam.thumbnail.319.319.png";

// -- small helpers ----------------------------------------------------------------------

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
      html`<label>${opts.label || "Name"}<input ref=${inputRef} name="value" value=${opts.input} required /></label>`}
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
        if (!list.items.some((r) => r.name === THUMB)) throw new Error("no thumbnail");
        const u = await api.blobUrl(api.renditionUrl(id, THUMB, "thumbnail.png"));
        if (!cancelled) setUrl(u);
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
  const target = await ask({
    title: `${verb} ${kind} “${nameOf(path)}”`,
    label: "Into folder",
    input: parentOf(path),
    confirm: verb,
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
  const [sort, setSort] = useState({ field: COLUMNS[0][1], order: "ASC" });
  const [uploads, setUploads] = useState([]);
  const [dragging, setDragging] = useState(false);
  const urnRef = useRef(null);
  const fileInput = useRef();

  const loadAssets = useCallback(
    async (folders, cursor = null) => {
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
    urnRef.current = null;
    setListing(null);
    setUploads([]);
  }, [path]);
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

  if (error) {
    return html`<main><${Breadcrumbs} path=${path} /><p class="error" role="alert">${error.status === 404 ? `There is no folder ${path}.` : error.message}</p></main>`;
  }
  const folders = listing?.entities?.filter((e) => e.class.includes("assets/folder")) || [];
  const isRoot = path === ROOT;
  return html`<main
    class=${"browse" + (dragging ? " dragging" : "")}
    onDragOver=${(e) => { e.preventDefault(); setDragging(true); }}
    onDragLeave=${(e) => { if (e.target === e.currentTarget) setDragging(false); }}
    onDrop=${onDrop}
    data-testid="dropzone"
  >
    <${Breadcrumbs} path=${path} />
    <div class="toolbar" role="toolbar" aria-label="Folder actions">
      <button onClick=${newFolder}>New folder</button>
      <button onClick=${() => fileInput.current.click()}>Upload files</button>
      <input type="file" multiple hidden ref=${fileInput} onChange=${(e) => { startUpload(e.target.files); e.target.value = ""; }} />
      ${!isRoot && html`
        <button onClick=${folderAction(renameNode, "folder")}>Rename</button>
        <button onClick=${folderAction(moveOrCopy, "MOVE", "folder")}>Move</button>
        <button onClick=${folderAction(async (p) => { await moveOrCopy(p, "COPY", "folder"); load(); return null; })}>Copy</button>
        <button class="danger" onClick=${folderAction(deleteNode, "folder")}>Delete</button>`}
      <span class="spacer"></span>
      <div class="segmented" role="group" aria-label="View">
        <button aria-pressed=${view === "grid"} onClick=${() => toggleView("grid")}>Grid</button>
        <button aria-pressed=${view === "list"} onClick=${() => toggleView("list")}>List</button>
      </div>
    </div>
    <p class="hint drop-hint">Drop files anywhere here to upload them into this folder.</p>
    <${UploadPanel} uploads=${uploads} onCancel=${cancelUpload} onRetry=${retryUpload} onRename=${renameUpload} />
    ${!listing && html`<p class="loading">Loading…</p>`}
    ${folders.length > 0 && html`<ul class="folders" aria-label="Folders">
      ${folders.map((f) => html`<li key=${f.properties.name}><a class="folder" href=${browseHash(`${path}/${f.properties.name}`)}>
        <${FolderIcon} /> ${f.properties["dc:title"] || f.properties.name}</a></li>`)}
    </ul>`}
    ${paging && paging.total > listed && html`<button class="more" onClick=${moreFolders}>Show more folders</button>`}
    ${listing && !folders.length && !assets.items.length && html`<p class="empty">This folder is empty. Drop files here or use “Upload files”.</p>`}
    ${assets.items.length > 0 && (view === "grid"
      ? html`<ul class="grid" aria-label="Assets">
          ${assets.items.map((a) => html`<li key=${a.assetId}><a class="card" href=${assetHash(a.assetId)} data-name=${a.repositoryMetadata["repo:name"]}>
            <${Thumb} asset=${a} />
            <span class="card-name">${a.assetMetadata?.["dc:title"] || a.repositoryMetadata["repo:name"]}</span>
          </a></li>`)}
        </ul>`
      : html`<div class="table-wrap"><table class="list">
          <thead><tr>${COLUMNS.map(([label, field]) => html`<th aria-sort=${sort.field === field ? (sort.order === "ASC" ? "ascending" : "descending") : "none"}>
            <button class="sort" onClick=${() => sortBy(field)}>${label}${sort.field === field ? (sort.order === "ASC" ? " ▲" : " ▼") : ""}</button></th>`)}</tr></thead>
          <tbody>${assets.items.map((a) => { const r = a.repositoryMetadata; return html`<tr key=${a.assetId}>
            <td><a href=${assetHash(a.assetId)}>${r["repo:name"]}</a></td><td>${r["dc:format"]}</td>
            <td>${formatSize(r["repo:size"])}</td><td>${formatDate(r["repo:modifyDate"])}</td><td>${r["aem:assetState"]}</td></tr>`; })}
          </tbody></table></div>`)}
    ${assets.cursor && html`<button class="more" onClick=${() => loadAssets(listing, assets.cursor)}>Show more (${assets.items.length} of ${assets.total})</button>`}
  </main>`;
}

// -- asset page -------------------------------------------------------------------------

function MetadataEditor({ meta, onSaved }) {
  const [editing, setEditing] = useState(null); // {key, value, base: the metadata it was started on}
  const [conflict, setConflict] = useState(null); // {mine: {key, value}, current: meta}
  const [busy, setBusy] = useState(false);
  const fields = Object.entries(meta.assetMetadata || {}).sort(([a], [b]) => a.localeCompare(b));
  const editable = (v) => typeof v === "string" || typeof v === "number" || v === undefined;

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
    <div class="table-wrap"><table class="kv">
      <tbody>
        ${fields.map(([key, value]) => html`<tr key=${key} data-key=${key}>
          <th scope="row">${key}</th>
          <td>${editing?.key === key
            ? html`<form class="inline" onSubmit=${submit}>
                <input name="value" value=${editing.value} aria-label=${"New value of " + key} autofocus />
                <button class="primary" disabled=${busy}>Save</button>
                <button type="button" onClick=${() => setEditing(null)}>Cancel</button></form>`
            : html`<span class="value">${show(value)}</span>
                ${editable(value) && html` <button class="link" aria-label=${"Edit " + key} onClick=${() => setEditing({ key, value: String(value), base: meta })}>Edit</button>`}`}
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

function KeyValues({ data }) {
  return html`<div class="table-wrap"><table class="kv"><tbody>
    ${Object.entries(data || {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => html`<tr key=${k} data-key=${k}><th scope="row">${k}</th><td>${show(v)}</td></tr>`)}
  </tbody></table></div>`;
}

function Preview({ meta, renditions }) {
  const [url, setUrl] = useState(null);
  const has = renditions?.items?.some((r) => r.name.startsWith("cq5dam.web."));
  const sha1 = meta.repositoryMetadata["dam:sha1"];
  useEffect(() => {
    if (!has) return;
    let u;
    api.webRenditionUrl(meta.assetId).then((x) => setUrl((u = x)), () => setUrl(null));
    return () => u && URL.revokeObjectURL(u);
  }, [meta.assetId, has, sha1]);
  const state = meta.repositoryMetadata["aem:assetState"];
  if (url) return html`<img class="preview" src=${url} alt=${"Preview of " + meta.repositoryMetadata["repo:name"]} />`;
  if (state === "processing" || state === "new") return html`<div class="preview placeholder busy">Processing… the preview appears when it is done.</div>`;
  return html`<div class="preview placeholder">No web preview for this asset${state === "failed" ? " (processing failed)" : ""}.</div>`;
}

function AssetPage({ id }) {
  const [meta, setMeta] = useState(null);
  const [rends, setRends] = useState(null);
  const [rels, setRels] = useState(null);
  const [vers, setVers] = useState(null);
  const [comments, setComments] = useState([]);
  const [error, setError] = useState(null);

  const loadExtras = async (m) => {
    const [r, rel, ver, classic] = await Promise.all([
      api.renditions(id),
      api.relations(id),
      api.versions(id),
      api.classicAsset(m.repositoryMetadata["repo:path"]),
    ]);
    setRends(r);
    setRels(rel);
    setVers(ver);
    setComments((classic.entities || []).filter((e) => e.class.includes("assets/comment")).map((e) => e.properties));
  };
  const load = async () => {
    try {
      const m = await api.metadata(id);
      setMeta(m);
      await loadExtras(m);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => {
    setMeta(null);
    setError(null);
    load();
  }, [id]);

  // The processing state updates by itself: poll the metadata until processing ends.
  const state = meta?.repositoryMetadata?.["aem:assetState"];
  useEffect(() => {
    if (state !== "processing" && state !== "new") return;
    const t = setTimeout(async () => {
      try {
        const m = await api.metadata(id);
        setMeta(m);
        if (m.repositoryMetadata["aem:assetState"] !== state) await loadExtras(m);
      } catch (err) {
        setError(err);
      }
    }, 1500);
    return () => clearTimeout(t);
  }, [meta]);

  if (error) return html`<main><p class="error" role="alert">${error.status === 404 ? "This asset does not exist (any more)." : error.message}</p><a href="#/browse">Back to the assets</a></main>`;
  if (!meta) return html`<main><p class="loading">Loading…</p></main>`;
  const repo = meta.repositoryMetadata;
  const path = repo["repo:path"];
  const act = (fn, ...rest) =>
    guarded(async () => {
      const result = await fn(path, ...rest);
      if (result === true) go(browseHash(parentOf(path)));
      else if (typeof result === "string") load();
    });
  const download = guarded(async (r) => {
    const seo = r.name === "original" ? repo["repo:name"] : r.name;
    api.saveAs(await api.blobUrl(api.renditionUrl(id, r.name, seo)), seo);
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

  return html`<main class="asset">
    <${Breadcrumbs} path=${parentOf(path)} last=${repo["repo:name"]} />
    <div class="asset-head">
      <h1>${meta.assetMetadata?.["dc:title"] || repo["repo:name"]}</h1>
      <p class=${"badge " + state} data-testid="asset-state">${state}${repo["aem:assetStateReason"] ? `: ${repo["aem:assetStateReason"]}` : ""}</p>
    </div>
    <div class="toolbar" role="toolbar" aria-label="Asset actions">
      <button onClick=${act(renameNode, "asset")}>Rename</button>
      <button onClick=${act(moveOrCopy, "MOVE", "asset")}>Move</button>
      <button onClick=${act(moveOrCopy, "COPY", "asset")}>Copy</button>
      <button class="danger" onClick=${act(deleteNode, "asset")}>Delete</button>
    </div>
    <div class="asset-body">
      <div class="asset-media">
        <${Preview} meta=${meta} renditions=${rends} />
        <section aria-labelledby="rend-h">
          <h2 id="rend-h">Renditions</h2>
          <div class="table-wrap"><table class="list">
            <thead><tr><th>Name</th><th>Format</th><th>Size</th><th>Dimensions</th><th><span class="sr-only">Download</span></th></tr></thead>
            <tbody>${(rends?.items || []).map((r) => html`<tr key=${r.name}>
              <td>${r.name}</td><td>${r.format}</td><td>${formatSize(r.size)}</td>
              <td>${r.dimensions ? `${r.dimensions.width} × ${r.dimensions.height}` : "—"}</td>
              <td><button class="link" onClick=${() => download(r)} aria-label=${"Download " + r.name}>Download</button></td></tr>`)}</tbody>
          </table></div>
        </section>
      </div>
      <div class="asset-info">
        <${MetadataEditor} meta=${meta} onSaved=${(m) => setMeta(m)} />
        <section aria-labelledby="repo-h"><h2 id="repo-h">repositoryMetadata</h2><${KeyValues} data=${repo} /></section>
        <section aria-labelledby="rel-h"><h2 id="rel-h">Relations</h2>
          ${rels?.items?.length
            ? html`<ul>${rels.items.map((r) => html`<li key=${r.relationType + r.relatedAssetId}>${r.relationType}: <a href=${assetHash(r.relatedAssetId)}>${r.relatedAssetId}</a></li>`)}</ul>`
            : html`<p class="hint">No relations.</p>`}
        </section>
        <section aria-labelledby="ver-h"><h2 id="ver-h">Versions</h2>
          <p>Revision <strong>${repo["repo:version"]}</strong>, last changed ${formatDate(repo["repo:modifyDate"])} by ${repo["repo:modifiedBy"]}.</p>
          ${vers && vers.items.length < 2 ? html`<p class="hint">No earlier versions.</p>` : null}
          <div class="table-wrap"><table class="list versions" data-testid="versions">
            <thead><tr><th>Version</th><th>Label / comment</th><th>Size</th><th>Date</th><th>By</th></tr></thead>
            <tbody>${(vers?.items || []).map((v) => html`<tr key=${v.name} class=${v.current ? "current" : ""} aria-current=${v.current ? "true" : null}>
              <td>${v.current ? html`<strong>Current</strong>` : v.name}</td>
              <td>${[v.label, v.comment].filter(Boolean).join(" — ") || "—"}</td>
              <td>${formatSize(v.size)}</td><td>${formatDate(v.created)}</td><td>${v.createdBy}</td></tr>`)}</tbody>
          </table></div>
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
    <nav class="top-links"><a href="/docs">API docs</a><button onClick=${onSignOut}>Sign out</button></nav>
  </header>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(!!api.session.token);
  const { path, params } = useRoute();
  useEffect(() => {
    const expired = () => {
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
  if (path.startsWith("/asset/")) page = html`<${AssetPage} id=${decodeURIComponent(path.slice(7))} />`;
  else if (path === "/search") page = html`<${Search} params=${params} />`;
  else {
    const rest = path.replace(/^\/browse/, "");
    const folder = ROOT + rest.split("/").map(decodeURIComponent).join("/").replace(/\/+$/, "");
    page = html`<${Browse} path=${folder} />`;
  }
  return html`<${Header} onSignOut=${signOut} q=${path === "/search" ? params.get("q") || "" : ""} />${page}<${Dialog} /><${Notices} />`;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading" line
render(html`<${App} />`, root);
