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
new MutationObserver(() => {
  for (const b of document.querySelectorAll(".auth-btn-wrapper button[aria-label]")) b.removeAttribute("aria-label");
  for (const b of document.querySelectorAll(".close-modal:not([aria-label])")) b.setAttribute("aria-label", "Close");
}).observe(document.body, { childList: true, subtree: true });

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
