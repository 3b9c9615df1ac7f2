import { z } from 'zod';

/** Env given to processes: names are letters, digits and `_`; values are strings. */
export const envSchema = z.record(
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _, not starting with a digit'),
  z.string(),
);
