"""``/docs``: the OpenAPI document as a page that needs no network (no CDN, no inline script).

The page loads ``/docs.js`` from the relay, which fetches ``/openapi.json`` and builds the page with DOM calls
only (``textContent``, never HTML from the document), under a Content-Security-Policy that allows nothing else.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>parley relay API</title>
<link rel="stylesheet" href="/docs.css">
</head>
<body>
<header><h1>parley relay API</h1><p id="about">Loading <a href="/openapi.json">/openapi.json</a>...</p></header>
<nav id="index"></nav>
<main id="operations"></main>
<script src="/docs.js"></script>
</body>
</html>
"""

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #1d1d1f; }
h1 { margin-bottom: 0.2rem; } h2 { border-top: 1px solid #ddd; padding-top: 1rem; font-size: 1.1rem; }
code, pre { font: 13px/1.4 ui-monospace, monospace; } pre { background: #f5f5f7; padding: 0.6rem; overflow-x: auto; }
.method { display: inline-block; min-width: 3.5rem; font-weight: 700; }
.get { color: #0a7d32; } .post { color: #b35900; } .put { color: #6b3fa0; }
.id { color: #666; margin-left: 0.5rem; } nav a { display: block; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #eee; padding: 0.2rem 0.6rem; text-align: left; }
"""

SCRIPT = """
"use strict";
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}
function refName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}
function schemaText(schema) {
  const name = refName(schema);
  return name ? name : JSON.stringify(schema, null, 2);
}
function section(spec, path, method, op) {
  const box = el("section");
  box.id = op.operationId || method + path;
  const title = el("h2");
  const verb = el("span", method.toUpperCase(), "method " + method);
  title.append(verb, el("code", path), el("span", op.operationId, "id"));
  box.append(title);
  if (op.description || op.summary) box.append(el("p", op.description || op.summary));
  if (op.security) {
    box.append(el("p", "Auth: " + op.security.map((s) => Object.keys(s).join(" + ")).join(" or ")));
  }
  if (op.parameters && op.parameters.length) {
    const table = el("table");
    const head = el("tr");
    head.append(el("th", "parameter"), el("th", "in"), el("th", "required"), el("th", "schema"));
    table.append(head);
    for (const p of op.parameters) {
      const row = el("tr");
      row.append(el("td", p.name), el("td", p.in), el("td", p.required ? "yes" : ""), el("td", schemaText(p.schema)));
      table.append(row);
    }
    box.append(table);
  }
  if (op.requestBody) {
    for (const [type, media] of Object.entries(op.requestBody.content || {})) {
      box.append(el("h3", "Body: " + type), el("pre", schemaText(media.schema)));
    }
  }
  for (const [status, answer] of Object.entries(op.responses || {})) {
    const media = answer.content ? Object.values(answer.content)[0] : null;
    box.append(el("h3", status + " " + (answer.description || "")));
    if (media && media.schema) box.append(el("pre", schemaText(media.schema)));
  }
  return box;
}
async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.title = spec.info.title + " " + spec.info.version;
  const about = document.getElementById("about");
  about.textContent = spec.info.description || "";
  const index = document.getElementById("index");
  const operations = document.getElementById("operations");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = section(spec, path, method, op);
      const link = el("a", method.toUpperCase() + " " + path);
      link.href = "#" + box.id;
      index.append(link);
      operations.append(box);
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  operations.append(el("h2", "Schemas"));
  for (const [name, schema] of Object.entries(schemas)) {
    const box = el("section");
    box.id = "schema-" + name;
    box.append(el("h3", name), el("pre", JSON.stringify(schema, null, 2)));
    operations.append(box);
  }
}
main().catch((error) => {
  document.getElementById("about").textContent = "Could not load /openapi.json: " + error;
});
"""


def page() -> Response:
    return HTMLResponse(PAGE, headers=HEADERS)


def script() -> Response:
    return Response(SCRIPT, media_type="text/javascript", headers=HEADERS)


def style() -> Response:
    return Response(STYLE, media_type="text/css", headers=HEADERS)
