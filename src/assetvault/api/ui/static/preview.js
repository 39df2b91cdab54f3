// What an asset looks like on its page and in the lightbox: the web rendition of an
// image, a video played from its web rendition, a PDF page by page, the start of a text
// file as text. Images are fetched with the token (an <img> cannot send it) and shown
// through a blob: URL; a video plays from a media URL (api.mediaUrl: signed, read only,
// minutes long), which streams and seeks with byte ranges; text goes into a text node,
// never into HTML.
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";

const html = htm.bind(h);

export const VIDEO = "cq5dam.video.fullhd-bp.mp4";
export const THUMB_SMALL = "cq5dam.thumbnail.140.100.png";
const PAGE = /^cq5dam\.page\.(\d+)\.1280\.1280\.jpeg$/;
export const TEXT_CAP = 256 * 1024; // bytes of a text file a preview reads, at most
const TEXT_TYPES = new Set(["application/json", "application/xml", "application/x-ndjson", "application/yaml", "application/x-yaml"]);

export const isText = (mime) => !!mime && (mime.startsWith("text/") || TEXT_TYPES.has(mime) || mime.endsWith("+json"));

/** What kind of preview an asset gets, from its type and the renditions it has. */
export function previewKind(meta, renditions) {
  const names = new Set((renditions?.items || []).map((r) => r.name));
  const mime = meta.repositoryMetadata?.["dc:format"] || "";
  if (names.has(VIDEO)) return "video";
  if (mime === "application/pdf" && names.has("cq5dam.web.1280.1280.jpeg")) return "pdf";
  if (isText(mime)) return "text";
  if ([...names].some((n) => n.startsWith("cq5dam.web."))) return "image";
  return "none";
}

/** A blob: URL of `url` (fetched with the token), revoked when the component goes. */
export function useBlobUrl(url, headers) {
  // Each state names the URL it answers: in the render that follows a change of `url`, before
  // the effect runs, the previous URL's image must not show under the new one's caption.
  const [state, setState] = useState({ for: null, url: null, error: null });
  useEffect(() => {
    if (!url) return setState({ for: url, url: null, error: null });
    let made = null;
    let live = true;
    setState({ for: url, url: null, error: null });
    api.call("GET", url, { headers }).then(
      async (r) => {
        made = URL.createObjectURL(await r.blob());
        if (live) setState({ for: url, url: made, error: null });
        else URL.revokeObjectURL(made);
      },
      (error) => live && setState({ for: url, url: null, error }),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [url]);
  return state.for === url ? state : { url: null, error: null };
}

const WEB = { Accept: "image/webp, image/jpeg;q=0.9" };

/** The image of an asset's web rendition (or of a PDF page), zoomable when `zoom` is given. */
function Still({ url, headers, alt, zoom }) {
  const { url: src, error } = useBlobUrl(url, headers);
  if (error) return html`<div class="preview placeholder">The preview could not be loaded: ${error.message}</div>`;
  if (!src) return html`<div class="preview placeholder busy">Loading…</div>`;
  return zoom ? html`<${Zoomable} src=${src} alt=${alt} zoom=${zoom} />` : html`<img class="preview" src=${src} alt=${alt} />`;
}

/** An image that zooms about a point (wheel, pinch, buttons, keys) and pans when zoomed. */
function Zoomable({ src, alt, zoom }) {
  const { scale, setScale } = zoom;
  const [at, setAt] = useState({ x: 0, y: 0 });
  const pointers = useRef(new Map());
  const pinch = useRef(null);
  useEffect(() => setAt({ x: 0, y: 0 }), [src]);
  useEffect(() => {
    if (scale === 1) setAt({ x: 0, y: 0 });
  }, [scale]);
  const onWheel = (e) => {
    e.preventDefault();
    setScale((s) => clampScale(s * (e.deltaY < 0 ? 1.2 : 1 / 1.2)));
  };
  const down = (e) => {
    try {
      e.currentTarget.setPointerCapture(e.pointerId); // keep the drag when it leaves the image
    } catch {
      /* a pointer the browser no longer tracks: nothing to capture */
    }
    pointers.current.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.current.size === 2) pinch.current = { d: spread(pointers.current), s: scale };
  };
  const move = (e) => {
    const last = pointers.current.get(e.pointerId);
    if (!last) return;
    pointers.current.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.current.size === 2 && pinch.current) {
      setScale(clampScale((pinch.current.s * spread(pointers.current)) / pinch.current.d));
    } else if (scale > 1) {
      setAt((a) => ({ x: a.x + e.clientX - last.x, y: a.y + e.clientY - last.y }));
    }
  };
  const up = (e) => {
    pointers.current.delete(e.pointerId);
    if (pointers.current.size < 2) pinch.current = null;
  };
  return html`<div class="zoom-stage" onWheel=${onWheel} onPointerDown=${down} onPointerMove=${move}
      onPointerUp=${up} onPointerCancel=${up} data-scale=${scale.toFixed(2)}>
    <img class="preview zoomed" src=${src} alt=${alt} draggable="false"
      style=${{ transform: `translate(${at.x}px, ${at.y}px) scale(${scale})` }} />
  </div>`;
}

