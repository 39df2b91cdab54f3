// Swagger UI over the server's own OpenAPI document. "Try it out" sends the token given
// with Authorize (Swagger UI's own control, from the document's bearerAuth scheme) or,
// in a tab signed in to the web UI, that tab's token. The token is never shown: the
// curl snippets print $ASSETVAULT_TOKEN in its place.
/* global SwaggerUIBundle */
const PLACEHOLDER = "Bearer $ASSETVAULT_TOKEN";

function redact(request) {
  if (!request || typeof request.get !== "function") return request;
  const headers = request.get("headers");
  if (!headers || typeof headers.keySeq !== "function") return request;
  let out = request;
  headers.keySeq().forEach((name) => {
    if (String(name).toLowerCase() === "authorization") {
      out = out.setIn(["headers", name], PLACEHOLDER);
    }
  });
  return out;
}

// Every component that prints a request as a command gets it with the token replaced.
function HideToken() {
  const wrap = (Original, system) => (props) =>
    system.React.createElement(Original, { ...props, request: redact(props.request) });
  return { wrapComponents: { curl: wrap, RequestSnippets: wrap } };
}

// Swagger UI's authorization dialog names two buttons other than their visible text and
// leaves its close button without a name; screen readers and voice control need both.
// Its page has one <main> (the operations) and one <h1> (the API's title), but leaves the
// title and the Authorize bar outside any landmark, and its headings skip a level: tags
// are <h3> under the <h1>, the dialog's heading too, and "Authorized" is an <h6> under an
// <h4>. The two blocks become named regions, and each heading is read one level up
// (the Schemas heading, a sibling of the tags, as level 2), so the outline has no gap.
// (Attributes only: Swagger UI's React tree keeps them, and a node it draws anew gets
// them again here.)
const LANDMARKS = [
  [".swagger-ui .information-container", "About this API"],
  [".swagger-ui .scheme-container", "Authorization"],
];
const LEVELS = { H3: "2", H4: "3", H5: "4", H6: "4" };
new MutationObserver(() => {
  for (const b of document.querySelectorAll(".auth-btn-wrapper button[aria-label]")) b.removeAttribute("aria-label");
  for (const b of document.querySelectorAll(".close-modal:not([aria-label])")) b.setAttribute("aria-label", "Close");
  for (const [selector, name] of LANDMARKS) {
    for (const e of document.querySelectorAll(`${selector}:not([role])`)) {
      e.setAttribute("role", "region");
      e.setAttribute("aria-label", name);
    }
  }
  for (const h of document.querySelectorAll(".swagger-ui :is(h3, h4, h5, h6):not([aria-level])")) {
    h.setAttribute("aria-level", h.matches(".models > h4") ? "2" : LEVELS[h.tagName]);
  }
  // A code block (a curl snippet, a response body) scrolls sideways on a phone: it takes
  // the focus, so that it scrolls from the keyboard too.
  for (const pre of document.querySelectorAll(".swagger-ui pre:not([tabindex])")) pre.setAttribute("tabindex", "0");
}).observe(document.body, { childList: true, subtree: true });

// Light or dark as the system says, like the rest of the UI: Swagger UI carries its own
// dark styles, for html.dark-mode (its stand-alone layout's toggle sets that class).
const darkScheme = matchMedia("(prefers-color-scheme: dark)");
const followScheme = () => document.documentElement.classList.toggle("dark-mode", darkScheme.matches);
followScheme();
darkScheme.addEventListener("change", followScheme);

const ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger",
  deepLinking: false, // its links sit inside the operations' buttons (nested controls)
  validatorUrl: null, // the default validator is an outside service
  persistAuthorization: false, // a token given with Authorize lasts as long as the page
  plugins: [HideToken],
  requestInterceptor: (req) => {
    // The Author API wants an X-Api-Key; any value unless the server lists keys.
    if (!req.headers["X-Api-Key"]) {
      req.headers["X-Api-Key"] = sessionStorage.getItem("assetvault.apiKey") || "assetvault-ui";
    }
    return req;
  },
  onComplete: () => {
    // A tab signed in to the web UI starts authorized with its token (shown as ******).
    const token = sessionStorage.getItem("assetvault.token");
    if (token) ui.preauthorizeApiKey("bearerAuth", token);
  },
});
