// Downloads one binary with the real @adobe/httptransfer client (AEMDownload), as AEM
// users do, and prints a JSON summary on stdout: the errors, and every HTTP exchange the
// client made (method, host, path without query, status, Range sent, Authorization sent).
// Exit status: 0 when the file came down, 1 when it failed, 2 on a crash.
//
//   node download.js <file url> <bearer token> <local file> <size> [block size]
const diagnostics = require('diagnostics_channel');

// httptransfer prints progress with console.log; keep stdout for the summary.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const { AEMDownload } = require('@adobe/httptransfer');

const exchanges = [];
const pending = new Map();
diagnostics.subscribe('http.client.request.start', ({ request }) => {
  const entry = {
    method: request.method,
    host: request.getHeader('host'),
    path: request.path.split('?')[0],
    range: request.getHeader('range') || null,
    authorization: Boolean(request.getHeader('authorization')),
    status: null,
  };
  pending.set(request, entry);
  exchanges.push(entry);
});
diagnostics.subscribe('http.client.response.finish', ({ request, response }) => {
  const entry = pending.get(request);
  if (entry) entry.status = response.statusCode;
});

async function main() {
  const [fileUrl, token, filePath, size, blockSize] = process.argv.slice(2);
  const download = new AEMDownload();
  const errors = [];
  download.on('fileerror', ({ errors: e }) => errors.push(...e.map((x) => String(x.message || x))));
  await download.downloadFiles({
    downloadFiles: [{ fileUrl, fileSize: Number(size), filePath }],
    headers: { authorization: `Bearer ${token}` },
    concurrent: true,
    maxConcurrent: 4,
    ...(blockSize ? { preferredPartSize: Number(blockSize) } : {}),
  });
  process.stdout.write(`${JSON.stringify({ errors, exchanges })}\n`);
  process.exitCode = errors.length ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 2;
});
