// Starts Swagger UI on /docs. It lives in a file rather than in the page so that the page
// runs under a Content-Security-Policy of script-src 'self'.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    deepLinking: true,
    displayRequestDuration: true,
    validatorUrl: null, // the default would send the document to an outside validator
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
