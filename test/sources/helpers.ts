/** Shared pieces of the source tests: a small phantom study on disk, file hashes, open handles. */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { synthesizePhantom } from '../../lab-agent/src/phantom/synthesize.js';
import { writePhantomStudy, type WrittenStudy } from '../../lab-agent/src/phantom/write-study.js';
import type { Vec3 } from '../../lab-agent/src/imaging/volume.js';

export const SMALL: Vec3 = [48, 48, 24];

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `sources-test-${prefix}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** A 4-series phantom study (DIR/t1, t1c, t2, flair) plus its labels. */
export async function writeSmallStudy(dir: string, seed = 7, size: Vec3 = SMALL): Promise<{ study: WrittenStudy; labels: Uint8Array }> {
  const phantom = synthesizePhantom({ seed, size, spacing: [4, 4, 6] });
  const study = await writePhantomStudy(phantom, dir);
  return { study, labels: phantom.labels };
}

export async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** The multiset of content hashes of files: equal for the same instances whatever their names. */
export async function hashes(files: string[]): Promise<string[]> {
  return (await Promise.all(files.map(sha))).sort();
}

export async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

/** Descriptors of this process that point into `dir` (Linux only; [] elsewhere). */
export async function openFilesUnder(dir: string): Promise<string[]> {
  let fds: string[];
  try {
    fds = await readdir('/proc/self/fd');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const fd of fds) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(dir)) out.push(target);
  }
  return out;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function failure<E = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error('expected the promise to reject, it resolved');
}
