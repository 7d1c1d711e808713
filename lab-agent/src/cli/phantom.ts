/**
 * `npm run phantom -- --out DIR [...]`: writes a synthetic four-series MR study with a tumour, as DICOM,
 * and DIR/truth.json with the true subregion volumes.
 */
import { Command, InvalidArgumentError } from 'commander';
import { synthesizePhantom, MODALITIES, type Modality } from '../phantom/synthesize.js';
import { writePhantomStudy } from '../phantom/write-study.js';
import type { Vec3 } from '../imaging/volume.js';

function triple(kind: 'int' | 'float') {
  return (v: string): Vec3 => {
    const parts = v.split(',').map(Number);
    const ok = parts.length === 3 && parts.every((x) => Number.isFinite(x) && x > 0 && (kind === 'float' || Number.isInteger(x)));
    if (!ok) throw new InvalidArgumentError(`expected three positive ${kind === 'int' ? 'integers' : 'numbers'} separated by commas`);
    return parts as Vec3;
  };
}

function missing(v: string): { modality: Modality; index: number } {
  const m = /^([a-z0-9]+):(\d+)$/.exec(v);
  if (!m || !(MODALITIES as readonly string[]).includes(m[1]!)) throw new InvalidArgumentError(`expected MODALITY:INDEX with MODALITY one of ${MODALITIES.join(', ')}`);
  return { modality: m[1] as Modality, index: Number(m[2]) };
}

const program = new Command('phantom')
  .description('Write a synthetic brain-tumour MR study (t1/, t1c/, t2/, flair/ DICOM series) and truth.json')
  .requiredOption('--out <dir>', 'output directory')
  .option('--seed <n>', 'random seed', (v) => {
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError('expected an integer');
    return Number(v);
  }, 1)
  .option('--size <x,y,z>', 'grid size (columns, rows, slices)', triple('int'), [96, 96, 64] as Vec3)
  .option('--spacing <x,y,z>', 'voxel size in mm', triple('float'), [2, 2, 2] as Vec3)
  .option('--geometry-differ', 'write T1/T1c/T2 on a different grid than FLAIR (same frame of reference)')
  .option('--missing-slice <modality:index>', 'drop one slice file of one series', missing)
  .option('--shuffle', 'file names and instance numbers unrelated to slice position')
  .option('--implicit-vr', 'implicit VR little endian instead of explicit')
  .option('--patient-name <s>', 'PatientName (DICOM PN, e.g. DOE^JANE)')
  .option('--patient-id <s>', 'PatientID')
  .option('--birth-date <YYYYMMDD>', 'PatientBirthDate');

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    out: string; seed: number; size: Vec3; spacing: Vec3; geometryDiffer?: boolean; missingSlice?: { modality: Modality; index: number };
    shuffle?: boolean; implicitVr?: boolean; patientName?: string; patientId?: string; birthDate?: string;
  }>();
  const t0 = performance.now();
  const phantom = synthesizePhantom({ seed: o.seed, size: o.size, spacing: o.spacing });
  const study = await writePhantomStudy(phantom, o.out, {
    geometryDiffer: o.geometryDiffer,
    missingSlice: o.missingSlice,
    shuffle: o.shuffle,
    implicitVR: o.implicitVr,
    patient: { name: o.patientName, id: o.patientId, birthDate: o.birthDate },
  });
  // Patient identity is deliberately not printed.
  const files = Object.values(study.series).reduce((n, s) => n + s.files.length, 0);
  console.log(
    `wrote ${files} DICOM files to ${o.out} (seed ${o.seed}, ${o.size.join('x')} @ ${o.spacing.join('x')} mm) in ${Math.round(performance.now() - t0)} ms; ` +
      `whole tumour ${phantom.truth.whole_tumor_ml} mL; truth in ${study.truthFile}`,
  );
}

main().catch((err: unknown) => {
  console.error(`phantom: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
