/**
 * Who a sandbox's code runs as: a numeric `uid:gid`, never root. The server checks a type's
 * `security.user` and hands it to sandboxd as SANDBOXD_RUN_AS, which checks it again at start.
 */
import { z } from 'zod';

/** The run-as identity when none is given: the images' `sandbox` user. */
export const DEFAULT_RUN_AS = '1000:1000';

export interface RunAsIds {
  uid: number;
  gid: number;
}

/** A `uid:gid` string, validated and kept as a string. */
export const runAsSchema = z
  .string()
  .regex(/^\d{1,10}:\d{1,10}$/, { message: 'is uid:gid in numbers, e.g. 1000:1000', abort: true })
  .refine((value) => {
    const { uid, gid } = parseRunAs(value);
    return uid !== 0 && gid !== 0;
  }, 'may not be root (uid or gid 0)');

/** The numbers of a `uid:gid` that runAsSchema accepted. */
export function parseRunAs(value: string): RunAsIds {
  const [uid = 0, gid = 0] = value.split(':').map(Number);
  return { uid, gid };
}
