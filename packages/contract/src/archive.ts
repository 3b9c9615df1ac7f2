/**
 * `GET /archive` (a tar of a directory: application/x-tar, or application/gzip) and `PUT /archive`
 * (a tar extracted into one), on sandboxd and as `/v1/sandboxes/:id/archive`.
 */
import { z } from 'zod';

export const archiveQuerySchema = z.object({
  path: z.string().min(1).default('.'),
  /** gzip the tar (GET) or expect a gzipped tar (PUT). */
  gzip: z.enum(['true', 'false']).default('false'),
});

export const archiveExtractSchema = z.object({
  /** How many archive entries were written into the directory. */
  entries: z.number().int().describe('Archive entries written into the directory'),
});
/** `PUT .../archive` answer. */
export type ArchiveUploadResult = z.output<typeof archiveExtractSchema>;