const spread = (m) => {
  const [a, b] = [...m.values()];
  return Math.hypot(a.x - b.x, a.y - b.y) || 1;
};
export const clampScale = (s) => Math.min(8, Math.max(1, s));

/** A video from its web rendition: the poster first, the video when asked for. The
 * <video> loads it by a media URL (it cannot send the token), so it streams and seeks
 * with byte ranges instead of holding the whole file in the tab. A media URL lasts
 * minutes: when a long video asks for more after that and is refused, a fresh URL goes
 * on from where it stopped. */
function Video({ meta, poster }) {
  const [want, setWant] = useState(false);
  const [src, setSrc] = useState(null);
  const [error, setError] = useState(null);
  const ref = useRef();
  const resume = useRef(null); // where to go on with a fresh URL
  const renewed = useRef(0);
  const id = meta.assetId;
  const mint = () => api.mediaUrl(api.renditionUrl(id, VIDEO, "video.mp4")).then(setSrc, setError);
  useEffect(() => {
    if (want) mint();
  }, [want]); // one asset's: MediaView keys Video by the asset
  useEffect(() => {
    if (src && ref.current && resume.current === null) ref.current.play().catch(() => {}); // the click was the gesture
  }, [src]);
  const onError = () => {
    const v = ref.current;
    if (!v || renewed.current >= 3) return setError(new Error(`the video could not be played (${v?.error?.message || "no answer"})`));
    renewed.current += 1;
    resume.current = { at: v.currentTime, playing: !v.paused };
    mint();
  };
  const onLoaded = () => {
    const v = ref.current;
    const at = resume.current;
    if (!v || !at) return;
    resume.current = null;
    v.currentTime = at.at;
    if (at.playing) v.play().catch(() => {});
  };
  if (error) return html`<div class="preview placeholder">The video could not be loaded: ${error.message}</div>`;
  if (src) return html`<video ref=${ref} class="preview" controls playsinline src=${src} poster=${poster || null}
    data-testid="video" onError=${onError} onLoadedMetadata=${onLoaded}></video>`;
  return html`<div class="video-poster">
    ${poster ? html`<img class="preview" src=${poster} alt=${"Poster frame of " + meta.repositoryMetadata["repo:name"]} />` : html`<div class="preview placeholder">Video</div>`}
    <button class="primary play" onClick=${() => setWant(true)} disabled=${want}>${want ? "Loading the video…" : "▶ Play video"}</button>
  </div>`;
}

/** A PDF page by page: page 1 is the web rendition, pages 2 to 20 have their own. */
function Pages({ meta, renditions, zoom }) {
  const pages = [null];
  for (const r of renditions.items) {
    const m = PAGE.exec(r.name);
    if (m) pages[Number(m[1]) - 1] = r.name;
  }
  const count = pages.filter((p, i) => i === 0 || p).length;
  const total = Number(meta.assetMetadata?.["xmpTPg:NPages"]) || count;
  const [page, setPage] = useState(0); // one asset's: MediaView keys Pages by the asset
  const id = meta.assetId;
  const url = page === 0 ? `/adobe/assets/${encodeURIComponent(id)}` : api.renditionUrl(id, pages[page], `page-${page + 1}.jpeg`);
  return html`<div class="pages">
    <${Still} url=${url} headers=${page === 0 ? WEB : undefined} alt=${`Page ${page + 1} of ${meta.repositoryMetadata["repo:name"]}`} zoom=${zoom} />
    <div class="row pager" role="group" aria-label="Pages">
      <button onClick=${() => setPage((p) => p - 1)} disabled=${page === 0}>Previous page</button>
      <span data-testid="page-number">Page ${page + 1} of ${total}</span>
      <button onClick=${() => setPage((p) => p + 1)} disabled=${page >= count - 1}>Next page</button>
    </div>
    ${total > count && html`<p class="hint">Pages after ${count} have no preview; download the original to read them.</p>`}
  </div>`;
}

