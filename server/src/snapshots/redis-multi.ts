import type { ChainableCommander } from 'ioredis';

/** Runs a MULTI and throws the first command's error: ioredis' exec() resolves even when some failed. */
export async function execAll(multi: ChainableCommander): Promise<void> {
  const results = await multi.exec();
  if (results === null) throw new Error('a Redis MULTI was discarded');
  for (const [err] of results) if (err) throw err;
}
