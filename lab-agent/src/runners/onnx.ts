/**
 * The built-in `onnx` runner: fetch the four series through the SeriesSource, then the segmentation
 * pipeline (the same `segmentStudy` that `lab-agent segment` runs). One model session per agent, loaded in
 * init() and reused by every job.
 */
import path from 'node:path';
import type { ExecutionProvider } from '../imaging/inference/session.js';
import { DEMO_MODEL_DIR, SharedModel } from '../imaging/model/load-model.js';
import type { Modality } from '../imaging/model/manifest.js';
import { segmentStudy } from '../imaging/pipeline.js';
import { fetchStudy } from '../sources/fetch-study.js';
import type { SeriesSource } from '../sources/types.js';
import type { JobContext, Runner, RunnerCheck, RunnerResult } from './types.js';

export interface OnnxRunnerOptions {
  source: SeriesSource;
  /** A manifest, a folder with model.json, or an .onnx with model.json beside it (default: the demo model). */
  modelPath?: string;
  provider?: ExecutionProvider;
  intraOpThreads?: number;
  referenceModality?: Modality;
  allowDifferentFrameOfReference?: boolean;
  /** Agent-level warnings (e.g. the GPU provider fell back to CPU). */
  onWarning?: (message: string) => void;
  /**
   * Stores the SEG where users see it (e.g. uploads it to the PACS) and returns its id for
   * `seg_instance_id`; without it the SEG stays in the job's work dir and `seg_instance_id` is null.
   */
  storeSeg?: (segPath: string, ctx: JobContext) => Promise<string | null>;
}

export class OnnxRunner implements Runner {
  readonly name = 'onnx';
  /** Where series come from (also read by `lab-agent doctor`). */
  readonly source: SeriesSource;
  private readonly model: SharedModel;

  constructor(private readonly o: OnnxRunnerOptions) {
    this.source = o.source;
    this.model = new SharedModel(o.modelPath ?? DEMO_MODEL_DIR, {
      ...(o.provider ? { provider: o.provider } : {}),
      ...(o.intraOpThreads ? { intraOpThreads: o.intraOpThreads } : {}),
      ...(o.onWarning ? { onWarning: o.onWarning } : {}),
    });
  }

  async init(): Promise<void> {
    await this.model.get();
  }

  /**
   * Throws on failure (bad input, cancellation, a failed download); the error names the series,
   * file or model at fault, and is a retryable RunnerFailure where another attempt may succeed.
   */
  async run(ctx: JobContext): Promise<RunnerResult> {
    const model = await this.model.get();
    const t0 = performance.now();
    ctx.progress('fetch', 0);
    const study = await fetchStudy(this.source, ctx.series_ids, path.join(ctx.workDir, 'series'), ctx.signal, (p) => {
      if (p.totalFiles) ctx.progress('fetch', Math.round((100 * p.files) / p.totalFiles));
    });
    ctx.progress('fetch', 100);
    const fetchSeconds = Math.round(performance.now() - t0) / 1000;

    const out = await segmentStudy(study, path.join(ctx.workDir, 'out'), {
      model,
      signal: ctx.signal,
      progress: (stage, fraction) => ctx.progress(stage, Math.round(fraction * 100)),
      ...(this.o.referenceModality ? { referenceModality: this.o.referenceModality } : {}),
      ...(this.o.allowDifferentFrameOfReference ? { allowDifferentFrameOfReference: true } : {}),
    });

    const segInstanceId = this.o.storeSeg ? await this.o.storeSeg(out.segPath, ctx) : null;
    const timings: Record<string, number> = { fetch: fetchSeconds, ...out.result.timings };
    timings.total = Math.round(performance.now() - t0) / 1000;
    ctx.log('INFO', 'segmentation finished', { whole_tumor_ml: out.result.whole_tumor_ml, timings, provider: model.provider });
    return {
      ...out.result,
      seg_instance_id: segInstanceId,
      timings,
      execution_provider: model.provider,
      // The agent uploads these to the claim's signed URLs (job-runner.ts) and reports them as `outputs`.
      artifacts: { seg: out.segPath, preview: out.previewPath },
    };
  }

  async check(): Promise<RunnerCheck[]> {
    try {
      const m = await this.model.get();
      const fell = m.fallbackReason ? ` (requested ${this.o.provider}, fell back: ${m.fallbackReason})` : '';
      return [
        { name: 'model', ok: true, required: true, detail: `${m.manifest.name} ${m.manifest.version} from ${m.onnxPath}` },
        { name: 'execution provider', ok: !m.fallbackReason, required: false, detail: `${m.provider}${fell}` },
      ];
    } catch (e) {
      return [{ name: 'model', ok: false, required: true, detail: (e as Error).message }];
    }
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}