/** The start of a text file, as text (a <pre>'s text node: markup in it is never run). */
export function TextPreview({ url, mime }) {
  // The answer names the URL it is for (as useBlobUrl's): in the render after `url`
  // changes, the last file's text is never shown as this one's.
  const [got, setGot] = useState({ for: null });
  useEffect(() => {
    let live = true;
    api.textStart(url, TEXT_CAP).then(
      (text) => live && setGot({ for: url, ...text }),
      (error) => live && setGot({ for: url, error }),
    );
    return () => {
      live = false;
    };
  }, [url]);
  const state = got.for === url ? got : null;
  if (!state) return html`<div class="preview placeholder busy">Loading…</div>`;
  if (state.error) return html`<div class="preview placeholder">The text could not be loaded: ${state.error.message}</div>`;
  let text = state.text;
  if (!state.cut && (mime === "application/json" || mime?.endsWith("+json"))) {
    try {
      text = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      /* not valid JSON: shown as it is */
    }
  }
  return html`<div class="text-preview-wrap">
    <pre class="text-preview" data-testid="text-preview" tabindex="0" aria-label="Text preview">${text}</pre>
    ${state.cut && html`<p class="hint">Showing the first ${Math.round(TEXT_CAP / 1024)} KB of ${formatBytes(state.size)}. Download the original for the rest.</p>`}
  </div>`;
}

const formatBytes = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`);

/** The preview of an asset of any kind; `zoom` ({scale, setScale}) makes stills zoomable. */
export function MediaView({ meta, renditions, zoom }) {
  const kind = previewKind(meta, renditions);
  const id = meta.assetId;
  const name = meta.repositoryMetadata["repo:name"];
  const poster = useBlobUrl(kind === "video" ? `/adobe/assets/${encodeURIComponent(id)}` : null, WEB).url;
  // Each keyed by the asset: what one shows (a page number, a playing video) never
  // carries over to the next asset shown in its place.
  if (kind === "video") return html`<${Video} key=${id} meta=${meta} poster=${poster} />`;
  if (kind === "pdf") return html`<${Pages} key=${id} meta=${meta} renditions=${renditions} zoom=${zoom} />`;
  if (kind === "text") return html`<${TextPreview} key=${id} url=${api.originalUrl(id, name)} mime=${meta.repositoryMetadata["dc:format"]} />`;
  if (kind === "image") return html`<${Still} key=${id} url=${`/adobe/assets/${encodeURIComponent(id)}`} headers=${WEB} alt=${"Preview of " + name} zoom=${zoom} />`;
  return html`<div class="preview placeholder">No preview for this type. Download the original to open it.</div>`;
}

/** The asset page's preview, with a button that opens the lightbox. */
export function AssetPreview({ meta, renditions, onOpen }) {
  const state = meta.repositoryMetadata["aem:assetState"];
  const sha1 = meta.repositoryMetadata["dam:sha1"];
  if (state === "processing" || state === "new") {
    return html`<div class="preview placeholder busy">Processing… the preview appears when it is done.</div>`;
  }
  if (!renditions) return html`<div class="preview placeholder busy">Loading…</div>`;
  const kind = previewKind(meta, renditions);
  if (kind === "none") {
    return html`<div class="preview placeholder">No web preview for this asset${state === "failed" ? " (processing failed)" : ""}.</div>`;
  }
  return html`<div class="asset-preview" key=${sha1}>
    <${MediaView} meta=${meta} renditions=${renditions} />
    <div class="row"><button onClick=${onOpen}>Open in the lightbox</button></div>
  </div>`;
}

/** A small thumbnail of any asset by id (for relations), or a placeholder. */
export function SmallThumb({ assetId, has }) {
  const { url } = useBlobUrl(has ? api.renditionUrl(assetId, THUMB_SMALL, "thumbnail.png") : null);
  return html`<span class="small-thumb">${url ? html`<img src=${url} alt="" />` : html`<span class="placeholder">—</span>`}</span>`;
}
