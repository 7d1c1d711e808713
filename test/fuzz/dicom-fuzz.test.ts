/**
 * Mutation fuzzing of the DICOM series loader (issue 7). Real phantom series written by the repo's own
 * writer are damaged — truncated, bytes and bits flipped, element lengths that lie, elements duplicated,
 * removed or given the wrong VR, garbage after the preamble, empty files, mixed series — and fed to
 * `loadSeries`. Property: it returns a consistent Volume or rejects with an `Error` whose message names
 * the series or the file; never a non-Error throw, never a hang, and memory stays bounded.
 * Seeded, so every run (and every failure's counterexample) is reproducible.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { constants as zc, deflateRawSync } from 'node:zlib';
import { loadSeries } from '../../lab-agent/src/imaging/dicom/load-series.js';
import { parseDicomFile } from '../../lab-agent/src/imaging/dicom/parse.js';
import { el, newUid, TS, writePart10 } from '../../lab-agent/src/imaging/dicom/write.js';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy } from '../../lab-agent/src/phantom/write-study.js';
import type { Volume } from '../../lab-agent/src/imaging/volume.js';
import { mrSlice, tempDir } from '../imaging/helpers.js';

const SEED = 0x1ab7e1a7;
const RUNS = Number(process.env.DICOM_FUZZ_RUNS ?? 1000);
const CALL_TIMEOUT_MS = 5000;
const SERIES_NAME = 'fuzz-series';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One element of a file as laid out on disk: where its header, length field and value are. */
interface Elem {
  tag: number;
  start: number;
  /** Offset of the 2 VR bytes (explicit VR only). */
  vrAt: number | null;
  lenAt: number;
  lenSize: 2 | 4;
  valueAt: number;
  end: number;
}

interface BaseFile {
  name: string;
  bytes: Buffer;
  elems: Elem[];
  little: boolean;
}

interface BaseSeries {
  label: string;
  files: BaseFile[];
}

/**
 * Walks the top level of a file written by our writer (no sequences, defined lengths), independently of
 * the parser under test: the meta group is explicit VR LE, the data set in the file's transfer syntax.
 */
function layout(bytes: Buffer, ts: string): Elem[] {
  const deflated = ts === DEFLATED;
  const LONG = new Set(['OB', 'OW', 'OF', 'SQ', 'UN', 'UT', 'UC', 'UR', 'OD', 'OL', 'OV']);
  const out: Elem[] = [];
  let p = 132;
  while (p + 8 <= bytes.length) {
    const meta = bytes.readUInt16LE(p) === 0x0002;
    // A deflated data set is one compressed stream: only the meta group has elements to aim at.
    if (!meta && deflated) break;
    const little = meta || ts !== TS.explicitBig;
    const explicit = meta || ts !== TS.implicitLittle;
    const g = little ? bytes.readUInt16LE(p) : bytes.readUInt16BE(p);
    const e = little ? bytes.readUInt16LE(p + 2) : bytes.readUInt16BE(p + 2);
    const tag = ((g << 16) | e) >>> 0;
    let vrAt: number | null = null;
    let lenAt: number;
    let lenSize: 2 | 4;
    let valueAt: number;
    if (explicit) {
      vrAt = p + 4;
      const vr = bytes.toString('latin1', p + 4, p + 6);
      if (LONG.has(vr)) [lenAt, lenSize, valueAt] = [p + 8, 4, p + 12];
      else [lenAt, lenSize, valueAt] = [p + 6, 2, p + 8];
    } else [lenAt, lenSize, valueAt] = [p + 4, 4, p + 8];
    const len = lenSize === 2 ? (little ? bytes.readUInt16LE(lenAt) : bytes.readUInt16BE(lenAt)) : little ? bytes.readUInt32LE(lenAt) : bytes.readUInt32BE(lenAt);
    const end = valueAt + len;
    if (end > bytes.length) throw new Error(`layout: element ${tag.toString(16)} runs past the end`);
    out.push({ tag, start: p, vrAt, lenAt, lenSize, valueAt, end });
    p = end;
  }
  return out;
}

