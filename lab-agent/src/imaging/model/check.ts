/**
 * Checks an ONNX session's declared inputs/outputs against the manifest, so a wrong model fails when it is
 * loaded with a message naming the mismatch, not with an opaque onnxruntime error on the first window.
 */
import type { InferenceSession } from 'onnxruntime-node';
import { outputChannels, type ModelManifest } from './manifest.js';

/** The part of an InferenceSession this check reads. */
export type SessionIo = Pick<InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'outputMetadata'>;

type Dim = number | string;

/** Returns the list of problems (empty when the model matches). */
export function modelManifestMismatches(io: SessionIo, m: ModelManifest): string[] {
  const problems: string[] = [];
  const spatial = m.axis_order === 'xyz' ? m.roi_size : [m.roi_size[2], m.roi_size[1], m.roi_size[0]];

  const inMeta = io.inputMetadata.find((v) => v.name === m.input_name);
  if (!inMeta) {
    problems.push(`model input '${m.input_name}' named by the manifest does not exist (model inputs: ${io.inputNames.join(', ') || 'none'})`);
  } else if (io.inputNames.length !== 1) {
    problems.push(`model has ${io.inputNames.length} inputs (${io.inputNames.join(', ')}); the pipeline feeds exactly one`);
  }
  if (inMeta && inMeta.isTensor) {
    if (inMeta.type !== 'float32') problems.push(`model input '${m.input_name}' is ${inMeta.type}, the pipeline feeds float32`);
    const s = inMeta.shape as readonly Dim[];
    if (s.length > 0) {
      if (s.length !== 5) problems.push(`model input '${m.input_name}' has rank ${s.length}, manifest implies rank 5 [N, C, ${m.axis_order.split('').join(', ')}]`);
      else {
        if (typeof s[1] === 'number' && s[1] !== m.channels.length) {
          problems.push(`model input '${m.input_name}' expects ${s[1]} channels, manifest lists ${m.channels.length} (${m.channels.join(', ')})`);
        }
        for (let a = 0; a < 3; a++) {
          const d = s[a + 2];
          if (typeof d === 'number' && d !== spatial[a]) {
            problems.push(`model input '${m.input_name}' has fixed spatial shape [${s.slice(2).join(', ')}] (${m.axis_order}), manifest roi_size gives [${spatial.join(', ')}]`);
            break;
          }
        }
      }
    }
  } else if (inMeta) problems.push(`model input '${m.input_name}' is not a tensor`);

  const outMeta = io.outputMetadata.find((v) => v.name === m.output_name);
  if (!outMeta) {
    problems.push(`model output '${m.output_name}' named by the manifest does not exist (model outputs: ${io.outputNames.join(', ') || 'none'})`);
  } else if (outMeta.isTensor) {
    if (outMeta.type !== 'float32') problems.push(`model output '${m.output_name}' is ${outMeta.type}, the pipeline reads float32`);
    const s = outMeta.shape as readonly Dim[];
    const k = outputChannels(m);
    if (s.length > 0) {
      if (s.length !== 5) problems.push(`model output '${m.output_name}' has rank ${s.length}, manifest implies rank 5 [N, K, spatial...]`);
      else if (typeof s[1] === 'number' && s[1] !== k) {
        problems.push(`model output '${m.output_name}' has ${s[1]} channels, manifest output convention ${m.output.convention} needs ${k}`);
      }
    }
  } else problems.push(`model output '${m.output_name}' is not a tensor`);
  return problems;
}

/** Throws one Error listing every mismatch. */
export function assertModelMatchesManifest(io: SessionIo, m: ModelManifest, source = m.name): void {
  const problems = modelManifestMismatches(io, m);
  if (problems.length) throw new Error(`model ${source} does not match its manifest: ${problems.join('; ')}`);
}
