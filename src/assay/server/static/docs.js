/* /docs: Swagger UI over /openapi.json, set up from this file (the page's CSP allows no inline script). */
(function () {
  "use strict";
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: false, // a deep link puts a link inside each operation's toggle button (nested controls, axe)
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // no badge from an outside validator
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
