// Starts Swagger UI on the page's #swagger-ui element, with the OpenAPI document at the URL in
// its data-spec-url attribute. A file, not inline code: the docs pages' Content-Security-Policy
// allows only this origin's scripts.
"use strict";

(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
    // No validity badge fetched from validator.swagger.io: the page loads nothing from elsewhere.
    validatorUrl: null,
  });
})();
