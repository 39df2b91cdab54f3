// The asset page's metadata as a form (labels and groups for the common fields, keywords
// as tags, technical facts read-only), its relations with thumbnails and names, and its
// versions, each of which can be previewed, downloaded and restored.
import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { SmallThumb, TextPreview, isText, useBlobUrl } from "./preview.js";
import { SCROLLS } from "./app.js";

const html = htm.bind(h);

// AEM's property names (XMP): keywords are dc:subject, as IPTC Keywords map to it.
export const GROUPS = [
  {
    title: "Description",
    fields: [
      { key: "dc:title", label: "Title", type: "text" },
      { key: "dc:description", label: "Description", type: "textarea" },
      { key: "dc:subject", label: "Keywords", type: "tags" },
    ],
  },
  {
    title: "Rights and status",
    fields: [
      { key: "dc:creator", label: "Creators", type: "tags" },
      { key: "dc:rights", label: "Copyright", type: "text" },
      { key: "xmpRights:UsageTerms", label: "Usage terms", type: "textarea" },
      { key: "pur:expirationDate", label: "Expires", type: "date" },
      { key: "dam:assetStatus", label: "Status", type: "select", choices: ["approved", "rejected", "changesRequested"] },
    ],
  },
];
export const FORM_KEYS = new Set(GROUPS.flatMap((g) => g.fields.map((f) => f.key)));

