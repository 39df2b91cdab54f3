// Saving metadata fields when someone else may have changed the asset meanwhile. The
// PATCH carries the ETag the form was loaded with, so a change made elsewhere makes it a
// 412 and nothing is written. Then: re-read the asset; if nobody else changed the fields
// this form changed, apply them again on the current version, once; if somebody did (or
// the asset changed again before the retry), it is a conflict for the person to decide.
import * as api from "./api.js";

/** Values compared as JSON, with object keys in order. */
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v === undefined ? null : v);
}
export const same = (a, b) => canonical(a) === canonical(b);

const pointer = (key) => `/assetMetadata/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;

/** JSON Patch setting each changed field on `target` (undefined: remove it if it is there). */
function patchOps(changes, target) {
  const ops = [];
  for (const [key, value] of Object.entries(changes)) {
    if (value !== undefined) ops.push({ op: "add", path: pointer(key), value });
    else if (key in (target.assetMetadata || {})) ops.push({ op: "remove", path: pointer(key) });
  }
  return ops;
}

/**
 * Saves `changes` ({field: new value}, undefined removes the field), made in a form loaded
 * from `base` (the metadata with its ETag). Resolves to one of
 *   {saved: metadata, merged: bool}  the changes are on the server; `merged` when they
 *                                    were applied again on top of someone else's change
 *   {conflict: {keys, current}}      someone else changed one of these fields (keys), or
 *                                    the asset changed again before the retry: nothing
 *                                    was written; `current` is the asset as it is now
 * Any other failure is thrown.
 */
export async function saveFields(base, changes) {
  const id = base.assetId;
  if (!patchOps(changes, base).length) return { saved: base, merged: false }; // nothing to do
  try {
    return { saved: await api.patchMetadata(id, base.etag, patchOps(changes, base)), merged: false };
  } catch (err) {
    if (err.status !== 412) throw err;
  }
  let current = await api.metadata(id);
  const keys = Object.keys(changes);
  const was = (m, k) => m.assetMetadata?.[k];
  // Changed elsewhere, and not to what this form wants: the person decides.
  const clashes = keys.filter((k) => !same(was(current, k), was(base, k)) && !same(was(current, k), changes[k]));
  if (clashes.length) return { conflict: { keys: clashes, current } };
  const left = Object.fromEntries(keys.filter((k) => !same(was(current, k), changes[k])).map((k) => [k, changes[k]]));
  if (!Object.keys(left).length) return { saved: current, merged: true }; // already as wanted
  try {
    return { saved: await api.patchMetadata(id, current.etag, patchOps(left, current)), merged: true };
  } catch (err) {
    if (err.status !== 412) throw err;
  }
  // Changed yet again between the re-read and the retry: no second retry.
  current = await api.metadata(id);
  return { conflict: { keys, current } };
}
