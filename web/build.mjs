// Bundles the dashboard into OUTDIR (default dist/): assets/app-<hash>.js and .css, index.html naming them,
// the files of public/, and a .gz beside each text file (serve sends it to browsers that accept gzip).
// Fails when the first load (JavaScript + CSS, gzipped) grows past its budget.
import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";

const FIRST_LOAD_BUDGET = 150 * 1024;
const outArg = process.argv.indexOf("--out");
const out = outArg > 0 ? process.argv[outArg + 1] : "dist";

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const result = await esbuild.build({
  entryPoints: { app: "src/main.tsx" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  entryNames: "assets/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  outdir: out,
  metafile: true,
  legalComments: "none",
  jsx: "automatic",
  jsxImportSource: "preact",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => relative(out, resolve(p)));
const js = outputs.find((p) => p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));
if (!js || !css) throw new Error("esbuild gave no app .js or .css: " + outputs.join(", "));

const html = readFileSync("src/index.html", "utf8")
  .replace("%CSS%", "/" + css)
  .replace("%JS%", "/" + js);
writeFileSync(join(out, "index.html"), html);
cpSync("public", out, { recursive: true });

const compressible = /\.(html|js|css|svg|json|txt)$/;
let firstLoad = 0;
const walk = (dir) =>
  readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
for (const f of walk(out)) {
  if (!compressible.test(f)) continue;
  const gz = gzipSync(readFileSync(f), { level: 9 });
  writeFileSync(f + ".gz", gz);
  if (f.endsWith(js) || f.endsWith(css) || basename(f) === "index.html") firstLoad += gz.length;
}
const kb = (n) => (n / 1024).toFixed(1) + " KB";
console.log(`dashboard: ${js}, ${css}; first load ${kb(firstLoad)} gzipped (budget ${kb(FIRST_LOAD_BUDGET)})`);
if (firstLoad > FIRST_LOAD_BUDGET) {
  console.error(`dashboard: the first load is ${kb(firstLoad)} gzipped, over its ${kb(FIRST_LOAD_BUDGET)} budget`);
  process.exit(1);
}
