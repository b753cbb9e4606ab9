// Every module of the dashboard imports under node, with no DOM: none touches `document`
// at import time. And the assets keep to the CSP: no inline script or style in the HTML.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("every module imports without a DOM", async () => {
  assert.equal(typeof globalThis.document, "undefined");
  const modules = (await readdir(UI)).filter((f) => f.endsWith(".js"));
  assert.ok(modules.includes("app.js") && modules.includes("sse.js") && modules.includes("chart.js"));
  for (const file of modules) {
    const mod = await import(path.join(UI, file));
    assert.ok(mod, file);
  }
});

test("index.html has no inline script, inline style or event handler attributes", async () => {
  const html = await readFile(path.join(UI, "index.html"), "utf8");
  assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), "inline <script>");
  assert.ok(!/<style/i.test(html), "<style> element");
  assert.ok(!/\sstyle\s*=/i.test(html), "style attribute");
  assert.ok(!/\son[a-z]+\s*=/i.test(html), "event handler attribute");
  assert.match(html, /<script type="module" src="\/ui\/app\.js"><\/script>/);
  assert.match(html, /<link rel="stylesheet" href="\/ui\/style\.css">/);
});

test("modules import each other by relative path and reference assets as /ui/<file>", async () => {
  const files = (await readdir(UI)).filter((f) => f.endsWith(".js"));
  for (const file of files) {
    const text = await readFile(path.join(UI, file), "utf8");
    for (const [, spec] of text.matchAll(/^import [^;]*? from "([^"]+)";/gms)) {
      assert.match(spec, /^\.\/[a-z]+\.js$/, `${file} imports ${spec}`);
      assert.ok(files.includes(spec.slice(2)), `${file} imports a file that is not there: ${spec}`);
    }
    assert.ok(!/\bstyle\s*=\s*["']/.test(text.replace(/\.style\./g, "")), `${file} writes a style attribute`);
    assert.ok(!/setAttribute\(\s*["']style["']/.test(text), `${file} sets a style attribute`);
  }
});
