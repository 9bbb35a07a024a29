/**
 * The /docs page: a self-contained reference rendered in the browser from /openapi.json (no CDN:
 * hark may run offline, and a page that loads third-party script is one more thing to trust).
 */
export function docsPage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hark API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:14px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}code,pre{background:#f5f5f5;padding:2px 4px;border-radius:3px}
pre{padding:8px;overflow:auto;font-size:12px}.op{margin:1rem 0;padding:.5rem 1rem;border:1px solid #eee;border-radius:6px}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}.auth{color:#666;font-size:12px;margin-left:.5em}
.get{color:#0a7}.post{color:#07a}.put{color:#a70}.patch{color:#a50}.delete{color:#c22}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}</style></head>
<body><h1>hark API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.</p>
<nav id="toc"></nav><div id="ops">Loading…</div>
<script src="/docs/render.js"></script></body></html>`;
}

/** Plain ES2017 for any browser; builds DOM nodes with textContent only (the spec is data, not HTML). */
export const renderScript = `(function () {
  'use strict';
  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') n.textContent = attrs[k]; else n.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }
  function typeOf(s) {
    if (!s) return 'any';
    if (s.enum) return s.enum.map(function (v) { return JSON.stringify(v); }).join(' | ');
    if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map(typeOf).join(' | ');
    if (s.type === 'array') return typeOf(s.items) + '[]';
    if (Array.isArray(s.type)) return s.type.join(' | ');
    return (s.type || 'any') + (s.format ? ' (' + s.format + ')' : '') + (s.pattern ? ' /' + s.pattern + '/' : '');
  }
  function schemaTable(s, prefix, rows) {
    rows = rows || [];
    var props = (s && s.properties) || {};
    var req = (s && s.required) || [];
    Object.keys(props).forEach(function (k) {
      var p = props[k];
      var path = prefix ? prefix + '.' + k : k;
      rows.push([path, typeOf(p), req.indexOf(k) >= 0 ? 'yes' : '', p.description || '']);
      var inner = p.type === 'array' ? p.items : p;
      if (inner && inner.properties) schemaTable(inner, p.type === 'array' ? path + '[]' : path, rows);
    });
    return rows;
  }
  function table(rows, head) {
    return el('table', {}, [el('tr', {}, head.map(function (h) { return el('th', { text: h }); }))].concat(
      rows.map(function (r) { return el('tr', {}, r.map(function (c) { return el('td', { text: c }); })); })));
  }
  function render(doc) {
    var byTag = {};
    Object.keys(doc.paths || {}).forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        var op = doc.paths[path][method];
        var tag = (op.tags && op.tags[0]) || 'Other';
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method, op: op });
      });
    });
    var root = document.getElementById('ops');
    var toc = document.getElementById('toc');
    root.textContent = '';
    Object.keys(byTag).sort().forEach(function (tag) {
      var id = 'tag-' + tag.replace(/[^A-Za-z0-9]+/g, '-');
      toc.appendChild(el('a', { href: '#' + id, text: tag }));
      toc.appendChild(document.createTextNode(' · '));
      var section = el('section', { id: id }, [el('h2', { text: tag })]);
      byTag[tag].forEach(function (o) {
        var box = el('div', { class: 'op' }, [
          el('div', {}, [el('span', { class: 'm ' + o.method, text: o.method }), el('code', { text: o.path }),
            el('span', { class: 'auth', text: 'auth: ' + (o.op['x-hark-auth'] || 'none') })]),
          el('p', { text: o.op.summary || '' }),
        ]);
        var params = (o.op.parameters || []).map(function (p) { return [p.name, p.in, p.required ? 'yes' : '', typeOf(p.schema)]; });
        if (params.length) box.appendChild(table(params, ['parameter', 'in', 'required', 'type']));
        var body = o.op.requestBody && o.op.requestBody.content && o.op.requestBody.content['application/json'];
        if (body) {
          var rows = schemaTable(body.schema, '');
          box.appendChild(el('p', { text: 'Request body (application/json):' }));
          if (rows.length) box.appendChild(table(rows, ['field', 'type', 'required', 'description']));
          else box.appendChild(el('pre', { text: JSON.stringify(body.schema, null, 2) }));
        }
        var responses = Object.keys(o.op.responses || {}).map(function (s) { return [s, o.op.responses[s].description || '']; });
        if (responses.length) box.appendChild(table(responses, ['status', 'meaning']));
        section.appendChild(box);
      });
      root.appendChild(section);
    });
  }
  fetch('/openapi.json').then(function (r) { return r.json(); }).then(render, function (err) {
    document.getElementById('ops').textContent = 'Could not load /openapi.json: ' + err;
  });
})();
`;