async function readSeries(label: string, dir: string, ts: string): Promise<BaseSeries> {
  const names = (await fsp.readdir(dir)).sort();
  const files = await Promise.all(
    names.map(async (name) => {
      const bytes = await fsp.readFile(path.join(dir, name));
      return { name, bytes, elems: layout(bytes, ts), little: ts !== TS.explicitBig };
    }),
  );
  return { label, files };
}

// ---- mutations: each returns new bytes for one file -------------------------------------------------

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'bytes'; edits: [number, number][] }
  | { kind: 'bits'; bits: number[] }
  | { kind: 'length'; elem: number; value: number }
  | { kind: 'duplicate'; elem: number; at: number }
  | { kind: 'remove'; elem: number }
  | { kind: 'vr'; elem: number; vr: string }
  | { kind: 'garbage'; at: number; bytes: number[]; insert: boolean }
  | { kind: 'value'; elem: number; text: string }
  | { kind: 'frames'; text: string }
  | { kind: 'number'; elem: number; value: number }
  | { kind: 'empty'; size: number };

const LYING_LENGTHS = [0xffffffff, 0xfffffffe, 0x7fffffff, 0x80000000, 0xffff, 0xfffe, 1, 3, 0x10000, 0x40000000];
const VRS = ['SQ', 'OB', 'OW', 'UN', 'UT', 'US', 'UL', 'FD', 'DS', 'IS', 'PN', 'AT', 'XX', '\0\0', 'ss'];
const NASTY_TEXT = ['', 'NaN', 'Infinity', '-0', '1e308', '-1e308', '1e-320', '0', '-1', '1\\2', '\\\\\\\\\\\\', 'abc', '0.5\\0.5', '99999999999999999999', '1\\0\\0\\0\\1\\0\\0', '0\\0\\0\\0\\0\\0'];

