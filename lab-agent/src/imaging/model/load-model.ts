/**
 * A segmentation model ready to run: manifest + checked onnxruntime session + window predictor.
 * `SharedModel` holds one per agent: created on first use (or in the runner's init) and reused by every job.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InferenceSession } from 'onnxruntime-node';
import { assertModelMatchesManifest } from './check.js';
import { readManifest, type ModelManifest } from './manifest.js';
import { openSession, type ExecutionProvider } from '../inference/session.js';
import { onnxWindowPredictor } from '../inference/onnx-predictor.js';
import type { WindowPredictor } from '../inference/sliding-window.js';

/** The demo model committed in the repository (models/demo). */
export const DEMO_MODEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../models/demo');

export interface ModelLoadOptions {
  provider?: ExecutionProvider;
  onWarning?: (message: string) => void;
  intraOpThreads?: number;
}

export interface SegmentationModel {
  manifest: ModelManifest;
  manifestPath: string;
  onnxPath: string;
  /** The execution provider in use (may be 'cpu' after a fallback). */
  provider: ExecutionProvider;
  fallbackReason?: string;
  session: InferenceSession;
  predict: WindowPredictor;
  release(): Promise<void>;
}

/** Loads `p` (a manifest JSON, a directory with model.json, or an .onnx with model.json beside it). */
export async function loadModel(p: string, o: ModelLoadOptions = {}): Promise<SegmentationModel> {
  const { manifest, manifestPath, onnxPath } = await readManifest(p);
  const opened = await openSession(onnxPath, {
    provider: o.provider ?? 'cpu',
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
    ...(o.intraOpThreads ? { intraOpThreads: o.intraOpThreads } : {}),
  });
  try {
    assertModelMatchesManifest(opened.session, manifest, onnxPath);
  } catch (e) {
    await opened.session.release();
    throw e;
  }
  return {
    manifest,
    manifestPath,
    onnxPath,
    provider: opened.provider,
    ...(opened.fallbackReason ? { fallbackReason: opened.fallbackReason } : {}),
    session: opened.session,
    predict: onnxWindowPredictor(opened.session, { inputName: manifest.input_name, outputName: manifest.output_name, axisOrder: manifest.axis_order }),
    release: () => opened.session.release(),
  };
}

/** One model per agent: the first `get()` loads it, later calls reuse it; a failed load is retried next time. */
export class SharedModel {
  private pending: Promise<SegmentationModel> | undefined;
  constructor(
    private readonly modelPath: string,
    private readonly options: ModelLoadOptions = {},
  ) {}

  get(): Promise<SegmentationModel> {
    if (!this.pending) {
      this.pending = loadModel(this.modelPath, this.options);
      this.pending.catch(() => {
        this.pending = undefined;
      });
    }
    return this.pending;
  }

  async close(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (p) await (await p.catch(() => undefined))?.release();
  }
}
