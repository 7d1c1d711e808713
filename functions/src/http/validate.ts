import type { z } from 'zod';
import { HttpError } from './types.js';

/** Parses with a zod schema; a failure is a 400 whose message names the offending fields. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path' | 'header'): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const details = r.error.issues.slice(0, 10).map((i) => ({
    path: i.path.length ? i.path.join('.') : where,
    message: i.message,
  }));
  const first = details[0]!;
  throw new HttpError(400, `invalid ${where}: ${first.path}: ${first.message}`, { details });
}
