// The lightbox: one asset at a time over the page, with zoom (wheel, pinch, buttons,
// + - 0), fullscreen (F), previous and next through the assets of its folder (buttons,
// arrow keys) and Escape to close. A native modal <dialog>: focus stays inside it. It
// opens from an asset's page and from the grid (a card's Preview button, or Space on a
// focused card, as in a file manager).
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { MediaView, clampScale } from "./preview.js";

const html = htm.bind(h);

/** `start`: the asset shown first; `onClose(assetId)` gets the asset shown last.
 * From the asset page, `start` is its metadata and the folder's assets are looked up;
 * from the grid, `list` is the folder's assets as the grid shows them (its order) and
 * `start` one of them, whose metadata is read when it comes up. */
export function Lightbox({ start, list, onClose }) {
  const ref = useRef();
  const frame = useRef(); // what goes fullscreen (a modal <dialog> itself cannot)
  const [items, setItems] = useState(() => list || [{ assetId: start.assetId, repositoryMetadata: start.repositoryMetadata }]);
  const [index, setIndex] = useState(() => (list ? Math.max(0, list.findIndex((a) => a.assetId === start.assetId)) : 0));
  const [shown, setShown] = useState({ meta: start, renditions: null });
  const [scale, setScale] = useState(1);
  const [error, setError] = useState(null); // {for: the asset id it is about (null: the folder), message}
  const current = items[index];

  useEffect(() => {
    ref.current?.showModal();
    const parent = start.repositoryMetadata["repo:parent"];
    if (list || !parent) return;
    api.folderAssets(parent).then(
      (all) => {
        const at = all.findIndex((a) => a.assetId === start.assetId);
        if (at >= 0) {
          setItems(all);
          setIndex(at);
        }
      },
      (err) => setError({ for: null, message: err.message }),
    );
  }, []);

  // The asset shown: its metadata and renditions, read when it comes up.
  useEffect(() => {
    let live = true;
    setScale(1);
    const id = current.assetId;
    Promise.all([id === start.assetId && !list ? Promise.resolve(start) : api.metadata(id), api.renditions(id)]).then(
      ([meta, renditions]) => live && setShown({ meta, renditions }),
      (err) => live && setError({ for: id, message: err.message }),
    );
    return () => {
      live = false;
    };
  }, [current.assetId]);

  const go = (step) => setIndex((i) => Math.min(items.length - 1, Math.max(0, i + step)));
  const close = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    ref.current?.close();
    onClose(current.assetId);
  };
  const fullscreen = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else frame.current?.requestFullscreen?.().catch(() => {});
  };
  const onKey = (e) => {
    if (e.target.closest?.("video, input, textarea, select")) return; // their own keys
    const keys = {
      ArrowLeft: () => go(-1),
      ArrowRight: () => go(1),
      "+": () => setScale((s) => clampScale(s * 1.5)),
      "=": () => setScale((s) => clampScale(s * 1.5)),
      "-": () => setScale((s) => clampScale(s / 1.5)),
      0: () => setScale(1),
      f: fullscreen,
    };
    const act = keys[e.key];
    if (act && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      act();
    }
  };

  // Keys are read on the document: a button that becomes disabled (Zoom out at 100%)
  // drops the focus to the body, and fullscreen may hold it elsewhere.
  const keys = useRef();
  keys.current = onKey;
  useEffect(() => {
    const on = (e) => keys.current(e);
    document.addEventListener("keydown", on);
    return () => document.removeEventListener("keydown", on);
  }, []);

  const meta = shown.meta;
  const ready = shown.renditions && meta.assetId === current.assetId;
  const name = current.repositoryMetadata?.["repo:name"] || "";
  return html`<dialog ref=${ref} class="lightbox" aria-label=${"Lightbox: " + name}
      onCancel=${(e) => { e.preventDefault(); close(); }} data-index=${index}>
    <div class="lightbox-frame" ref=${frame}>
    <div class="lightbox-bar">
      <span class="lightbox-name" data-testid="lightbox-name">${name}</span>
      <span class="hint" data-testid="lightbox-position">${index + 1} of ${items.length}</span>
      <span class="spacer"></span>
      <button onClick=${() => setScale((s) => clampScale(s / 1.5))} aria-label="Zoom out" disabled=${scale <= 1}>−</button>
      <span class="zoom-level" data-testid="zoom-level">${Math.round(scale * 100)}%</span>
      <button onClick=${() => setScale((s) => clampScale(s * 1.5))} aria-label="Zoom in" disabled=${scale >= 8}>+</button>
      <button onClick=${() => setScale(1)} aria-label="Fit to the screen">Fit</button>
      <button onClick=${fullscreen}>Fullscreen</button>
      <button onClick=${close} aria-label="Close" class="primary">✕</button>
    </div>
    <div class="lightbox-body">
      <button class="nav prev" onClick=${() => go(-1)} disabled=${index === 0} aria-label="Previous asset">‹</button>
      <div class="lightbox-media">
        ${error && (error.for === null || error.for === current.assetId) && html`<p class="error" role="alert">${error.message}</p>`}
        ${ready ? html`<${MediaView} key=${meta.assetId} meta=${meta} renditions=${shown.renditions} zoom=${{ scale, setScale }} />`
          : html`<div class="preview placeholder busy">Loading…</div>`}
      </div>
      <button class="nav next" onClick=${() => go(1)} disabled=${index >= items.length - 1} aria-label="Next asset">›</button>
    </div>
    </div>
  </dialog>`;
}
