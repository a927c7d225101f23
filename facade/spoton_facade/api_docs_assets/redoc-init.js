// Starts Redoc on the page's #redoc element, with the OpenAPI document at the URL in this
// script's data-spec-url attribute. Redoc inserts its styles as <style> elements and gives them
// this script's nonce, the one the page's Content-Security-Policy allows styles by.
"use strict";

(() => {
  const script = document.currentScript;
  Redoc.init(script.dataset.specUrl, { nonce: script.nonce }, document.getElementById("redoc"));
})();