function applyMutation(f: BaseFile, m: Mutation): Buffer {
  const b = Buffer.from(f.bytes);
  const pick = (i: number): Elem => f.elems[i % f.elems.length]!;
  switch (m.kind) {
    case 'truncate':
      return b.subarray(0, m.at % (b.length + 1));
    case 'bytes':
      for (const [at, v] of m.edits) b[at % b.length] = v;
      return b;
    case 'bits':
      for (const bit of m.bits) b[(bit >>> 3) % b.length]! ^= 1 << (bit & 7);
      return b;
    case 'length': {
      const e = pick(m.elem);
      if (e.lenSize === 2) f.little ? b.writeUInt16LE(m.value & 0xffff, e.lenAt) : b.writeUInt16BE(m.value & 0xffff, e.lenAt);
      else f.little || e.tag >>> 16 === 0x0002 ? b.writeUInt32LE(m.value >>> 0, e.lenAt) : b.writeUInt32BE(m.value >>> 0, e.lenAt);
      return b;
    }
    case 'duplicate': {
      const e = pick(m.elem);
      const at = pick(m.at).start;
      return Buffer.concat([b.subarray(0, at), b.subarray(e.start, e.end), b.subarray(at)]);
    }
    case 'remove': {
      const e = pick(m.elem);
      return Buffer.concat([b.subarray(0, e.start), b.subarray(e.end)]);
    }
    case 'vr': {
      const e = pick(m.elem);
      if (e.vrAt === null) {
        // Implicit VR has no VR bytes: damage the tag's element number instead, so the reader mistakes it.
        b.writeUInt16LE((b.readUInt16LE(e.start + 2) ^ 0x0010) & 0xffff, e.start + 2);
      } else b.write(m.vr, e.vrAt, 2, 'latin1');
      return b;
    }
    case 'garbage': {
      const at = 132 + (m.at % Math.max(1, b.length - 132));
      const g = Buffer.from(m.bytes);
      if (m.insert) return Buffer.concat([b.subarray(0, at), g, b.subarray(at)]);
      g.copy(b, at);
      return b;
    }
    case 'value': {
      // A value of the same length (padded/cut), so the layout stays valid and the parser reads it.
      const e = pick(m.elem);
      const len = e.end - e.valueAt;
      const v = Buffer.alloc(len, 0x20);
      v.write(m.text.slice(0, len), 'latin1');
      v.copy(b, e.valueAt);
      return b;
    }
    case 'frames': {
      // Inserts NumberOfFrames (0028,0008) IS, which our writer never writes, right before Rows.
      const rows = f.elems.find((e) => e.tag === 0x00280010);
      if (!rows) return b;
      const text = m.text.length % 2 ? `${m.text} ` : m.text;
      const explicit = rows.vrAt !== null;
      const h = Buffer.alloc(explicit ? 8 : 8);
      const w16 = f.little ? 'writeUInt16LE' : 'writeUInt16BE';
      h[w16](0x0028, 0);
      h[w16](0x0008, 2);
      if (explicit) {
        h.write('IS', 4, 'latin1');
        h[w16](text.length, 6);
      } else h.writeUInt32LE(text.length, 4);
      return Buffer.concat([b.subarray(0, rows.start), h, Buffer.from(text, 'latin1'), b.subarray(rows.start)]);
    }
    case 'number': {
      // A 2-byte value (Rows, Columns, BitsAllocated, PixelRepresentation, SamplesPerPixel...) set to any
      // 16-bit number: sizes that disagree with the pixel data, or ask for huge planes.
      const shorts = f.elems.filter((e) => e.end - e.valueAt === 2 && e.tag >>> 16 === 0x0028);
      const e = shorts[m.elem % shorts.length];
      if (e) f.little ? b.writeUInt16LE(m.value, e.valueAt) : b.writeUInt16BE(m.value, e.valueAt);
      return b;
    }
    case 'empty':
      // An empty file, or a prefix of a Part-10 header (preamble only, "DICM" without a meta group).
      return b.subarray(0, m.size);
  }
}

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('bytes' as const), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('bits' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('length' as const), elem: fc.nat(), value: fc.oneof(fc.constantFrom(...LYING_LENGTHS), fc.nat({ max: 0xffffffff })) }),
  fc.record({ kind: fc.constant('duplicate' as const), elem: fc.nat(), at: fc.nat() }),
  fc.record({ kind: fc.constant('remove' as const), elem: fc.nat() }),
  fc.record({ kind: fc.constant('vr' as const), elem: fc.nat(), vr: fc.constantFrom(...VRS) }),
  fc.record({ kind: fc.constant('garbage' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 64 }), insert: fc.boolean() }),
  fc.record({ kind: fc.constant('value' as const), elem: fc.nat(), text: fc.oneof(fc.constantFrom(...NASTY_TEXT), fc.string({ maxLength: 24 })) }),
  fc.record({ kind: fc.constant('frames' as const), text: fc.constantFrom('', 'abc', '0', '-1', '1.5', '2', '99999', 'NaN', ' ') }),
  fc.record({ kind: fc.constant('empty' as const), size: fc.constantFrom(0, 1, 128, 131, 132, 136) }),
  fc.record({ kind: fc.constant('number' as const), elem: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 8, 15, 17, 32, 64, 0x7fff, 0xffff), fc.integer({ min: 0, max: 0xffff })) }),
);

/** A case: one base series, mutations on some of its files, and maybe files of another series mixed in. */
const caseArb = fc.record({
  series: fc.nat(),
  mutations: fc.array(fc.tuple(fc.nat(), mutationArb), { minLength: 1, maxLength: 3 }),
  mixIn: fc.nat({ max: 2 }),
  dropFiles: fc.nat({ max: 1 }),
});

// ---- the property -----------------------------------------------------------------------------------

type Outcome = { ok: true; volume: Volume; ms: number } | { ok: false; error: unknown; ms: number };

