// Preloaded (node --require) into a test run of a real client: appends every HTTP
// exchange it makes (method, path without query, status) as a JSON line to the file
// named by EXCHANGES_FILE, seen through Node's http diagnostics channels, so the caller
// can check which requests went out and how they were answered.
const diagnostics = require('diagnostics_channel');
const fs = require('fs');

const out = process.env.EXCHANGES_FILE;
if (out) {
  const pending = new Map();
  diagnostics.subscribe('http.client.request.start', ({ request }) => {
    pending.set(request, { method: request.method, path: request.path.split('?')[0] });
  });
  diagnostics.subscribe('http.client.response.finish', ({ request, response }) => {
    const entry = pending.get(request);
    if (entry) {
      pending.delete(request);
      fs.appendFileSync(out, `${JSON.stringify({ ...entry, status: response.statusCode })}\n`);
    }
  });
}
