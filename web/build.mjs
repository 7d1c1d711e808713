// Builds the web page into web/dist/ (what WEB_DIR and Firebase Hosting serve):
// bundles app.js and dashboard.js with esbuild (the Firebase SDK becomes a separate chunk that only
// the cloud sign-in loads) and copies the HTML and CSS.
// Usage: node web/build.mjs [--out DIR] [--watch]   (tests build into a temporary DIR)
import { build, context } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]) : join(here, 'dist');
const STATIC = ['index.html', 'dashboard.html', 'styles.css'];

/** Removes what an earlier build wrote, but keeps files others put there (npm start's demo/studies.json). */
async function clean() {
  await mkdir(out, { recursive: true });
  for (const name of await readdir(out)) {
    if (name === 'demo') continue;
    await rm(join(out, name), { recursive: true, force: true });
  }
}

const options = {
  entryPoints: [join(src, 'app.js'), join(src, 'dashboard.js')],
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'linked',
  logLevel: 'warning',
};

export async function buildWeb() {
  await clean();
  const result = await build(options);
  for (const f of STATIC) await copyFile(join(src, f), join(out, f));
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--watch')) {
    await clean();
    for (const f of STATIC) await copyFile(join(src, f), join(out, f));
    const ctx = await context(options);
    await ctx.watch();
    console.log(`watching ${src} → ${out} (HTML/CSS are copied at start only)`);
  } else {
    const t0 = performance.now();
    await buildWeb();
    console.log(`web: built ${out} in ${Math.round(performance.now() - t0)} ms`);
  }
}
