/**
 * The body of every error answer, `{"error": {"code", "message", "details?"}}`, and the one parser
 * the server (reading sandboxd) and the SDK (reading the server) share.
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export const errorCodeSchema = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

export const errorBodySchema = z
  .object({
    error: z.object({
      code: errorCodeSchema,
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('Every error answer; `code` is stable, `message` is for humans');

export type ErrorBody = z.output<typeof errorBodySchema>;
/** What an error body says: its code, message and details. */
export type ErrorDescription = ErrorBody['error'];

/** The error an answer's text carries; undefined when it is no well-formed error body (a proxy's HTML page). */
export function parseErrorBody(text: string): ErrorDescription | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  return errorBodySchema.safeParse(json).data?.error;
}
