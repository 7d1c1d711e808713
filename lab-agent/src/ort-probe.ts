/**
 * Which onnxruntime execution providers work on this PC, tried for real: a one-node model (y = x + x)
 * is built in memory, a session is created with only that provider, and run. onnxruntime reports a
 * missing CUDA library, DirectML on Linux or no GPU adapter as an exception at session creation.
 */
export const PROBED_PROVIDERS = ['cpu', 'cuda', 'dml', 'webgpu'] as const;
export type ProbedProvider = (typeof PROBED_PROVIDERS)[number];

export interface ProviderProbe {
  provider: ProbedProvider;
  ok: boolean;
  detail: string;
}

export async function probeProviders(providers: readonly ProbedProvider[] = PROBED_PROVIDERS): Promise<ProviderProbe[]> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = (await import('onnxruntime-node')).default ?? (await import('onnxruntime-node'));
  } catch (err) {
    const detail = `onnxruntime-node cannot be loaded: ${firstLine(err)}`;
    return providers.map((provider) => ({ provider, ok: false, detail }));
  }
  const model = addModel();
  const out: ProviderProbe[] = [];
  for (const provider of providers) {
    const t0 = performance.now();
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [provider], logSeverityLevel: 4 });
      try {
        const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]);
        const r = await session.run({ x });
        const y = r.y?.data as Float32Array | undefined;
        if (!y || y[3] !== 8) throw new Error('the test model computed a wrong answer');
      } finally {
        await session.release();
      }
      out.push({ provider, ok: true, detail: `session created and ran (${(performance.now() - t0).toFixed(0)} ms)` });
    } catch (err) {
      const line = firstLine(err);
      // Dawn's assertion text says nothing to a lab PC's operator; what it means does.
      out.push({ provider, ok: false, detail: /RequestAdapterStatus/.test(line) ? 'no WebGPU adapter could be created' : line });
    }
  }
  return out;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = (msg.split('\n').find((l) => l.trim()) ?? msg).trim();
  return line.length > 240 ? line.slice(0, 240) + '...' : line;
}

// ---- a minimal ONNX ModelProto, protobuf-encoded by hand (no protobuf dependency for 200 bytes) ----

function varint(n: number): number[] {
  const b: number[] = [];
  while (n > 127) {
    b.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  b.push(n);
  return b;
}
const num = (field: number, v: number) => [...varint(field << 3), ...varint(v)];
const bytes = (field: number, v: number[]) => [...varint((field << 3) | 2), ...varint(v.length), ...v];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, 'utf8')]);

function tensorValue(name: string): number[] {
  const dim = bytes(1, num(1, 4)); // Dimension { dim_value: 4 }
  const shape = bytes(2, dim); // TypeProto.Tensor.shape
  const tensorType = bytes(1, [...num(1, 1), ...shape]); // elem_type FLOAT = 1
  return [...str(1, name), ...bytes(2, tensorType)]; // ValueInfoProto { name, type }
}

export function addModel(): Uint8Array {
  const node = [...str(1, 'x'), ...str(1, 'x'), ...str(2, 'y'), ...str(3, 'add'), ...str(4, 'Add')];
  const graph = [...bytes(1, node), ...str(2, 'probe'), ...bytes(11, tensorValue('x')), ...bytes(12, tensorValue('y'))];
  const opset = [...str(1, ''), ...num(2, 13)];
  return Uint8Array.from([...num(1, 8), ...str(2, 'lab-agent-doctor'), ...bytes(7, graph), ...bytes(8, opset)]);
}
