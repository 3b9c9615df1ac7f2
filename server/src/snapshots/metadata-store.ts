/**
 * Where the catalog keeps snapshot records and key heads. Only the primitives live here; the rules
 * that use them (upload first, CAS, cleanup, retention, moving a deleted head back) are the
 * catalog's, written once.
 *
 * Two implementations: RedisMetadataStore (Lua CAS, safe across every worker and replica sharing
 * the Redis) and DocumentMetadataStore (JSON documents beside the blobs, CAS safe within one
 * server process).
 */
import type { SnapshotRecord } from './snapshot-store.js';

export interface SnapshotMetadataStore {
  /** Stores a record that belongs to no key's line (key null). */
  putRecord(record: SnapshotRecord): Promise<void>;
  getRecord(id: string): Promise<SnapshotRecord | null>;
  /** Every record, or those of one key; in no particular order. */
  listRecords(filter: { key?: string }): Promise<SnapshotRecord[]>;
  /** Removes the record (and its place in its key's line); the head is the caller's business. */
  deleteRecord(record: SnapshotRecord): Promise<void>;
  /** The id the key's head points at, or null. */
  getHead(key: string): Promise<string | null>;
  /**
   * Atomically: if the head of `record.key` is `expectedHead` (null: no head), stores `record` and
   * points the head at it, and answers true; otherwise changes nothing and answers false.
   */
  commitHead(record: SnapshotRecord & { key: string }, expectedHead: string | null): Promise<boolean>;
  /** Atomically: if the key's head is `expected`, points it at `next` (null: clears it). */
  moveHead(key: string, expected: string, next: string | null): Promise<boolean>;
  close(): Promise<void>;
}
