// Direct binary upload, as the AEM clients do it: initiate on the folder, PUT each part
// to its upload URI (signed, so no Authorization header), then complete.
import { ApiError, call, enc } from "./api.js";

const PART_TRIES = 4;
export const FILES_IN_FLIGHT = 3;

/** Splits a file over its upload URIs as @adobe/aem-upload does: equal parts of at least
 * minPartSize, using as many URIs as that needs. */
export function planParts(size, uris, minPartSize, maxPartSize) {
  if (size === 0) return [{ uri: uris[0], start: 0, end: 0 }];
  let partSize = Math.max(minPartSize, Math.ceil(size / uris.length));
  partSize = Math.min(partSize, maxPartSize);
  const parts = [];
  for (let start = 0, i = 0; start < size; start += partSize, i++) {
    if (i >= uris.length) throw new Error("the server gave too few upload URIs for this file");
    parts.push({ uri: uris[i], start, end: Math.min(size, start + partSize) });
  }
  return parts;
}

function putPart(uri, blob, onProgress, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const xhr = new XMLHttpRequest();
    const abort = () => xhr.abort();
    signal?.addEventListener("abort", abort, { once: true });
    xhr.open("PUT", uri);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      signal?.removeEventListener("abort", abort);
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new ApiError(xhr.status, `part refused: ${xhr.status} ${xhr.responseText}`));
    };
    xhr.onerror = () => reject(new ApiError(0, "the connection failed while sending a part"));
    xhr.onabort = () => reject(signal?.reason || new DOMException("cancelled", "AbortError"));
    xhr.send(blob);
  });
}

async function sendPart(part, file, onProgress, onRetry, signal) {
  for (let attempt = 1; ; attempt++) {
    try {
      await putPart(part.uri, file.slice(part.start, part.end), onProgress, signal);
      return;
    } catch (err) {
      // A part that the server refused for what it is (too large, a bad token) will not
      // succeed again; a lost connection or a server error may. A cancel stops at once.
      const retryable = !signal?.aborted && (err.status === 0 || err.status >= 500);
      if (!retryable || attempt >= PART_TRIES) throw err;
      onProgress(0);
      onRetry(attempt);
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

/** AEM's "keep both": the name with the first number that makes it free, before the
 * extension (photo.jpg -> photo1.jpg, photo2.jpg, ...). */
export function freeName(name, taken) {
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  for (let n = 1; ; n++) {
    const candidate = `${stem}${n}${ext}`;
    if (!taken.has(candidate)) return candidate;
  }
}

const form = (fields) => ({
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields),
});

/**
 * Uploads one file into a folder under `name`: its own initiate (so a refused name fails
 * this file only), its parts, and a complete that always asks for a version. On a name
 * that is free, createVersion changes nothing; on a name that someone took meanwhile,
 * it keeps their original as a version instead of overwriting it. `report({sent, state,
 * message})` follows the file; `signal` cancels it until its parts are all sent (a
 * complete once sent may take effect, so it is not cancelled). Resolves to the
 * complete's answer.
 */
export async function uploadFile(folderPath, file, name, report, signal) {
  report({ sent: 0, state: "uploading", message: "" });
  const initiated = await (
    await call("POST", `${enc(folderPath)}.initiateUpload.json`, {
      ...form([["fileName", name], ["fileSize", String(file.size)]]),
      signal,
    })
  ).json();
  const entry = initiated.files[0];
  const parts = planParts(file.size, entry.uploadURIs, entry.minPartSize, entry.maxPartSize);
  let done = 0;
  for (const part of parts) {
    await sendPart(
      part,
      file,
      (loaded) => report({ sent: done + loaded, state: "uploading" }),
      (attempt) => report({ sent: done, state: "retrying", message: `part retried (${attempt})` }),
      signal,
    );
    done += part.end - part.start;
    report({ sent: done, state: "uploading" });
  }
  report({ sent: file.size, state: "completing" });
  const result = await (
    await call("POST", initiated.completeURI, {
      ...form({
        fileName: entry.fileName,
        fileSize: String(file.size),
        mimeType: file.type || entry.mimeType || "application/octet-stream",
        uploadToken: entry.uploadToken,
        createVersion: "true",
      }),
    })
  ).json();
  report({ sent: file.size, state: "done" });
  return result;
}