const asList = (v) => (v == null || v === "" ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const asText = (v) => (v == null ? "" : Array.isArray(v) ? v.join(", ") : String(v));
const pointer = (key) => `/assetMetadata/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;

function initial(meta) {
  const values = {};
  for (const g of GROUPS) {
    for (const f of g.fields) {
      const v = meta.assetMetadata?.[f.key];
      values[f.key] = f.type === "tags" ? asList(v) : f.type === "date" ? asText(v).slice(0, 10) : asText(v);
    }
  }
  return values;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The form of a revision: its values, as typed so far and as loaded, and its ETag. */
const fresh = (meta) => ({ etag: meta.etag, values: initial(meta), loaded: initial(meta) });

/** The JSON Patch from the values loaded to the values in the form: add or remove. */
function operations(before, after, meta) {
  const ops = [];
  for (const g of GROUPS) {
    for (const f of g.fields) {
      if (same(before[f.key], after[f.key])) continue;
      const empty = f.type === "tags" ? !after[f.key].length : after[f.key] === "";
      if (empty) {
        if (f.key in (meta.assetMetadata || {})) ops.push({ op: "remove", path: pointer(f.key) });
      } else ops.push({ op: "add", path: pointer(f.key), value: after[f.key] });
    }
  }
  return ops;
}

function Tags({ field, values, onChange }) {
  const [draft, setDraft] = useState("");
  const id = `field-${field.key.replace(/\W/g, "-")}`;
  const add = () => {
    const more = draft.split(",").map((t) => t.trim()).filter((t) => t && !values.includes(t));
    if (more.length) onChange([...values, ...more]);
    setDraft("");
  };
  return html`<div class="field tags-field">
    <label for=${id}>${field.label}</label>
    <ul class="tags" aria-label=${field.label}>
      ${values.map((t) => html`<li key=${t} class="tag" data-tag=${t}><span>${t}</span>
        <button type="button" class="link" aria-label=${`Remove ${field.label.toLowerCase().replace(/s$/, "")} ${t}`}
          onClick=${() => onChange(values.filter((x) => x !== t))}>×</button></li>`)}
    </ul>
    <div class="inline">
      <input id=${id} value=${draft} placeholder=${`Add ${field.label.toLowerCase()} (Enter)`}
        onInput=${(e) => setDraft(e.target.value)}
        onKeyDown=${(e) => { if (e.key === "Enter" || e.key === ",") { e.preventDefault(); add(); } }} />
      <button type="button" onClick=${add} aria-label=${"Add to " + field.label}>Add</button>
    </div>
  </div>`;
}

function Field({ field, value, onChange }) {
  const id = `field-${field.key.replace(/\W/g, "-")}`;
  if (field.type === "tags") return html`<${Tags} field=${field} values=${value} onChange=${onChange} />`;
  let input;
  if (field.type === "textarea") input = html`<textarea id=${id} rows="3" value=${value} onInput=${(e) => onChange(e.target.value)}></textarea>`;
  else if (field.type === "select") {
    const choices = value && !field.choices.includes(value) ? [...field.choices, value] : field.choices;
    input = html`<select id=${id} value=${value} onChange=${(e) => onChange(e.target.value)}>
      <option value="">(none)</option>${choices.map((c) => html`<option value=${c}>${c}</option>`)}</select>`;
  } else input = html`<input id=${id} type=${field.type === "date" ? "date" : "text"} value=${value} onInput=${(e) => onChange(e.target.value)} />`;
  return html`<div class="field"><label for=${id}>${field.label}</label>${input}</div>`;
}

const TECHNICAL = [
  ["Format", (m) => m.repositoryMetadata["dc:format"]],
  ["Size", (m, fmt) => fmt.size(m.repositoryMetadata["repo:size"])],
  ["Width", (m) => m.assetMetadata?.["tiff:ImageWidth"] ?? m.assetMetadata?.["exif:PixelXDimension"]],
  ["Height", (m) => m.assetMetadata?.["tiff:ImageLength"] ?? m.assetMetadata?.["exif:PixelYDimension"]],
  ["Duration", (m) => (m.assetMetadata?.["xmpDM:duration"] != null ? `${m.assetMetadata["xmpDM:duration"]} s` : null)],
  ["Pages", (m) => m.assetMetadata?.["xmpTPg:NPages"]],
  ["Created", (m, fmt) => fmt.date(m.repositoryMetadata["repo:createDate"])],
  ["Modified", (m, fmt) => `${fmt.date(m.repositoryMetadata["repo:modifyDate"])} by ${m.repositoryMetadata["repo:modifiedBy"] || "—"}`],
  ["SHA-1", (m) => m.repositoryMetadata["dam:sha1"]],
];

/** The form. `ui` brings the page's ask/notify and formatters; `onSaved(meta)` after a save. */
export function MetadataForm({ meta, onSaved, ui }) {
  // The values typed and the values they started from, with the revision (ETag) they
  // belong to. A newer revision (saved here, or reloaded) starts the form afresh in the
  // very render that brings it: an edit (a tag removed, a click) in the next instant acts
  // on the new revision's values, never on the last one's to be overwritten after.
  const [form, setForm] = useState(() => fresh(meta));
  const [conflict, setConflict] = useState(null); // the asset as it is now, after a 412
  const [busy, setBusy] = useState(false);
  let current = form;
  if (form.etag !== meta.etag && !conflict) {
    current = fresh(meta);
    setForm(current);
  }
  const { values, loaded } = current;
  const setValues = (next) => setForm((f) => ({ ...f, values: typeof next === "function" ? next(f.values) : next }));
  const ops = operations(loaded, values, meta);

  // On a 412 (the asset changed elsewhere), as merge.js does for the other editors: when
  // nobody else changed the fields this form changed, they are applied again on the
  // current version, once; otherwise the conflict is shown for the person to decide.
  const save = async (base, etag, retried = false) => {
    const patch = operations(initial(base), values, base);
    if (!patch.length) return;
    setBusy(true);
    try {
      const updated = await api.patchMetadata(meta.assetId, etag, patch);
      setConflict(null);
      ui.notify(retried ? "Saved (merged with another change)" : "Saved");
      onSaved(updated);
    } catch (err) {
      if (err.status !== 412) {
        ui.notify(err.message, "error");
        return;
      }
      const current = await api.metadata(meta.assetId);
      const fields = GROUPS.flatMap((g) => g.fields).map((f) => f.key);
      const mine = fields.filter((k) => !same(initial(base)[k], values[k]));
      const theirs = mine.filter((k) => !same(initial(base)[k], initial(current)[k]));
      if (!retried && !conflict && theirs.length === 0) {
        setBusy(false);
        await save(current, current.etag, true);
        return;
      }
      setConflict(current);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e) => {
    e.preventDefault();
    save(meta, meta.etag);
  };
  const keepCurrent = () => {
    const now = conflict;
    setConflict(null);
    setForm(fresh(now));
    onSaved(now);
  };
  const set = (key) => (v) => setValues((vs) => ({ ...vs, [key]: v }));
  const fmt = ui.format;
  const changed = GROUPS.flatMap((g) => g.fields).filter((f) => !same(loaded[f.key], values[f.key]));

  return html`<form class="metadata-form" onSubmit=${submit} aria-labelledby="form-h">
    <h2 id="form-h">Metadata</h2>
    ${conflict && html`<div class="conflict" role="alert">
      <h3>Not saved: this asset was changed by someone else</h3>
      <p>Nothing was overwritten. Your changes, and what the asset holds now:</p>
      <ul>${changed.map((f) => html`<li key=${f.key}>${f.label}: yours <strong>${asText(values[f.key]) || "(empty)"}</strong>,
        now <strong class="current-value">${asText(conflict.assetMetadata?.[f.key]) || "(empty)"}</strong></li>`)}</ul>
      <div class="row">
        <button type="button" class="primary" disabled=${busy} onClick=${() => save(conflict, conflict.etag)}>Apply my changes to the current version</button>
        <button type="button" onClick=${keepCurrent}>Keep the current values</button>
      </div>
    </div>`}
    ${GROUPS.map((g) => html`<fieldset key=${g.title} class="group"><legend>${g.title}</legend>
      ${g.fields.map((f) => html`<${Field} key=${f.key} field=${f} value=${values[f.key]} onChange=${set(f.key)} />`)}
    </fieldset>`)}
    <div class="row">
      <button class="primary" disabled=${busy || !ops.length}>Save changes</button>
      <button type="button" disabled=${busy || !ops.length} onClick=${() => setValues(loaded)}>Undo changes</button>
      ${ops.length > 0 && html`<span class="hint">${ops.length} unsaved change${ops.length > 1 ? "s" : ""}</span>`}
    </div>
    <fieldset class="group technical"><legend>Technical (read only)</legend>
      <dl class="facts">${TECHNICAL.map(([label, get]) => {
        const v = get(meta, fmt);
        return v == null || v === "" ? null : html`<div key=${label}><dt>${label}</dt><dd data-fact=${label}>${String(v)}</dd></div>`;
      })}</dl>
    </fieldset>
  </form>`;
}

// -- relations ----------------------------------------------------------------------------

const RELATION_LABELS = { derived: "Derived from this", sources: "Sources", others: "Related" };

/** Relations as cards: the related asset's thumbnail, title or name, and folder. */
export function Relations({ rels, assetHash }) {
  const [found, setFound] = useState({}); // id -> metadata | {missing: true}
  const ids = [...new Set((rels?.items || []).map((r) => r.relatedAssetId))];
  useEffect(() => {
    let live = true;
    for (const id of ids) {
      if (found[id]) continue;
      Promise.all([api.metadata(id), api.renditions(id).catch(() => ({ items: [] }))]).then(
        ([m, r]) => live && setFound((f) => ({ ...f, [id]: { ...m, thumb: r.items.some((x) => x.name === "cq5dam.thumbnail.140.100.png") } })),
        () => live && setFound((f) => ({ ...f, [id]: { missing: true } })),
      );
    }
    return () => {
      live = false;
    };
  }, [ids.join(" ")]);
  if (!rels?.items?.length) return html`<p class="hint">No relations.</p>`;
  return html`<ul class="relations">${rels.items.map((r) => {
    const m = found[r.relatedAssetId];
    const name = m?.missing ? "(an asset that no longer exists)" : m ? m.assetMetadata?.["dc:title"] || m.repositoryMetadata["repo:name"] : "…";
    const where = m && !m.missing ? m.repositoryMetadata["repo:path"] : r.relatedAssetId;
    return html`<li key=${r.relationType + r.relatedAssetId} class="relation" data-related=${r.relatedAssetId}>
      <a href=${assetHash(r.relatedAssetId)} class="relation-card">
        <${SmallThumb} assetId=${r.relatedAssetId} has=${!!m?.thumb} />
        <span><span class="relation-type">${RELATION_LABELS[r.relationType] || r.relationType}</span>
          <strong class="relation-name">${name}</strong><small>${where}</small></span>
      </a></li>`;
  })}</ul>`;
}

// -- versions -------------------------------------------------------------------------------

function VersionPreview({ meta, version }) {
  const name = meta.repositoryMetadata["repo:name"];
  const url = api.versionUrl(meta.assetId, version.name, name);
  const image = version.mimeType?.startsWith("image/") && ["image/png", "image/jpeg", "image/gif", "image/webp"].includes(version.mimeType);
  const { url: src, error } = useBlobUrl(image ? url : null);
  if (isText(version.mimeType)) return html`<${TextPreview} url=${url} mime=${version.mimeType} />`;
  if (!image) return html`<p class="hint">No preview for ${version.mimeType}: download the version to open it.</p>`;
  if (error) return html`<p class="error">${error.message}</p>`;
  return src ? html`<img class="preview" src=${src} alt=${`Version ${version.name} of ${name}`} data-testid="version-preview" />` : html`<p class="loading">Loading…</p>`;
}

/** The versions table, with Preview, Download and Restore for each kept version. */
export function Versions({ meta, vers, ui, onRestored }) {
  const [previewing, setPreviewing] = useState(null);
  const repo = meta.repositoryMetadata;
  const name = repo["repo:name"];
  const dot = name.lastIndexOf(".");
  const fileName = (v) => (dot > 0 ? `${name.slice(0, dot)}-${v.name}${name.slice(dot)}` : `${name}-${v.name}`);
  const download = async (v) => {
    try {
      await api.download(api.versionUrl(meta.assetId, v.name, fileName(v)), fileName(v));
    } catch (err) {
      ui.notify(err.message, "error");
    }
  };
  const restore = async (v) => {
    const sure = await ui.ask({
      title: `Restore version ${v.name}?`,
      message: `Its file becomes the current original of “${name}”. The current original is kept as a new version, so nothing is lost.`,
      confirm: "Restore",
    });
    if (!sure) return;
    try {
      await api.restoreVersion(meta.assetId, v.name, meta.etag);
      ui.notify(`Restored version ${v.name}`);
      setPreviewing(null);
      onRestored();
    } catch (err) {
      ui.notify(err.status === 412 ? "Not restored: the asset was changed meanwhile. The page shows it as it is now." : err.message, "error");
      if (err.status === 412) onRestored();
    }
  };
  const items = vers?.items || [];
  return html`<div>
    <p>Revision <strong>${repo["repo:version"]}</strong>, last changed ${ui.format.date(repo["repo:modifyDate"])} by ${repo["repo:modifiedBy"]}.</p>
    ${vers && items.length < 2 ? html`<p class="hint">No earlier versions.</p>` : null}
    <div class="table-wrap" ...${SCROLLS} aria-label="Versions table"><table class="list versions" data-testid="versions">
      <thead><tr><th>Version</th><th>Label / comment</th><th>Size</th><th>Date</th><th>By</th><th><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${items.map((v) => html`<tr key=${v.name} class=${v.current ? "current" : ""} aria-current=${v.current ? "true" : null} data-version=${v.name}>
        <td>${v.current ? html`<strong>Current</strong>` : v.name}</td>
        <td>${[v.label, v.comment].filter(Boolean).join(" — ") || "—"}</td>
        <td>${ui.format.size(v.size)}</td><td>${ui.format.date(v.created)}</td><td>${v.createdBy}</td>
        <td class="row-actions">${!v.current && html`
          <button class="link" onClick=${() => setPreviewing(previewing?.name === v.name ? null : v)} aria-label=${"Preview version " + v.name} aria-expanded=${previewing?.name === v.name}>Preview</button>
          <button class="link" onClick=${() => download(v)} aria-label=${"Download version " + v.name}>Download</button>
          <button class="link" onClick=${() => restore(v)} aria-label=${"Restore version " + v.name}>Restore</button>`}</td></tr>`)}</tbody>
    </table></div>
    ${previewing && html`<section class="version-preview" aria-label=${"Version " + previewing.name}>
      <h3>Version ${previewing.name}${previewing.label ? ` — ${previewing.label}` : ""}</h3>
      <${VersionPreview} key=${previewing.name} meta=${meta} version=${previewing} />
      <div class="row"><button onClick=${() => setPreviewing(null)}>Close the preview</button></div>
    </section>`}
  </div>`;
}

/** Is the field shown by the form (so the raw view can say which ones are elsewhere)? */
export const inForm = (key) => FORM_KEYS.has(key);

/** Is the field a fact read from the file by processing (pixel sizes, EXIF, duration,
 * pages, the PDF's producer...)? It is shown, never edited: the next processing would
 * write it again, and a wrong width misleads whoever reads it. */
const TECHNICAL_KEYS = new Set(["pdf:PDFVersion", "pdf:Producer", "xmp:CreatorTool"]);
export const isTechnical = (key) => /^(tiff|exif|exifEX|xmpDM|xmpTPg|aux):/.test(key) || TECHNICAL_KEYS.has(key);
