// The page of a share link (/s/<secret>): what the link shares, read through
// /s/<secret>/info, with thumbnails, a preview and downloads. No token, no framework:
// every name the server sends is put in the page as text, never as markup.
const secret = location.pathname.split("/")[2] || "";
const base = `/s/${encodeURIComponent(secret)}`;
const main = document.getElementById("share");

const enc = (rel) => rel.map(encodeURIComponent).join("/");
const below = (kind, rel) => `${base}/${kind}${rel.length ? "/" + enc(rel) : ""}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function formatSize(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// The path below the shared folder lives in the hash (#/sub/folder), split and decoded.
function currentRel() {
  const raw = location.hash.replace(/^#\/?/, "");
  return raw ? raw.split("/").filter(Boolean).map(decodeURIComponent) : [];
}
const relHash = (rel) => "#/" + enc(rel);

function showError(status, detail) {
  document.title = "Link not available · Assetvault";
  const heading = status === 410 ? "This link no longer works" : status === 404 ? "Not found" : "Something went wrong";
  main.replaceChildren(
    el("h1", {}, heading),
    el("p", { class: "error", role: "alert", "data-testid": "share-error" }, detail),
    el("p", { class: "hint" }, "Ask the person who sent you the link for a new one."),
  );
}

function thumbnail(entry, rel) {
  const box = el("div", { class: "thumb" });
  if (entry.processed) {
    const img = el("img", { src: below("thumbnail", rel), alt: "", loading: "lazy" });
    img.addEventListener("error", () => box.replaceChildren(el("span", { class: "placeholder" }, entry.mimeType || "file")));
    box.append(img);
  } else {
    box.append(el("span", { class: "placeholder" }, entry.mimeType || "file"));
  }
  return box;
}

const download = (rel, name) =>
  el("a", { class: "button primary", href: below("original", rel), download: name }, "Download");

function assetView(info, rel) {
  const item = info.item;
  document.title = `${item.title || item.name} · Shared · Assetvault`;
  const preview = el("div", { class: "preview share-preview" });
  if (item.processed) {
    const img = el("img", { src: below("preview", rel), alt: item.title || item.name, class: "preview" });
    img.addEventListener("error", () => preview.replaceChildren(el("p", { class: "placeholder" }, "No preview for this file.")));
    preview.append(img);
  } else {
    preview.append(el("p", { class: "placeholder" }, "No preview for this file."));
  }
  return [
    el("h1", {}, item.title || item.name),
    preview,
    el("p", { class: "share-facts" }, [item.name, item.mimeType, formatSize(item.size)].filter(Boolean).join(" · ")),
    el("div", { class: "row" }, download(rel, item.name)),
  ];
}

function crumbs(info, rel) {
  const parts = [el("li", {}, rel.length ? el("a", { href: "#/" }, info.name) : el("span", { "aria-current": "page" }, info.name))];
  rel.forEach((name, i) => {
    const last = i === rel.length - 1;
    parts.push(el("li", {}, last ? el("span", { "aria-current": "page" }, name) : el("a", { href: relHash(rel.slice(0, i + 1)) }, name)));
  });
  return el("nav", { class: "crumbs", "aria-label": "Folder" }, el("ol", {}, parts));
}

function folderView(info, rel) {
  document.title = `${rel.length ? rel[rel.length - 1] : info.name} · Shared · Assetvault`;
  const folders = info.children.filter((c) => c.kind === "folder");
  const assets = info.children.filter((c) => c.kind === "asset");
  const out = [crumbs(info, rel), el("h1", {}, rel.length ? rel[rel.length - 1] : info.name)];
  if (folders.length) {
    out.push(el("ul", { class: "folders", "aria-label": "Folders" },
      folders.map((f) => el("li", {}, el("a", { class: "folder", href: relHash([...rel, f.name]) }, `📁 ${f.name}`)))));
  }
  if (!assets.length && !folders.length) out.push(el("p", { class: "empty" }, "This folder is empty."));
  if (assets.length) {
    out.push(el("ul", { class: "grid", "aria-label": "Assets" },
      assets.map((a) => {
        const at = [...rel, a.name];
        return el("li", { "data-testid": "shared-asset" },
          el("div", { class: "card" },
            el("a", { href: relHash(at), class: "card-link", "aria-label": `Open ${a.title || a.name}` }, thumbnail(a, at)),
            el("span", { class: "card-name" }, a.title || a.name),
            el("small", {}, [a.name, formatSize(a.size)].filter(Boolean).join(" · ")),
            download(at, a.name)));
      })));
  }
  if (info.total > info.children.length) {
    out.push(el("p", { class: "hint" }, `Showing the first ${info.children.length} of ${info.total} entries.`));
  }
  return out;
}

let asked = 0; // the last place asked for: an answer about an earlier one is dropped

async function show() {
  const rel = currentRel();
  const mine = ++asked;
  let response;
  try {
    response = await fetch(below("info", rel), { credentials: "omit", referrerPolicy: "no-referrer" });
  } catch {
    return mine === asked && showError(0, "The server could not be reached.");
  }
  if (mine !== asked) return;
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      /* keep the status line */
    }
    return mine === asked && showError(response.status, detail);
  }
  const info = await response.json();
  if (mine !== asked) return;
  const view = info.item.kind === "asset" ? assetView(info, rel) : folderView(info, rel);
  if (info.item.kind === "asset" && info.kind === "folder") {
    view.unshift(crumbs(info, rel));
  }
  view.push(el("p", { class: "hint share-expiry" }, `This link works until ${new Date(info.expiresAt).toLocaleString()}.`));
  main.replaceChildren(...view);
}

addEventListener("hashchange", show);
show();
