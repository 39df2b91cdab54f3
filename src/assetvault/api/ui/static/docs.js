// Swagger UI over the server's own OpenAPI document. "Try it out" sends the token the
// person signed in with in the web UI (kept for this tab only), never a stored one.
/* global SwaggerUIBundle */
SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger",
  deepLinking: true,
  validatorUrl: null, // the default validator is an outside service
  requestInterceptor: (req) => {
    const token = sessionStorage.getItem("assetvault.token");
    if (token && !req.headers.Authorization) req.headers.Authorization = "Bearer " + token;
    if (!req.headers["X-Api-Key"]) {
      req.headers["X-Api-Key"] = sessionStorage.getItem("assetvault.apiKey") || "assetvault-ui";
    }
    return req;
  },
});
