// Uploads a local folder to Assetvault with the real @adobe/aem-upload client
// (FileSystemUpload, deep upload), as AEM users do, and prints a JSON summary on stdout.
// Exit status: 0 when every file and folder went up, 1 when any failed, 2 on a crash.
//
//   node upload.js <server url> <bearer token> <local dir> <target folder path> [options JSON]
//
//   target folder path: /content/dam/...; the client creates it (and its parents) itself.
//   options: {"createVersion": true, "versionLabel": "...", "versionComment": "...",
//             "replace": true, "deep": true, "maxConcurrent": 5, "retryCount": 1}
//
// The summary also lists every HTTP exchange the client made (method, host, path without
// query, status), seen through Node's http diagnostics channels, so the caller can check which
// requests went out (e.g. how many part PUTs a large file took) and which answered >= 400.
const diagnostics = require('diagnostics_channel');

// @adobe/httptransfer prints progress with console.log; keep stdout for the summary.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { FileSystemUpload, FileSystemUploadOptions } = require('@adobe/aem-upload');

const exchanges = [];
const pending = new Map();
diagnostics.subscribe('http.client.request.start', ({ request }) => {
  const entry = {
    method: request.method,
    host: request.getHeader('host'),
    path: request.path.split('?')[0],
    status: null,
  };
  pending.set(request, entry);
  exchanges.push(entry);
});
diagnostics.subscribe('http.client.response.finish', ({ request, response }) => {
  const entry = pending.get(request);
  if (entry) entry.status = response.statusCode;
});

// Error objects (UploadError, httptransfer errors) as plain JSON.
function plain(value) {
  return JSON.parse(JSON.stringify(value, (key, v) => {
    if (v instanceof Error) {
      return { name: v.name, message: v.message, code: v.code, ...v };
    }
    return v;
  }));
}

async function main() {
  const [server, token, localDir, target, optionsJson] = process.argv.slice(2);
  if (!server || !token || !localDir || !target) {
    throw new Error('usage: node upload.js <server url> <token> <local dir> <target> [options JSON]');
  }
  const extra = optionsJson ? JSON.parse(optionsJson) : {};
  // Per-file options, with the names UploadFile reads (src/upload-file.js).
  const fileOptions = {};
  for (const key of ['createVersion', 'versionLabel', 'versionComment', 'replace']) {
    if (key in extra) fileOptions[key] = extra[key];
  }
  const options = new FileSystemUploadOptions()
    .withUrl(`${server}${encodeURI(target)}`)
    .withHttpOptions({ headers: { Authorization: `Bearer ${token}` } })
    .withDeepUpload(extra.deep !== false)
    .withHttpRetryCount(extra.retryCount ?? 1)
    .withHttpRetryDelay(100)
    .withMaxConcurrent(extra.maxConcurrent || 5)
    .withUploadFileOptions(fileOptions);

  const upload = new FileSystemUpload();
  const events = {
    fileend: [], fileerror: [], foldercreated: [], foldercreateerror: [],
  };
  upload.on('fileend', (e) => events.fileend.push(e.targetFile));
  upload.on('fileerror', (e) => events.fileerror.push(plain({ file: e.targetFile, errors: e.errors })));
  upload.on('foldercreated', (e) => events.foldercreated.push(e.targetFolder));
  upload.on('foldercreateerror', (e) => events.foldercreateerror.push(plain(e)));

  // upload() resolves with UploadResult.toJSON() (src/upload-result.js).
  const result = await upload.upload(options, [localDir]);
  // FileUploadResults.getErrors() never finds per-file errors (it destructures a key
  // string), so per-file failures are judged by the events and the per-file results.
  const files = result.detailedResult.map((f) => ({
    fileUrl: f.fileUrl,
    fileSize: f.fileSize,
    ok: Boolean(f.result) && f.result.errors === undefined,
    errors: f.result && f.result.errors ? plain(f.result.errors) : undefined,
  }));
  const summary = {
    totalFiles: result.totalFiles,
    completedFiles: result.totalCompleted,
    failedFiles: files.filter((f) => !f.ok).length,
    errors: plain(result.errors),
    // 409 on an existing folder is the client's EALREADYEXISTS, which it accepts.
    createdFolders: result.createdFolders.map((f) => ({
      folderPath: f.folderPath,
      error: f.error ? { code: f.error.code, message: f.error.message } : undefined,
    })),
    files,
    events,
    http: exchanges,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  const failed = summary.errors.length > 0 || summary.failedFiles > 0
    || events.fileerror.length > 0 || events.foldercreateerror.length > 0
    || summary.completedFiles !== summary.totalFiles;
  return failed ? 1 : 0;
}

main().then((code) => {
  process.exitCode = code;
}, (err) => {
  process.stdout.write(`${JSON.stringify({ fatal: plain(err), stack: err && err.stack, http: exchanges })}\n`);
  process.exitCode = 2;
});
