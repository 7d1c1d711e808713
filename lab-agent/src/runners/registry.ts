/**
 * Picks the runner by name. The built-in `onnx` runner lives in runners/onnx.ts (its own issue); it is
 * imported only when chosen and present, so `--runner onnx` fails at start-up with a clear message
 * instead of producing placeholder results while it does not exist.
 *
 * Contract for runners/onnx.ts: export `createOnnxRunner(options: RunnerFactoryOptions): Runner |
 * Promise<Runner>` (a default export of the same function is accepted too).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { CommandRunner } from './command.js';
import type { Runner, RunnerFactoryOptions } from './types.js';

export type RunnerName = 'onnx' | 'command';

export function onnxRunnerAvailable(): boolean {
  return ['./onnx.ts', './onnx.js'].some((f) => existsSync(fileURLToPath(new URL(f, import.meta.url))));
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
  // A computed specifier: the module may not exist when this file is type-checked.
  const spec = './onnx.js';
  const mod = (await import(spec)) as { createOnnxRunner?: unknown; default?: unknown };
  const factory = (mod.createOnnxRunner ?? mod.default) as ((o: RunnerFactoryOptions) => Runner | Promise<Runner>) | undefined;
  if (typeof factory !== 'function') {
    throw new ConfigError('lab-agent/src/runners/onnx.ts does not export createOnnxRunner(options); cannot start the onnx runner');
  }
  return factory(o);
}
