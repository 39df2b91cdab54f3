// Uploads a local folder to Assetvault with the real @adobe/aem-upload client
// (FileSystemUpload, deep), as AEM users do. Writes a JSON summary to <summary file>
// (the client logs to stdout itself) and exits non-zero if any file or folder failed.
//
//   node upload.js <server url> <token> <local dir> <target folder path> <summary file>
//                  [options JSON]
//   options: {"createVersion": true, "versionLabel": "...", "versionComment": "...",
//             "replace": true, "maxConcurrent": 5}
const fs = require('fs');
const { FileSystemUpload, FileSystemUploadOptions } = require('@adobe/aem-upload');

async function main() {
  const [server, token, localDir, target, summaryFile, optionsJson] = process.argv.slice(2);
  const extra = optionsJson ? JSON.parse(optionsJson) : {};
  const fileOptions = {};
  for (const key of ['createVersion', 'versionLabel', 'versionComment', 'replace']) {
    if (key in extra) fileOptions[key] = extra[key];
  }
  const options = new FileSystemUploadOptions()
    .withUrl(`${server}${encodeURI(target)}`)
    .withHttpOptions({ headers: { Authorization: `Bearer ${token}` } })
    .withDeepUpload(true)
    .withHttpRetryCount(1)
    .withMaxConcurrent(extra.maxConcurrent || 5)
    .withUploadFileOptions(fileOptions);

  const upload = new FileSystemUpload();
  const events = { fileerror: [], foldercreateerror: [], filecomplete: 0, foldercreated: 0 };
  upload.on('fileerror', (e) => events.fileerror.push({ file: e.fileName, errors: e.errors }));
  upload.on('foldercreateerror', (e) => events.foldercreateerror.push(e));
  upload.on('filecomplete', () => { events.filecomplete += 1; });
  upload.on('foldercreated', () => { events.foldercreated += 1; });

  const result = await upload.upload(options, [localDir]);
  // upload() resolves with the result's JSON form (upload-result.js toJSON()).
  const summary = {
    totalFiles: result.totalFiles,
    completedFiles: result.totalCompleted,
    errors: result.errors,
    createdFolders: result.createdFolders,
    detailedResult: result.detailedResult,
    events,
  };
  fs.writeFileSync(summaryFile, JSON.stringify(summary, null, 1));
  const failed = summary.errors.length > 0 || events.fileerror.length > 0
    || events.foldercreateerror.length > 0 || summary.completedFiles !== summary.totalFiles;
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  fs.writeFileSync(process.argv[6], JSON.stringify({ fatal: String(err && err.stack ? err.stack : err) }));
  process.exit(2);
});
