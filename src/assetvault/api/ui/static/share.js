// Share links in the web UI: a "Share" button (asset page and folder toolbar) that makes a
// read-only link, and the "Share links" page (#/shares) that lists and revokes them.
// The API is Assetvault's own /share-links (docs/ui.md, "Share links").
import { h } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";
import * as api from "./api.js";
import { SCROLLS } from "./app.js";

const html = htm.bind(h);
const DAY = 24 * 3600;
const LIFETIMES = [
  { seconds: DAY, label: "1 day" },
  { seconds: 7 * DAY, label: "7 days" },
  { seconds: 30 * DAY, label: "30 days" },
];

export const createLink = (target, expiresIn) =>
  api.json("POST", "/share-links", {
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ target, expiresIn }),
  });
export const listLinks = () => api.json("GET", "/share-links");
export const revokeLink = (id) => api.call("DELETE", `/share-links/${encodeURIComponent(id)}`);

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");

/** The Share button and its dialog: pick a lifetime, make the link, copy it. The link's
 * secret is shown this once; the server keeps only its digest. */
export function ShareButton({ target, kind }) {
  const ref = useRef();
  const [made, setMade] = useState(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [copied, setCopied] = useState(false);
  const open = () => {
    setMade(null);
    setError("");
    setCopied(false);
    ref.current.showModal();
  };
  const create = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const seconds = Number(new FormData(e.target).get("lifetime"));
      setMade(await createLink(target, seconds));
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made.url);
      setCopied(true);
    } catch {
      // No clipboard (an insecure origin): the field is selected for a manual copy.
      ref.current.querySelector("input[readonly]")?.select();
    }
  };
  return html`<button onClick=${open}>Share</button>
    <dialog ref=${ref} class="dialog share-dialog" aria-labelledby="share-h">
      <form onSubmit=${create}>
        <h2 id="share-h">Share this ${kind}</h2>
        <p class="hint">Anyone with the link can view and download ${kind === "folder" ? "the assets in this folder and below it" : "this asset"} without signing in, until it expires or is revoked. Nothing can be changed through it.</p>
        ${made
          ? html`<label>Link (shown only now: copy it)
                <input readonly value=${made.url} data-testid="share-url" onFocus=${(e) => e.target.select()} />
              </label>
              <p class="hint">Expires ${when(made.expiresAt)}. Revoke it on the <a href="#/shares" onClick=${() => ref.current.close()}>Share links</a> page.</p>
              <p role="status" class="hint">${copied ? "Copied to the clipboard." : ""}</p>
              <div class="row end">
                <button type="button" onClick=${copy}>Copy link</button>
                <button type="button" class="primary" onClick=${() => ref.current.close()}>Done</button>
              </div>`
          : html`<label>Expires after
                <select name="lifetime">
                  ${LIFETIMES.map((l) => html`<option value=${l.seconds} selected=${l.seconds === 7 * DAY}>${l.label}</option>`)}
                </select>
              </label>
              ${error && html`<p class="error" role="alert">${error}</p>`}
              <div class="row end">
                <button type="button" onClick=${() => ref.current.close()}>Cancel</button>
                <button type="submit" class="primary" disabled=${busy}>Create link</button>
              </div>`}
      </form>
    </dialog>`;
}

/** #/shares: the signed-in token's links (an admin's: everyone's), with Revoke. */
export function SharesPage({ browseHref, ask }) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("");
  const load = async () => {
    try {
      setItems((await listLinks()).items);
    } catch (err) {
      setError(err.message);
    }
  };
  useEffect(() => {
    document.title = "Share links · Assetvault";
    load();
  }, []);
  const revoke = async (link) => {
    const sure = await ask({
      title: "Revoke this share link?",
      message: `The link to ${link.path || "a deleted item"} stops working at once.`,
      confirm: "Revoke",
      danger: true,
    });
    if (!sure) return;
    try {
      await revokeLink(link.id);
      setStatus(`Revoked the link to ${link.path || "a deleted item"}.`);
      await load();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<main class="shares">
    <h1>Share links</h1>
    <p class="hint">Read-only links made with Share on a folder or an asset. A link's address is shown only when it is made.</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p role="status" class="hint">${status}</p>
    ${items === null
      ? html`<p class="loading">Loading…</p>`
      : items.length === 0
        ? html`<p class="empty">No share links yet.</p>`
        : html`<div class="table-wrap" ...${SCROLLS} aria-label="Share links table"><table class="share-links">
            <thead><tr><th scope="col">Shared</th><th scope="col">Created by</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              ${items.map((l) => html`<tr key=${l.id} data-testid="share-row">
                <td>${l.path ? html`<a href=${browseHref(l)}>${l.path}</a>` : html`<span class="hint">(deleted)</span>`} <span class="hint">${l.kind || ""}</span></td>
                <td>${l.createdBy}</td>
                <td>${when(l.createdAt)}</td>
                <td>${when(l.expiresAt)}</td>
                <td><span class=${"badge share-" + l.state}>${l.state}</span></td>
                <td>${l.state === "active" && html`<button class="danger" onClick=${() => revoke(l)} aria-label=${`Revoke the link to ${l.path || "a deleted item"}`}>Revoke</button>`}</td>
              </tr>`)}
            </tbody>
          </table></div>`}
  </main>`;
}
