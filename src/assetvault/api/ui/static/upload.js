// Direct binary upload, as the AEM clients do it: initiate on the folder, PUT each part
// to its upload URI (signed, so no Authorization header), then complete.
import { ApiError, call, enc } from "./api.js";

const PART_TRIES = 4;
const FILES_IN_FLIGHT = 3;

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

function putPart(uri, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", uri);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new ApiError(xhr.status, `part refused: ${xhr.status} ${xhr.responseText}`));
    xhr.onerror = () => reject(new ApiError(0, "the connection failed while sending a part"));
    xhr.send(blob);
  });
}

async function sendPart(part, file, onProgress, onRetry) {
  for (let attempt = 1; ; attempt++) {
    try {
      await putPart(part.uri, file.slice(part.start, part.end), onProgress);
      return;
    } catch (err) {
      // A part that the server refused for what it is (too large, a bad token) will not
      // succeed again; a lost connection or a server error may.
      const retryable = err.status === 0 || err.status >= 500;
      if (!retryable || attempt >= PART_TRIES) throw err;
      onProgress(0);
      onRetry(attempt);
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

/**
 * Uploads files into a folder. `report(index, {sent, state, message})` is called as each
 * file goes; the promise resolves to one {ok, file, result|error} per file.
 */
export async function uploadFiles(folderPath, files, report) {
  const form = new URLSearchParams();
  for (const f of files) {
    form.append("fileName", f.name);
    form.append("fileSize", String(f.size));
  }
  const initiated = await (
    await call("POST", `${enc(folderPath)}.initiateUpload.json`, {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: form,
    })
  ).json();

  const one = async (index) => {
    const file = files[index];
    const entry = initiated.files[index];
    try {
      const parts = planParts(file.size, entry.uploadURIs, entry.minPartSize, entry.maxPartSize);
      let done = 0;
      report(index, { sent: 0, state: "uploading" });
      for (const part of parts) {
        await sendPart(
          part,
          file,
          (loaded) => report(index, { sent: done + loaded, state: "uploading" }),
          (attempt) => report(index, { sent: done, state: "retrying", message: `part retried (${attempt})` }),
        );
        done += part.end - part.start;
        report(index, { sent: done, state: "uploading" });
      }
      report(index, { sent: file.size, state: "completing" });
      const complete = new URLSearchParams({
        fileName: entry.fileName,
        fileSize: String(file.size),
        mimeType: file.type || entry.mimeType || "application/octet-stream",
        uploadToken: entry.uploadToken,
      });
      const result = await (
        await call("POST", initiated.completeURI, {
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: complete,
        })
      ).json();
      report(index, { sent: file.size, state: "done" });
      return { ok: true, file, result };
    } catch (error) {
      report(index, { state: "failed", message: error.message });
      return { ok: false, file, error };
    }
  };

  const results = new Array(files.length);
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const i = next++;
      results[i] = await one(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_IN_FLIGHT, files.length) }, lane));
  return results;
}
