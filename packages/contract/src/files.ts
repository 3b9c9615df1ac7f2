/**
 * The file routes, on sandboxd (`/files...`) and as `/v1/sandboxes/:id/files...`: `GET /files` is
 * the raw bytes, `DELETE /files` 204; `PUT /files`, `GET /files/stat`, `POST /files/mkdir` and
 * `POST /files/move` answer a FileEntry (stat and list describe a symlink itself, never its target).
 */
import { z } from 'zod';

export const pathQuerySchema = z.object({ path: z.string().min(1) });

export const listQuerySchema = z.object({
  path: z.string().min(1).default('.'),
  /** 1 lists the directory's children; larger values descend. */
  depth: z.coerce.number().int().min(1).max(32).default(1),
});

export const writeQuerySchema = z.object({
  path: z.string().min(1),
  /** Octal permission bits as a string, e.g. "755". */
  mode: z
    .string()
    .regex(/^[0-7]{3,4}$/, 'mode is octal, e.g. 644')
    .optional(),
});

export const deleteQuerySchema = z.object({
  path: z.string().min(1),
  recursive: z.enum(['true', 'false']).default('false'),
});

export const mkdirRequestSchema = z.strictObject({
  path: z.string().min(1),
  /** Create missing parents and succeed if it exists (like `mkdir -p`). Default true. */
  parents: z.boolean().default(true),
});
/** `POST .../files/mkdir` body. */
export type MkdirRequest = z.input<typeof mkdirRequestSchema>;

export const moveRequestSchema = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  /** Replace an existing destination. Default false. */
  overwrite: z.boolean().default(false),
});
/** `POST .../files/move` body. */
export type MoveRequest = z.input<typeof moveRequestSchema>;

const fileTypeSchema = z.enum(['file', 'directory', 'symlink', 'other']);
export type FileType = z.output<typeof fileTypeSchema>;

export const fileEntrySchema = z.object({
  /** Base name. */
  name: z.string(),
  /** Path relative to the workspace root, with `/` separators. */
  path: z.string().describe('Relative to the workspace root'),
  type: fileTypeSchema,
  /** Bytes. */
  size: z.number().int(),
  /** Permission bits, e.g. 0o644 as 420. */
  mode: z.number().int(),
  /** ISO 8601 modification time. */
  modifiedAt: z.iso.datetime(),
  /** Present on symlinks: the link text as stored. */
  symlinkTarget: z.string().optional(),
});
/** A file or directory in the sandbox's workspace. */
export type FileEntry = z.output<typeof fileEntrySchema>;

export const fileListSchema = z.object({ entries: z.array(fileEntrySchema) });
/** `GET .../files/list` answer. */
export type FileListResponse = z.output<typeof fileListSchema>;
