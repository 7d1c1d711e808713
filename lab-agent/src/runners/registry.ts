/**
 * Picks the runner by name. The built-in `onnx` runner lives in runners/onnx.ts (its own issue); it is
 * imported only when chosen and present, so `--runner onnx` fails at start-up with a clear message
 * instead of producing placeholder results while it does not exist.
 *
 * runners/onnx.ts may export `createOnnxRunner(options: RunnerFactoryOptions)` (or a default export of
 * it); otherwise its `OnnxRunner` class is built here with the image source named by `--source`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import type { SeriesSource } from '../sources/types.js';
import { CommandRunner } from './command.js';
import type { Runner, RunnerFactoryOptions } from './types.js';

export type RunnerName = 'onnx' | 'command';

const exists = (rel: string) => ['.ts', '.js'].some((ext) => existsSync(fileURLToPath(new URL(rel + ext, import.meta.url))));

export function onnxRunnerAvailable(): boolean {
  return exists('./onnx');
}

export async function createRunner(name: RunnerName, o: RunnerFactoryOptions): Promise<Runner> {
  if (name === 'command') {
    if (!o.command?.trim()) throw new ConfigError('Invalid agent configuration:\n  --command / AGENT_COMMAND: the command runner needs a command');
    return new CommandRunner(o.command, { env: o.env });
  }
  if (!onnxRunnerAvailable()) {
    throw new ConfigError(
      'The onnx runner is not part of this build yet (lab-agent/src/runners/onnx.ts is missing).\n' +
        "  Use the command runner instead: --runner command --command '<your inference program>'",
    );
  }
  // Computed specifiers: these modules may not exist when this file is type-checked.
  const spec = './onnx.js';
  const mod = (await import(spec)) as { createOnnxRunner?: unknown; default?: unknown; OnnxRunner?: unknown };
  const factory = (mod.createOnnxRunner ?? mod.default) as ((o: RunnerFactoryOptions) => Runner | Promise<Runner>) | undefined;
  if (typeof factory === 'function') return factory(o);
  if (typeof mod.OnnxRunner !== 'function') {
    throw new ConfigError('lab-agent/src/runners/onnx.ts exports neither createOnnxRunner(options) nor OnnxRunner; cannot start the onnx runner');
  }
  const source = await createSource(o.source, o.env, o.flags);
  const storeSeg = await createStoreSeg(o.source, o.env, o.flags);
  const OnnxRunner = mod.OnnxRunner as new (x: Record<string, unknown>) => Runner;
  const runner = new OnnxRunner({
    source,
    ...(storeSeg ? { storeSeg } : {}),
    ...(o.model ? { modelPath: o.model } : {}),
    provider: o.provider,
    onWarning: (message: string) => o.log('WARNING', message),
  });
  // The runner keeps its source to itself; `lab-agent doctor` checks it through Runner.source.
  if (!runner.source) Object.defineProperty(runner, 'source', { value: source, enumerable: true });
  return runner;
}

type SourcesRegistry = {
  createSource?: (spec: string, env: Record<string, string | undefined>, flags?: Record<string, string | undefined>) => SeriesSource | Promise<SeriesSource>;
  createStoreSeg?: (spec: string | undefined, env: Record<string, string | undefined>, flags?: Record<string, string | undefined>) => unknown;
};

async function sourcesRegistry(): Promise<SourcesRegistry | null> {
  if (!exists('../sources/registry')) return null;
  const regSpec = '../sources/registry.js';
  return (await import(regSpec)) as SourcesRegistry;
}

/**
 * The image source for `--source SPEC`. sources/registry.ts (the image-source issue) builds it when
 * present (Orthanc on this PC when no spec is given, as in the seed's deployment); without it only
 * `folder:<dir>` is understood here.
 */
export async function createSource(spec: string | undefined, env: Record<string, string | undefined>, flags: Record<string, string | undefined> = {}): Promise<SeriesSource> {
  const reg = await sourcesRegistry();
  if (typeof reg?.createSource === 'function') return reg.createSource(spec?.trim() || 'orthanc', env, flags);
  if (!spec?.trim()) {
    throw new ConfigError('Invalid agent configuration:\n  --source / AGENT_SOURCE: the onnx runner needs an image source, e.g. --source folder:/data/studies');
  }
  const m = /^folder:(.+)$/.exec(spec.trim());
  if (m && exists('../sources/folder')) {
    const folderSpec = '../sources/folder.js';
    const { FolderSource } = (await import(folderSpec)) as { FolderSource: new (root: string) => SeriesSource };
    return new FolderSource(m[1]!);
  }
  throw new ConfigError(`Invalid agent configuration:\n  --source / AGENT_SOURCE: '${spec}' is not a source this build knows (supported: folder:<dir>)`);
}

/** Where the onnx runner stores the SEG it made (a PACS sink, `--pacs`), when one is configured. */
async function createStoreSeg(spec: string | undefined, env: Record<string, string | undefined>, flags: Record<string, string | undefined> = {}) {
  const reg = await sourcesRegistry();
  if (typeof reg?.createStoreSeg !== 'function') return undefined;
  return reg.createStoreSeg(spec, env, flags) as ((segPath: string, ctx: { signal: AbortSignal }) => Promise<string | null>) | undefined;
}
