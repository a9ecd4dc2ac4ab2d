// Renders the OpenAPI document of this server as a reference page. It fetches only
// /api/v1/openapi.json from its own origin, and builds the DOM with textContent: no HTML from data.

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};

/** Follows a local `$ref` ("#/components/…"); other refs are shown as they are. */
function deref(doc, node) {
  let seen = 0;
  while (node && typeof node.$ref === "string" && node.$ref.startsWith("#/") && seen++ < 32) {
    node = node.$ref.slice(2).split("/").reduce((n, k) => (n ? n[k.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return node;
}

/** A schema as indented pseudo-JSON text; `depth` bounds recursive schemas. */
function schemaText(doc, schema, indent = "", depth = 0) {
  if (!schema) return "any";
  const name = typeof schema.$ref === "string" ? schema.$ref.split("/").pop() : null;
  const s = deref(doc, schema);
  if (!s || depth > 8) return name || "…";
  const label = name ? `${name} ` : "";
  if (s.oneOf || s.anyOf) {
    return label + (s.oneOf || s.anyOf).map((x) => schemaText(doc, x, indent, depth + 1)).join(" | ");
  }
  if (s.allOf) return label + s.allOf.map((x) => schemaText(doc, x, indent, depth + 1)).join(" & ");
  const type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
  if (type === "object" || s.properties) {
    const req = new Set(s.required || []);
    const inner = indent + "  ";
    const lines = Object.entries(s.properties || {}).map(([k, v]) => {
      const d = deref(doc, v) || {};
      const note = d.description ? `  // ${d.description}` : "";
      return `${inner}${k}${req.has(k) ? "" : "?"}: ${schemaText(doc, v, inner, depth + 1)}${note}`;
    });
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      lines.push(`${inner}[key]: ${schemaText(doc, s.additionalProperties, inner, depth + 1)}`);
    }
    return `${label}{\n${lines.join(",\n")}\n${indent}}`;
  }
  if (type === "array" || (Array.isArray(s.type) && s.type.includes("array"))) {
    return `${label}[${schemaText(doc, s.items, indent, depth + 1)}]`;
  }
  let t = type || "any";
  if (s.format) t += ` (${s.format})`;
  if (s.enum) t = s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const bounds = [];
  for (const k of ["minimum", "maximum", "minLength", "maxLength", "pattern", "default"]) {
    if (s[k] !== undefined) bounds.push(`${k} ${JSON.stringify(s[k])}`);
  }
  return (name ? `${name}: ` : "") + t + (bounds.length ? ` [${bounds.join(", ")}]` : "");
}

function contentBlock(doc, content) {
  const box = el("div");
  for (const [mime, media] of Object.entries(content || {})) {
    box.append(el("div", {}, el("code", {}, mime)), el("pre", { class: "schema" }, schemaText(doc, media.schema)));
  }
  return box;
}

function operation(doc, path, method, op, shared) {
  const id = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-");
  const sec = el("section", { class: "op", id });
  sec.append(
    el("h3", {}, el("span", { class: `method ${method}` }, method), el("code", {}, path),
      el("span", { class: "summary" }, op.summary || "")),
  );
  if (op.description) sec.append(el("p", {}, op.description));
  const params = [...(shared || []), ...(op.parameters || [])].map((p) => deref(doc, p));
  if (params.length) {
    const rows = params.map((p) =>
      el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " *") : ""),
        el("td", {}, p.in), el("td", {}, el("code", {}, schemaText(doc, p.schema))), el("td", {}, p.description || "")),
    );
    sec.append(el("h4", {}, "Parameters"),
      el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "")), ...rows));
  }
  const body = deref(doc, op.requestBody);
  if (body) {
    sec.append(el("h4", {}, `Request body${body.required ? " (required)" : ""}`));
    if (body.description) sec.append(el("p", {}, body.description));
    sec.append(contentBlock(doc, body.content));
  }
  sec.append(el("h4", {}, "Responses"));
  // Statuses that share one referenced response (the error shape) are shown once.
  const groups = new Map();
  for (const [status, r0] of Object.entries(op.responses || {})) {
    const key = typeof r0.$ref === "string" ? r0.$ref : `inline ${status}`;
    if (!groups.has(key)) groups.set(key, { statuses: [], r: deref(doc, r0) || {} });
    groups.get(key).statuses.push(status);
  }
  for (const { statuses, r } of groups.values()) {
    sec.append(el("div", {}, el("strong", {}, statuses.join(", ")), " ", r.description || ""), contentBlock(doc, r.content));
  }
  if (Array.isArray(op.security) && op.security.length === 0) sec.append(el("p", {}, "No token needed."));
  return sec;
}

async function main() {
  const out = document.getElementById("endpoints");
  const status = document.getElementById("status");
  let doc;
  try {
    const resp = await fetch("/api/v1/openapi.json", { headers: { accept: "application/json" } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    doc = await resp.json();
  } catch (e) {
    status.textContent = `Could not load the API description: ${e.message}`;
    return;
  }
  status.remove();
  document.getElementById("title").textContent = `${doc.info?.title || "API"} (version ${doc.info?.version || "?"})`;
  document.getElementById("description").textContent = doc.info?.description || "";
  const toc = el("ul");
  const methods = ["get", "put", "post", "patch", "delete", "head", "options"];
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const m of methods) {
      if (!item[m]) continue;
      const sec = operation(doc, path, m, item[m], item.parameters);
      out.append(sec);
      toc.append(el("li", {}, el("a", { href: `#${sec.id}` }, `${m.toUpperCase()} ${path}`)));
    }
  }
  document.getElementById("toc").append(toc);
  // The sections exist only now: follow a link's #fragment by hand.
  if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  if (doc.components?.schemas) {
    out.append(el("h2", {}, "Schemas"));
    for (const name of Object.keys(doc.components.schemas)) {
      out.append(el("pre", { class: "schema", id: `schema-${name}` },
        schemaText(doc, { $ref: `#/components/schemas/${name}` })));
    }
  }
}

main();
