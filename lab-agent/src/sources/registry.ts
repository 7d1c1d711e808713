/**
 * The entry point runners/registry.ts looks for: `createSource(spec, env)` with the agent's `--source`
 * value. SPEC is a kind, optionally with its location: `orthanc`, `orthanc:http://pacs:8042`,
 * `dicomweb:https://host/dicom-web`, `folder:/data/studies`. Everything else (credentials, limits) comes
 * from the SOURCE_SETTINGS flags or environment variables (AGENT_SOURCE_USER, ...).
 */
import { ConfigError } from '../errors.js';
import { createPacsSink, resolvePacsConfig } from '../sinks/pacs-config.js';
import { resolveSourceConfig, SOURCE_KINDS, type SourceConfig, type SourceFlags } from './config.js';
import { createSource as fromConfig } from './index.js';
import type { SeriesSource } from './types.js';

/** Splits "kind" or "kind:location" into source flags (a location overrides --source-url/--source-root). */
export function specFlags(spec: string): SourceFlags {
  const s = spec.trim();
  const colon = s.indexOf(':');
  const kind = (colon < 0 ? s : s.slice(0, colon)).toLowerCase();
  const where = colon < 0 ? '' : s.slice(colon + 1);
  if (!(SOURCE_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigError(`Invalid image source configuration:\n  --source / AGENT_SOURCE: must be one of ${SOURCE_KINDS.join(', ')}, optionally followed by ":" and a URL or folder`);
  }
  if (!where) return { source: kind };
  return kind === 'folder' ? { source: kind, sourceRoot: where } : { source: kind, sourceUrl: where };
}

export function sourceConfigFromSpec(spec: string, env: Record<string, string | undefined>, flags: SourceFlags = {}): SourceConfig {
  return resolveSourceConfig({ ...flags, ...specFlags(spec) }, env);
}

export function createSource(spec: string, env: Record<string, string | undefined>, flags: SourceFlags = {}): SeriesSource {
  return fromConfig(sourceConfigFromSpec(spec, env, flags));
}

/**
 * The onnx runner's `storeSeg` hook for the configured PACS sink (AGENT_PACS / --pacs), or undefined when
 * no sink is configured. Returns the id reported as seg_instance_id.
 */
export function createStoreSeg(
  spec: string | undefined,
  env: Record<string, string | undefined>,
  flags: SourceFlags = {},
): ((segPath: string, ctx: { signal: AbortSignal }) => Promise<string | null>) | undefined {
  const source = spec?.trim() ? sourceConfigFromSpec(spec, env, flags) : undefined;
  const sink = createPacsSink(resolvePacsConfig(flags, env, source));
  if (!sink) return undefined;
  return async (segPath, ctx) => (await sink.store(segPath, ctx.signal)).seg_instance_id;
}
