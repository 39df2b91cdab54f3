// The public APIs, called with the token the person signed in with. The token lives in
// sessionStorage: kept for this tab, gone when it closes, never put in a URL.
const TOKEN = "assetvault.token";
const API_KEY = "assetvault.apiKey";
export const ROOT = "/content/dam";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN);
  },
  get apiKey() {
    // The Author API asks for an X-Api-Key; any non-empty key unless the server lists them.
    return sessionStorage.getItem(API_KEY) || "assetvault-ui";
  },
  signIn(token, apiKey) {
    sessionStorage.setItem(TOKEN, token);
    if (apiKey) sessionStorage.setItem(API_KEY, apiKey);
    else sessionStorage.removeItem(API_KEY);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(API_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let body = null;
  try {
    body = await response.json();
    // problem+json (Author API) or a Siren core/response (classic API, uploads).
    message = body.detail || body.properties?.["status.message"] || message;
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(response.status, message, body);
}

// The requests on their way (until their answer's status is in), by URL: a page that is
// about to delete an asset lets its reads of that asset be answered first (settled).
const inflight = new Map(); // promise -> url

/** Resolves once no request whose URL passes `test` is on its way (those that start
 * meanwhile included). */
export async function settled(test) {
  for (;;) {
    const pending = [...inflight].filter(([, url]) => test(url)).map(([p]) => p);
    if (!pending.length) return;
    await Promise.allSettled(pending);
  }
}

export async function call(method, url, { headers = {}, body, token, signal } = {}) {
  // A read of an asset this tab is deleting or has deleted could only answer 404: it is
  // not sent (deleteAsset). The caller meets the 404 it would have met.
  if (method === "GET" && goneHere(url)) throw new ApiError(404, "This asset was deleted.", null);
  const sent = fetch(url, {
    method,
    body,
    signal,
    headers: {
      Authorization: `Bearer ${token || session.token}`,
      "X-Api-Key": session.apiKey,
      ...headers,
    },
  });
  inflight.set(sent, url);
  let response;
  try {
    response = await sent;
  } finally {
    inflight.delete(sent);
  }
  if (response.status === 401 && !token) {
    // The tab's token was revoked or the server forgot it: back to the sign-in page.
    dispatchEvent(new CustomEvent("assetvault:unauthorized"));
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export const json = async (method, url, options) => (await call(method, url, options)).json();

// -- paths ------------------------------------------------------------------------------

export const enc = (path) => path.split("/").map(encodeURIComponent).join("/");
export const parentOf = (path) => path.slice(0, path.lastIndexOf("/")) || ROOT;
export const nameOf = (path) => path.slice(path.lastIndexOf("/") + 1);
/** /content/dam/a/b -> /api/assets/a/b */
export const classicPath = (path) => "/api/assets" + enc(path.slice(ROOT.length));

// -- classic API: folders, comments, copy/move/delete -------------------------------------

export async function listFolder(path, offset = 0, limit = 1000) {
  return json("GET", `${classicPath(path)}.json?offset=${offset}&limit=${limit}`);
}

/** Every child name of a folder (assets and subfolders), page after page. */
export async function childNames(path) {
  const names = new Set();
  for (let offset = 0; ; ) {
    const page = await listFolder(path, offset);
    const entities = page.entities || [];
    for (const e of entities) names.add(e.properties.name);
    offset += entities.length;
    const total = page.properties?.["srn:paging"]?.total ?? 0;
    if (!entities.length || offset >= total) return names;
  }
}

export async function classicAsset(path) {
  return json("GET", `${classicPath(path)}.json`);
}

export async function createFolder(parent, name) {
  const body = JSON.stringify({ class: "assetFolder", properties: { title: name } });
  return call("POST", classicPath(`${parent}/${name}`), {
    headers: { "Content-Type": "application/json" },
    body,
  });
}

/** COPY or MOVE a node to the full destination path; overwrite only when asked. */
export async function copyOrMove(method, path, destination, overwrite = false) {
  return call(method, classicPath(path), {
    headers: {
      "X-Destination": classicPath(destination),
      "X-Depth": "infinity",
      "X-Overwrite": overwrite ? "T" : "F",
    },
  });
}

export const remove = (path) => call("DELETE", classicPath(path));

// The assets this tab is deleting (id -> path), and those it deleted (id -> their path
// then), kept for the tab: their page, opened again (Back), says so without asking the
// server, and no read of them is sent (an id never comes back; a path may, so only the
// ids of deleted assets are remembered for that).
const going = new Map();
const DELETED = "assetvault.deleted";
const DELETED_KEPT = 500;
let deleted = null;
const deletedHere = () => (deleted ??= JSON.parse(sessionStorage.getItem(DELETED) || "{}"));

/** Is `url` about the asset `assetId` at `path` (the Author API's routes of its id, or the
 * classic API's of its path)? */
function about(url, assetId, path) {
  const own = [`${A}/${id(assetId)}`, path ? classicPath(path) : null];
  return own.some((p) => p && (url === p || ["/", ".", "?"].some((c) => url.startsWith(p + c))));
}

function goneHere(url) {
  for (const [assetId, path] of going) if (about(url, assetId, path)) return true;
  const m = /^\/adobe\/assets\/([^/?]+)/.exec(url);
  return !!m && Object.hasOwn(deletedHere(), decodeURIComponent(m[1]));
}

/** Deletes the asset `assetId` at `path`. From the start no read of it is sent, and the
 * reads on their way are answered before the DELETE goes: one that reached the server
 * after it would answer 404. The tab remembers the asset as deleted. */
export async function deleteAsset(assetId, path) {
  going.set(assetId, path);
  try {
    await settled((url) => about(url, assetId, path));
    await remove(path);
    const kept = Object.entries({ ...deletedHere(), [assetId]: path }).slice(-DELETED_KEPT);
    deleted = Object.fromEntries(kept);
    sessionStorage.setItem(DELETED, JSON.stringify(deleted));
  } finally {
    going.delete(assetId);
  }
}

/** The path an asset had when this tab deleted it, or null. */
export const deletedPath = (assetId) => (Object.hasOwn(deletedHere(), assetId) ? deletedHere()[assetId] : null);

export async function addComment(path, message) {
  return call("POST", `${classicPath(path)}/comments/*`, {
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ message }),
  });
}

// -- Author API: metadata, renditions, relations, search ---------------------------------

const A = "/adobe/assets";
const id = (assetId) => encodeURIComponent(assetId);

export async function metadata(assetId) {
  const response = await call("GET", `${A}/${id(assetId)}/metadata`);
  return { etag: response.headers.get("ETag"), ...(await response.json()) };
}

/** JSON Patch with If-Match: a stale ETag is a 412 and nothing is written. */
export async function patchMetadata(assetId, etag, ops) {
  const response = await call("PATCH", `${A}/${id(assetId)}/metadata`, {
    headers: { "Content-Type": "application/json-patch+json", "If-Match": etag },
    body: JSON.stringify(ops),
  });
  return { etag: response.headers.get("ETag"), ...(await response.json()) };
}

export const renditions = (assetId) => json("GET", `${A}/${id(assetId)}/renditions`);
export const relations = (assetId) => json("GET", `${A}/${id(assetId)}/relations`);
/** Assetvault's extension: kept versions, oldest first, then the current original. */
export const versions = (assetId) => json("GET", `${A}/${id(assetId)}/versions`);

export function renditionUrl(assetId, name, seoName) {
  return `${A}/${id(assetId)}/renditions/${encodeURIComponent(name)}/as/${encodeURIComponent(seoName)}`;
}

export async function blobUrl(url, headers = {}) {
  const response = await call("GET", url, { headers });
  return URL.createObjectURL(await response.blob());
}

export const webRenditionUrl = (assetId) =>
  blobUrl(`${A}/${id(assetId)}`, { Accept: "image/webp, image/jpeg;q=0.9" });

export async function search(body) {
  return json("POST", `${A}/search?allowUnsafeSearch=true`, {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The URN of a folder, learnt from one of its assets' repo:parent (no API lists it). */
export async function folderUrn(assetPath) {
  const found = await search({
    query: [{ term: { "repositoryMetadata.repo:path": [assetPath] } }],
    limit: 1,
    projectedFields: { includes: ["repositoryMetadata.repo:parent"] },
  });
  return found.hits.results[0]?.repositoryMetadata?.["repo:parent"] || null;
}

/** Save a blob: URL or a media URL under a file name, as a download. */
export function saveAs(url, fileName) {
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  if (url.startsWith("blob:")) setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** POST /media-urls (an Assetvault extension): a URL of one binary (`path`, as
 * renditionUrl, originalUrl or versionUrl make it) that opens it without the token, read
 * only, for a few minutes. For what loads by URL and cannot send the token: a <video>
 * (which seeks with byte ranges), a download by the browser itself (nothing held in the
 * tab). The token never goes into it. */
export async function mediaUrl(path) {
  const made = await json("POST", "/media-urls", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path }),
  });
  return made.url;
}

/** Download a binary by the browser itself, through a media URL: the bytes go from the
 * server to the disk, never through the tab's memory. */
export async function download(path, fileName) {
  saveAs(await mediaUrl(path), fileName);
}

// -- bulk actions: each item through the public APIs, one call each --------------------

/** Publish or unpublish one asset (AEM's call takes up to 10; one each, so each fails alone). */
export async function setPublished(assetId, publish) {
  return call("POST", `${A}/${publish ? "publish" : "unpublish"}`, {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ assets: [assetId] }),
  });
}

/** Set one assetMetadata field on an asset: its current ETag, then a JSON Patch add. */
export async function setField(assetId, key, value) {
  const { etag } = await metadata(assetId);
  const path = `/assetMetadata/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
  return patchMetadata(assetId, etag, [{ op: "add", path, value }]);
}

/** Assets and folders as one ZIP, streamed by the server (an Assetvault extension),
 * downloaded by the browser itself from a media URL whose grant carries the paths, so
 * the tab never holds it. A selection whose paths do not fit in a URL (413) is POSTed
 * to /adobe/assets/archive instead and passes through a blob: URL. */
export async function downloadArchive(paths, fileName) {
  try {
    const made = await json("POST", "/media-urls", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ archive: paths, fileName }),
    });
    return saveAs(made.url, fileName);
  } catch (err) {
    if (err.status !== 413) throw err;
  }
  const response = await call("POST", `${A}/archive`, {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ paths }),
  });
  saveAs(URL.createObjectURL(await response.blob()), fileName);
}

/** The subfolders of a folder (for the folder picker), every page. */
export async function subfolders(path) {
  const found = [];
  for (let offset = 0; ; ) {
    const page = await listFolder(path, offset);
    const entities = page.entities || [];
    for (const e of entities) if (e.class.includes("assets/folder")) found.push({ name: e.properties.name, title: e.properties["dc:title"] || e.properties.name });
    offset += entities.length;
    const total = page.properties?.["srn:paging"]?.total ?? 0;
    if (!entities.length || offset >= total) return found;
  }
}

// -- previews and versions (lightbox, asset page) ----------------------------------------

export const originalUrl = (assetId, seoName) =>
  `${A}/${id(assetId)}/original/as/${encodeURIComponent(seoName)}`;
/** Assetvault's extension: the binary of a kept version ("1.0", ...), with ranges. */
export const versionUrl = (assetId, name, seoName) =>
  `${A}/${id(assetId)}/versions/${encodeURIComponent(name)}/as/${encodeURIComponent(seoName)}`;

/** Assetvault's extension: the version becomes the current original; the current one is
 * kept as a new version. If-Match: the ETag the page holds. Answers the new version list. */
export async function restoreVersion(assetId, name, etag) {
  return json("POST", `${A}/${id(assetId)}/versions/${encodeURIComponent(name)}/restore`, {
    headers: etag ? { "If-Match": etag } : {},
  });
}

/** At most `cap` bytes of a binary, as text: {text, size, cut}. Only the first bytes are
 * asked for (Range), so a large file costs no more than the cap. Shown as text, never as
 * HTML: the caller puts it in a text node. */
export async function textStart(url, cap) {
  const response = await call("GET", url, { headers: { Range: `bytes=0-${cap - 1}` } });
  const range = response.headers.get("Content-Range"); // "bytes 0-99/1234" on a 206
  const buffer = await response.arrayBuffer();
  const bytes = new Uint8Array(buffer.slice(0, cap)); // a server that ignored Range
  const size = range ? Number(range.split("/")[1]) : Number(response.headers.get("Content-Length") || bytes.length);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes, { stream: bytes.length < size });
  return { text, size, cut: bytes.length < size };
}

/** The assets of a folder (by its URN), sorted by name, up to `most`, for previous/next. */
export async function folderAssets(parentUrn, most = 1000) {
  const items = [];
  let cursor = null;
  do {
    const found = await search({
      query: [{ term: { "repositoryMetadata.repo:parent": [parentUrn] } }],
      sort: [{ field: "repositoryMetadata.repo:name", order: "ASC" }],
      limit: 50, // the search API's most
      ...(cursor ? { cursor } : {}),
    });
    items.push(...found.hits.results);
    cursor = found.cursor || null;
  } while (cursor && items.length < most);
  return items;
}
