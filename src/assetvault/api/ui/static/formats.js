// Formats and statuses as people name them. Search filters on MIME types (dc:format) and
// status values (dam:assetStatus); these tables turn those into words a person reads, and
// the words a person types ("jpeg", "pdf", "video") into MIME types to search for.

// MIME type -> label, and the words that name it. The first word is the usual one.
const FORMATS = [
  ["image/jpeg", "JPEG image", ["jpeg", "jpg", "jpe"]],
  ["image/png", "PNG image", ["png"]],
  ["image/gif", "GIF image", ["gif"]],
  ["image/webp", "WebP image", ["webp"]],
  ["image/tiff", "TIFF image", ["tiff", "tif"]],
  ["image/heic", "HEIC image", ["heic"]],
  ["image/heif", "HEIF image", ["heif"]],
  ["image/avif", "AVIF image", ["avif"]],
  ["image/bmp", "BMP image", ["bmp"]],
  ["image/svg+xml", "SVG image", ["svg"]],
  ["image/vnd.adobe.photoshop", "Photoshop document", ["psd", "photoshop"]],
  ["image/jp2", "JPEG 2000 image", ["jp2"]],
  ["image/jxl", "JPEG XL image", ["jxl"]],
  ["application/pdf", "PDF document", ["pdf"]],
  ["video/mp4", "MP4 video", ["mp4", "m4v"]],
  ["video/quicktime", "QuickTime video", ["mov", "quicktime"]],
  ["video/webm", "WebM video", ["webm"]],
  ["video/x-msvideo", "AVI video", ["avi"]],
  ["audio/mpeg", "MP3 audio", ["mp3"]],
  ["audio/wav", "WAV audio", ["wav"]],
  ["audio/x-wav", "WAV audio", []],
  ["text/plain", "Plain text", ["txt"]],
  ["text/csv", "CSV table", ["csv"]],
  ["application/json", "JSON document", ["json"]],
  ["application/zip", "ZIP archive", ["zip"]],
  ["application/msword", "Word document", ["doc"]],
  ["application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word document", ["docx"]],
  ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel workbook", ["xlsx"]],
  ["application/vnd.openxmlformats-officedocument.presentationml.presentation", "PowerPoint deck", ["pptx"]],
];

// Words that name a whole family: every MIME type that starts with the prefix.
const FAMILIES = {
  image: "image/",
  images: "image/",
  photo: "image/",
  photos: "image/",
  picture: "image/",
  pictures: "image/",
  video: "video/",
  videos: "video/",
  movie: "video/",
  movies: "video/",
  audio: "audio/",
};
const FAMILY_LABELS = { "image/": "any image", "video/": "any video", "audio/": "any audio" };

const LABELS = new Map(FORMATS.map(([mime, label]) => [mime, label]));
const BY_WORD = new Map(FORMATS.flatMap(([mime, , words]) => words.map((w) => [w, mime])));

/** "image/jpeg" -> "JPEG image"; an unknown type reads "X-FOO image" (its subtype). */
export function formatLabel(mime) {
  if (LABELS.has(mime)) return LABELS.get(mime);
  const [type, sub] = String(mime).split("/");
  if (!sub) return String(mime);
  const kind = { image: "image", video: "video", audio: "audio", text: "text" }[type] || "file";
  return `${sub.replace(/\+.*$/, "").toUpperCase()} ${kind}`;
}

/** What a typed word names as a format: {mime} or {family}, or null. Words are folded
 * as the server folds them (case and accents). */
export function formatOfWord(word) {
  const w = word.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  if (BY_WORD.has(w)) return { mime: BY_WORD.get(w), label: LABELS.get(BY_WORD.get(w)) };
  if (w in FAMILIES) return { family: FAMILIES[w], label: FAMILY_LABELS[FAMILIES[w]] };
  return null;
}

const STATUS_LABELS = { approved: "Approved", rejected: "Rejected", changesRequested: "Changes requested" };

/** "changesRequested" -> "Changes requested"; other values split at capitals. */
export function statusLabel(value) {
  const v = String(value);
  if (STATUS_LABELS[v]) return STATUS_LABELS[v];
  const spaced = v.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}
