/** ObjectMeta: its wire shape, and what the apiserver fills in on create (uid, timestamps, generated names). */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { badRequest } from './api-status.js';

const stringMap = z.record(z.string(), z.string());

/** metadata as a client sends it (loose: other fields are kept). */
export const objectMetaSchema = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
});

/** metadata of a stored object: what the client sent plus what the server sets. */
export interface StoredMeta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** Any object the fake stores and watches. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: StoredMeta;
}

/** RFC 3339 in seconds, as metav1.Time serialises. */
export function timestamp(at: Date = new Date()): string {
  return `${at.toISOString().slice(0, 19)}Z`;
}

export function newUid(): string {
  return randomUUID();
}

/**
 * The name of an object a create sends (its name, else one from generateName; '' when neither);
 * a namespace in its metadata must be the request's.
 */
export function createdName(metadata: z.infer<typeof objectMetaSchema>, namespace: string): string {
  if (metadata.namespace !== undefined && metadata.namespace !== '' && metadata.namespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  return metadata.name || (metadata.generateName ? generateName(metadata.generateName) : '');
}

/** What the apiserver sets in a new object's metadata (the store stamps the resourceVersion). */
export function createdMeta(): Pick<
  StoredMeta,
  'uid' | 'resourceVersion' | 'generation' | 'creationTimestamp'
> {
  return { uid: newUid(), resourceVersion: '', generation: 1, creationTimestamp: timestamp() };
}

/** apiserver's names.SimpleNameGenerator: five characters from an alphabet without vowels or look-alikes. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function generateName(prefix: string): string {
  const bytes = randomBytes(5);
  let suffix = '';
  for (const byte of bytes) suffix += NAME_ALPHABET[byte % NAME_ALPHABET.length];
  // The prefix is cut so that the whole name stays within 63 characters, as the generator does.
  return `${prefix.slice(0, 58)}${suffix}`;
}

/** Go's JSON decoding of optional fields: null means absent. */
export function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== null)
        .map(([k, v]) => [k, dropNulls(v)]),
    );
  }
  return value;
}

/** An update (PUT) of `draft` to `next`: labels, annotations and spec; a changed spec is a new generation. */
export function replaceContent<T extends KubeObject & { spec: unknown }>(draft: T, next: T): void {
  draft.metadata.labels = next.metadata.labels;
  draft.metadata.annotations = next.metadata.annotations;
  if (JSON.stringify(draft.spec) !== JSON.stringify(next.spec)) {
    draft.spec = next.spec;
    draft.metadata.generation = (draft.metadata.generation ?? 1) + 1;
  }
}