async function loadWithTimeout(files: string[]): Promise<Outcome> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`loadSeries did not settle within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  try {
    const volume = await Promise.race([loadSeries(files, { name: SERIES_NAME }), timeout]);
    return { ok: true, volume, ms: performance.now() - t0 };
  } catch (error) {
    if (error instanceof HangError) throw error;
    return { ok: false, error, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

class HangError extends Error {}

/** DICOM_FUZZ_SURVEY=1: record every kind of violation (with one example) instead of stopping at the first. */
const SURVEY = !!process.env.DICOM_FUZZ_SURVEY;
const problems = new Map<string, { n: number; example: string }>();

/** What the parser itself throws for each file of a failing case, with where: the loader's wrapping hides it. */
async function diagnose(files: string[]): Promise<string> {
  const out: string[] = [];
  for (const f of files) {
    try {
      parseDicomFile(f, await fsp.readFile(f));
    } catch (e) {
      const kind = e instanceof Error ? e.constructor.name : typeof e;
      const where = e instanceof Error ? (e.stack ?? '').split('\n').slice(1, 4).join(' | ') : '';
      out.push(`  ${path.basename(f)}: threw ${kind}: ${e instanceof Error ? e.message : JSON.stringify(e)?.slice(0, 200)} ${where}`);
    }
  }
  return out.join('\n');
}

/** A Volume the pipeline can use: dimensions, data length, geometry and identity agree. */
function checkVolume(v: Volume, nFiles: number): void {
  const [nx, ny, nz] = v.dims;
  for (const d of v.dims) expect(Number.isInteger(d) && d > 0).toBe(true);
  expect(v.data).toBeInstanceOf(Float32Array);
  expect(v.data.length).toBe(nx * ny * nz);
  expect(nz).toBeLessThanOrEqual(nFiles);
  for (const s of v.spacing) expect(Number.isFinite(s) && s > 0).toBe(true);
  for (const o of v.origin) expect(Number.isFinite(o)).toBe(true);
  const { row, col, normal } = v.direction;
  for (const u of [row, col, normal]) expect(Math.abs(Math.hypot(...u) - 1)).toBeLessThan(1e-3);
  expect(v.sopInstanceUIDs).toHaveLength(nz);
  expect(v.seriesInstanceUID?.length).toBeGreaterThan(0);
  expect(v.source).toBe(SERIES_NAME);
}

/** A clean refusal: an Error instance whose message names the series or a file, with a real reason. */
function checkRefusal(error: unknown, names: string[]): void {
  if (!(error instanceof Error)) throw new Error(`loadSeries rejected with a non-Error: ${typeof error} ${String(error)}`);
  const msg = error.message;
  const named = msg.includes(SERIES_NAME) || names.some((n) => msg.includes(n));
  if (!named) throw new Error(`refusal does not name the series or a file: ${msg}`);
  // A message made of a stringified non-Error ('[object Object]', 'undefined') names no reason.
  if (/\[object Object\]|: undefined$/.test(msg)) throw new Error(`refusal has no usable reason: ${msg}`);
}

describe('loadSeries on mutated DICOM files', () => {
  const tmp = tempDir('dicom-fuzz');
  const bases: BaseSeries[] = [];
  let other: BaseSeries;
  let caseNo = 0;

  beforeAll(async () => {
    // Small phantoms keep each load cheap: 16x16 pixels, 6 slices per series.
    const phantom = synthesizePhantom({ seed: 7, size: [16, 16, 6], spacing: [2, 2, 3] });
    for (const [label, ts] of [['explicit-le', TS.explicitLittle], ['implicit-le', TS.implicitLittle], ['explicit-be', TS.explicitBig]] as const) {
      const dir = path.join(tmp.dir, `base-${label}`);
      await writePhantomStudy(phantom, dir, { transferSyntaxUID: ts });
      bases.push(await readSeries(label, path.join(dir, 't1'), ts));
      if (label === 'explicit-le') other = await readSeries('other', path.join(dir, 'flair'), ts);
    }
    // Deflated explicit VR LE (inflated by the parser with zlib): hand-made slices, as the writer cannot deflate.
    const ddir = path.join(tmp.dir, 'base-deflated');
    await fsp.mkdir(ddir);
    const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
    for (let k = 0; k < 4; k++) {
      const file = writePart10(mrSlice({ ...ids, ipp: [0, 0, 3 * k], value: 7 * k }), { declaredTransferSyntaxUID: DEFLATED });
      const metaEnd = 132 + 12 + file.readUInt32LE(140);
      await fsp.writeFile(path.join(ddir, `D${k}.dcm`), Buffer.concat([file.subarray(0, metaEnd), deflateRawSync(file.subarray(metaEnd))]));
    }
    bases.push(await readSeries('deflated', ddir, DEFLATED));
    // Explicit VR LE is the common case on disk: weight it double.
    bases.push(bases[0]!);
  });
  afterAll(() => tmp.cleanup());

  it('unmutated base series load (the fuzz starts from valid files)', async () => {
    for (const s of bases) {
      const dir = path.join(tmp.dir, `clean-${caseNo++}`);
      await fsp.mkdir(dir);
      const files = await Promise.all(s.files.map(async (f) => (await fsp.writeFile(path.join(dir, f.name), f.bytes), path.join(dir, f.name))));
      const o = await loadWithTimeout(files);
      if (!o.ok) throw o.error;
      expect(o.volume.dims).toEqual(s.label === 'deflated' ? [8, 8, 4] : [16, 16, 6]);
    }
  });

  it(`returns a consistent Volume or a named Error, never hangs or grows memory (${RUNS} seeded runs)`, async () => {
    const rss0 = process.memoryUsage().rss;
    // Peak RSS (kernel high-water mark) also catches a huge buffer allocated and freed inside one call.
    const maxRss0 = process.resourceUsage().maxRSS * 1024;
    const ab0 = process.memoryUsage().arrayBuffers;
    let peakRss = rss0;
    let peakAb = ab0;
    let slowest = 0;
    const counts = { volume: 0, refused: 0 };
    const reasons = new Map<string, number>();
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const base = bases[c.series % bases.length]!;
        const dir = path.join(tmp.dir, `case-${caseNo++}`);
        await fsp.mkdir(dir);
        const contents = new Map<string, Buffer>(base.files.map((f) => [f.name, f.bytes]));
        for (const [fi, m] of c.mutations) {
          const f = base.files[fi % base.files.length]!;
          // The element layout is known for the pristine file only: a second mutation of the same file
          // flips a byte of the damaged copy instead.
          const cur = contents.get(f.name)!;
          if (cur === f.bytes) contents.set(f.name, applyMutation(f, m));
          else {
            const b = Buffer.from(cur);
            if (b.length > 0) b[(fi * 7919) % b.length]! ^= 0xff;
            contents.set(f.name, b);
          }
        }
        const names = [...contents.keys()].slice(c.dropFiles);
        const files: string[] = [];
        for (const n of names) {
          await fsp.writeFile(path.join(dir, n), contents.get(n)!);
          files.push(path.join(dir, n));
        }
        for (let k = 0; k < c.mixIn; k++) {
          const f = other.files[(c.series + k) % other.files.length]!;
          const p = path.join(dir, `other-${f.name}`);
          await fsp.writeFile(p, f.bytes);
          files.push(p);
        }
        const o = await loadWithTimeout(files);
        slowest = Math.max(slowest, o.ms);
        try {
          if (o.ok) {
            counts.volume++;
            checkVolume(o.volume, files.length);
          } else {
            counts.refused++;
            checkRefusal(o.error, files.map((f) => path.basename(f)));
          }
        } catch (e) {
          const what = `${(e as Error).message}\n${await diagnose(files)}`;
          if (!SURVEY) throw new Error(what);
          const key = (e as Error).message.replace(/[\d.]+/g, 'N').slice(0, 100);
          if (!problems.has(key)) problems.set(key, { n: 0, example: `${what}\ncase ${JSON.stringify(c)}` });
          problems.get(key)!.n++;
        }
        if (!o.ok) {
          const reason = (o.error as Error).message.replace(/^series [^:]+: /, '').replace(/[\d.]+/g, 'N').slice(0, 60);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
        await fsp.rm(dir, { recursive: true, force: true });
        const mu = process.memoryUsage();
        peakRss = Math.max(peakRss, mu.rss);
        peakAb = Math.max(peakAb, mu.arrayBuffers);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    const ms = performance.now() - t0;
    if (SURVEY) console.log([...problems].map(([k, v]) => `${v.n}x ${k}\n${v.example}`).join('\n\n'));
    const mb = (n: number) => Math.round(n / 2 ** 20);
    console.log(
      `dicom fuzz: ${RUNS} runs in ${Math.round(ms)} ms (slowest load ${Math.round(slowest)} ms); ${counts.volume} volumes, ${counts.refused} refusals; ` +
        `peak growth rss ${mb(peakRss - rss0)} MiB (high-water mark +${mb(process.resourceUsage().maxRSS * 1024 - maxRss0)} MiB), arrayBuffers ${mb(peakAb - ab0)} MiB\n` +
        [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([r, n]) => `  ${n}\t${r}`).join('\n'),
    );
    // Every base file is ~1.5 KB and a case loads at most 8: anything near 256 MiB is an allocation driven
    // by a lying header, not by the data.
    expect(peakAb - ab0).toBeLessThan(256 * 2 ** 20);
    expect(process.resourceUsage().maxRSS * 1024 - maxRss0).toBeLessThan(512 * 2 ** 20);
    // The timeout above catches an async hang; a synchronous stall would block the timer, so the measured
    // duration of each call is bounded too.
    expect(slowest).toBeLessThan(CALL_TIMEOUT_MS);
    expect(peakRss - rss0).toBeLessThan(512 * 2 ** 20);
    expect(counts.refused).toBeGreaterThan(RUNS / 4);
    expect(counts.volume).toBeGreaterThan(0);
  }, 120_000);

  // Was a bug (lab-agent/src/imaging/dicom/parse.ts, parseDicomFile): dicom-parser's accessors throw bare strings
  // when an element's value runs past the end of the buffer. Only `dicomParser.parseDicom` is inside a try;
  // the accessors after it (`str()`/`ds.string()` in the "not an image" branch, `ds.uint16`, ...) are not, so
  // the string escapes, and loadSeries' `fail((e as Error).message)` turns it into "series NAME: undefined"
  // (no file, no reason). Found by the fuzz property above (implicit VR LE, truncation); minimal input: an
  // implicit VR LE phantom slice cut inside the value of SOPClassUID (0008,0016).
  it('names the file and the reason for an implicit VR file cut inside an element value', async () => {
    const f = bases.find((b) => b.label === 'implicit-le')!.files[0]!;
    const sopClass = f.elems.find((e) => e.tag === 0x00080016)!;
    const dir = path.join(tmp.dir, 'cut-implicit');
    await fsp.mkdir(dir);
    const file = path.join(dir, 'CUT.dcm');
    await fsp.writeFile(file, f.bytes.subarray(0, sopClass.valueAt + 5));
    const o = await loadWithTimeout([file]);
    expect(o.ok).toBe(false);
    const msg = (o as { error: Error }).error.message;
    expect(msg).toContain('CUT.dcm');
    expect(msg).not.toMatch(/undefined/);
  });

  // Was a bug (lab-agent/src/imaging/dicom/parse.ts, parseDicomFile): `nFrames = ds.intString('x00280008') ?? 1`
  // accepts NumberOfFrames 0, negative or non-numeric (NaN). The truncated-pixel-data check compares with
  // `expected = rows*columns*bytes*nFrames`, which is then 0, negative or NaN, so a file with almost no pixel
  // data passes; assembleVolume allocates `new Float32Array(rows*columns*nz)` sized by the header (1 GiB for
  // Rows = Columns = 16384) and decodeFrame throws a bare RangeError ("Invalid typed array length: 64") that
  // names neither the series nor the file (assembleVolume's errors are not wrapped by loadSeries).
  it('refuses NumberOfFrames 0, negative or not a number with little pixel data, naming the file', async () => {
    const dir = path.join(tmp.dir, 'frames');
    await fsp.mkdir(dir);
    const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
    const cases: [string, number][] = [['0', 8], ['-1', 8], ['abc', 8], ['abc', 16384]];
    for (const [i, [frames, size]] of cases.entries()) {
      const ds = mrSlice({ ...ids, ipp: [0, 0, 0], rows: size, cols: size, value: 0 }).filter((e) => e.tag !== 0x7fe00010);
      // Rows x Columns from the header, but 2 bytes of pixel data.
      ds.push(el(0x00280008, 'IS', frames), el(0x7fe00010, 'OW', new Uint8Array(2)));
      const file = path.join(dir, `F${i}.dcm`);
      await fsp.writeFile(file, writePart10(ds));
      const o = await loadWithTimeout([file]);
      expect(o.ok).toBe(false);
      const error = (o as { error: unknown }).error;
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toContain(`F${i}.dcm`);
    }
  });

  // Was a bug (unbounded memory; lab-agent/src/imaging/dicom/parse.ts, parseDicomFile -> dicomParser.parseDicom):
  // a deflated file is inflated with zlib.inflateRawSync and no output limit, then copied into a second
  // buffer of the full size. Measured: a 256 KB file inflating to 256 MiB raises the peak RSS by ~770 MiB
  // and loads as a valid 8x8x1 volume; a 2 MB file inflates to 2 GiB (deflate reaches ~1000:1 on zeros),
  // and loadSeries reads 16 files at once. A PACS (or anyone who can put a file in the source) can run the
  // agent out of memory. Fix idea: pass dicomParser an `inflater` that calls inflateRawSync with a
  // `maxOutputLength` and refuse the file, naming it, when the limit is hit.
  // Run in a child process watched from here: the current code would need ~6 GiB for this input, so the
  // child is killed once its RSS passes 1 GiB.
  it('refuses a deflate bomb (2 MB file inflating to 2 GiB) with peak memory under 1 GiB', async () => {
    const dir = path.join(tmp.dir, 'bomb');
    await fsp.mkdir(dir);
    const file = path.join(dir, 'BOMB.dcm');
    const ids = { series: newUid(), study: newUid(), frameOfReference: newUid() };
    const part10 = writePart10(mrSlice({ ...ids, ipp: [0, 0, 0] }), { declaredTransferSyntaxUID: DEFLATED });
    const metaEnd = 132 + 12 + part10.readUInt32LE(140);
    // A private OB element (7FE1,1010) of 2 GiB zeros after the image. Full flushes make each compressed
    // 1 MiB block self-contained, so the stream is the same block repeated (no need to deflate 2 GiB here).
    const GIB2 = 2 ** 31;
    const h = Buffer.alloc(12);
    h.writeUInt16LE(0x7fe1, 0);
    h.writeUInt16LE(0x1010, 2);
    h.write('OB', 4, 'latin1');
    h.writeUInt32LE(GIB2, 8);
    const flush = { finishFlush: zc.Z_FULL_FLUSH };
    const zeros = deflateRawSync(Buffer.alloc(2 ** 20), { level: 9, ...flush });
    const blocks = [deflateRawSync(Buffer.concat([part10.subarray(metaEnd), h]), flush), ...Array<Buffer>(GIB2 / 2 ** 20).fill(zeros), deflateRawSync(Buffer.alloc(0))];
    await fsp.writeFile(file, Buffer.concat([part10.subarray(0, metaEnd), ...blocks]));
    expect((await fsp.stat(file)).size).toBeLessThan(3 * 2 ** 20);

    const script = path.join(dir, 'load.mts');
    await fsp.writeFile(
      script,
      `import { loadSeries } from ${JSON.stringify(path.join(ROOT, 'lab-agent/src/imaging/dicom/load-series.ts'))};\n` +
        `let r;\ntry { const v = await loadSeries([${JSON.stringify(file)}], { name: 'bomb' }); r = { ok: true, dims: v.dims }; }\n` +
        `catch (e) { r = { ok: false, error: e instanceof Error ? e.message : 'non-Error: ' + String(e) }; }\n` +
        `console.log(JSON.stringify({ ...r, maxRssKiB: process.resourceUsage().maxRSS }));\n`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    let killedAtKiB = 0;
    const watch = setInterval(() => {
      try {
        const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        if (kib > 2 ** 20) {
          killedAtKiB = kib;
          child.kill('SIGKILL');
        }
      } catch {
        // exited between two looks
      }
    }, 25);
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    clearInterval(watch);
    expect({ killedAtMiB: killedAtKiB >> 10 }).toEqual({ killedAtMiB: 0 });
    expect(code).toBe(0);
    const r = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; error?: string; maxRssKiB: number };
    expect(r.ok).toBe(false);
    expect(r.error).toContain('BOMB.dcm');
    expect(r.maxRssKiB).toBeLessThan(2 ** 20);
  }, 60_000);
});
