/**
 * Creates the onnxruntime session: the configured execution provider, or CPU with a warning when that
 * provider cannot start (no CUDA libraries, no DirectML, no GPU adapter). onnxruntime reports all of
 * these as an exception at session creation, so that is the one place the fallback happens.
 */
import ort from 'onnxruntime-node';

export const EXECUTION_PROVIDERS = ['cuda', 'dml', 'webgpu', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];

export interface SessionOptions {
  provider: ExecutionProvider;
  /** Called once when the requested provider failed and CPU is used instead. */
  onWarning?: (message: string) => void;
  /** CPU threads for one operator (onnxruntime default: all cores). */
  intraOpThreads?: number;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** The provider actually in use. */
  provider: ExecutionProvider;
  /** Why the requested provider was not used, when it was not. */
  fallbackReason?: string;
}

function sessionOptions(provider: ExecutionProvider, o: SessionOptions): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    ...(o.intraOpThreads ? { intraOpNumThreads: o.intraOpThreads } : {}),
  };
}

export async function openSession(onnxPath: string, o: SessionOptions): Promise<OpenedSession> {
  if (!EXECUTION_PROVIDERS.includes(o.provider)) {
    throw new Error(`unknown execution provider '${String(o.provider)}' (expected one of ${EXECUTION_PROVIDERS.join(', ')})`);
  }
  if (o.provider !== 'cpu') {
    try {
      // Fatal-only native logging: onnxruntime prints the failed provider load itself; we report it once.
      const opts = { ...sessionOptions(o.provider, o), logSeverityLevel: 4 as const };
      return { session: await ort.InferenceSession.create(onnxPath, opts), provider: o.provider };
    } catch (e) {
      const reason = firstLine(e);
      o.onWarning?.(`execution provider '${o.provider}' could not start (${reason}); falling back to CPU`);
      const session = await createCpu(onnxPath, o);
      return { session, provider: 'cpu', fallbackReason: reason };
    }
  }
  return { session: await createCpu(onnxPath, o), provider: 'cpu' };
}

async function createCpu(onnxPath: string, o: SessionOptions): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(onnxPath, sessionOptions('cpu', o));
  } catch (e) {
    throw new Error(`cannot load ONNX model ${onnxPath}: ${firstLine(e)}`);
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split('\n')[0] ?? msg;
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
