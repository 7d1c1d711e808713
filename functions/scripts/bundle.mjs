// Bundles the Cloud Function into functions/dist: `gcloud functions deploy --source=functions/dist`
// uploads only that folder, so the shared protocol package is inlined and dist/package.json lists
// just the runtime dependencies the function loads.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const runtimeDeps = ['@google-cloud/functions-framework', '@google-cloud/firestore', '@google-cloud/storage', 'firebase-admin'];
const outdir = new URL('../dist/', import.meta.url).pathname;
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [new URL('../src/index.ts', import.meta.url).pathname],
  outfile: `${outdir}index.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  external: [...runtimeDeps, 'better-sqlite3'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});
writeFileSync(
  `${outdir}package.json`,
  JSON.stringify(
    {
      name: 'lab-relay-api',
      version: pkg.version,
      private: true,
      type: 'module',
      main: 'index.js',
      engines: { node: '>=20' },
      dependencies: Object.fromEntries(runtimeDeps.map((d) => [d, pkg.dependencies[d]])),
    },
    null,
    2,
  ) + '\n',
);
console.log(`bundled the API into ${outdir}`);
