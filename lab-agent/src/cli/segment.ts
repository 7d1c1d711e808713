/**
 * `lab-agent segment --study DIR --out OUT [--model M]`: runs the segmentation pipeline on a local study
 * (DIR/t1, DIR/t1c, DIR/t2, DIR/flair folders of DICOM files) with no job API, and writes OUT/seg.dcm,
 * OUT/result.json and OUT/preview.png. The onnx runner runs the same `segmentStudy`.
 */
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../imaging/inference/session.js';
import { DEMO_MODEL_DIR, loadModel } from '../imaging/model/load-model.js';
import { MODALITIES, type Modality } from '../imaging/model/manifest.js';
import { segmentStudy, type StudyInput } from '../imaging/pipeline.js';

const program = new Command('segment')
  .description('Segment a local four-series MR study (t1/, t1c/, t2/, flair/) with an ONNX model')
  .requiredOption('--study <dir>', 'study folder holding t1/, t1c/, t2/ and flair/ DICOM folders')
  .requiredOption('--out <dir>', 'output folder for seg.dcm, result.json and preview.png')
  .option('--model <path>', 'model manifest, folder with model.json, or .onnx with model.json beside it', DEMO_MODEL_DIR)
  .addOption(new Option('--provider <name>', 'execution provider (falls back to cpu with a warning)').choices([...EXECUTION_PROVIDERS]).default('cpu'))
  .addOption(new Option('--reference <modality>', "reference series (default: the manifest's)").choices([...MODALITIES]))
  .option('--allow-different-frame-of-reference', 'resample series with different FrameOfReferenceUIDs (only if registered)')
  .option('--threads <n>', 'CPU threads for the model', (v) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a positive integer');
    return Number(v);
  })
  .option('--quiet', 'no progress on stderr');

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    study: string; out: string; model: string; provider: ExecutionProvider; reference?: Modality;
    allowDifferentFrameOfReference?: boolean; threads?: number; quiet?: boolean;
  }>();
  if (!existsSync(o.study) || !statSync(o.study).isDirectory()) throw new Error(`study folder ${o.study} does not exist`);
  // Every modality's folder is named; only those the model needs are read, and a missing one fails
  // with its path in the message.
  const study: StudyInput = Object.fromEntries(MODALITIES.map((m) => [m, path.join(o.study, m)]));

  const ctrl = new AbortController();
  process.once('SIGINT', () => ctrl.abort(new Error('interrupted')));
  const say = (s: string): void => {
    if (!o.quiet) process.stderr.write(s);
  };
  const model = await loadModel(o.model, {
    provider: o.provider,
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    ...(o.threads ? { intraOpThreads: o.threads } : {}),
  });
  try {
    say(`model ${model.manifest.name} ${model.manifest.version} on ${model.provider}\n`);
    // A terminal gets one updating line; a pipe or log file gets a line per finished stage.
    const tty = process.stderr.isTTY;
    let last = '';
    const out = await segmentStudy(study, o.out, {
      model,
      signal: ctrl.signal,
      progress: (stage, f) => {
        const line = `${stage} ${Math.round(f * 100)}%`;
        if (line === last) return;
        last = line;
        if (tty) say(`\r${line.padEnd(24)}`);
        else if (f === 1) say(`${stage} done\n`);
      },
      ...(o.reference ? { referenceModality: o.reference } : {}),
      ...(o.allowDifferentFrameOfReference ? { allowDifferentFrameOfReference: true } : {}),
    });
    if (tty) say('\r'.padEnd(26) + '\r');
    const result = { ...out.result, execution_provider: model.provider };
    await writeFile(path.join(o.out, 'result.json'), JSON.stringify(result, null, 2) + '\n');
    const v = result.volumes_ml ?? {};
    console.log(
      `whole tumour ${result.whole_tumor_ml} mL (${Object.entries(v).map(([k, x]) => `${k} ${x}`).join(', ')}); ` +
        `inference ${result.inference_time_seconds} s, total ${result.timings?.total} s; wrote ${out.segPath}, ${out.previewPath}, ${path.join(o.out, 'result.json')}`,
    );
  } finally {
    await model.release();
  }
}

main().catch((err: unknown) => {
  console.error(`segment: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
