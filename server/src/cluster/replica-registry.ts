/**
 * Which replicas (server processes: cluster workers or separately started servers) of a deployment
 * are alive. Each says so by a heartbeat that lasts a TTL; one that stops beating (killed, frozen,
 * cut off) drops out when its TTL runs out. Two questions depend on it: whether a record left
 * 'creating' belongs to a process that died mid-create (the reconciler finishes it), and whether a
 * replica shutting down is the last one of its deployment (only the last one cleans up).
 */
import type { Redis } from 'ioredis';
import { redisExchange } from '../state/errors.js';
import { LuaScript } from '../state/redis-scripts.js';

export interface ReplicaRegistry {
  /** Counts this replica alive for another TTL (joining on the first call). */
  heartbeat(): Promise<void>;
  /** The ids of the replicas alive now. */
  live(): Promise<Set<string>>;
  /** Leaves; resolves with how many other replicas are alive, counted in the same atomic step. */
  leave(): Promise<number>;
}

/** The in-memory store serves one process, so that process is the whole deployment. */
export class SoloReplicaRegistry implements ReplicaRegistry {
  private joined = false;

  constructor(private readonly replicaId: string) {}

  async heartbeat(): Promise<void> {
    this.joined = true;
  }

  async live(): Promise<Set<string>> {
    return new Set(this.joined ? [this.replicaId] : []);
  }

  async leave(): Promise<number> {
    this.joined = false;
    return 0;
  }
}

/** Lua shared by the scripts below: Redis's own clock, so replicas' clocks need not agree. */
const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
`;

/**
 * KEYS: replica set. ARGV: replica id, ttl ms. Scores are expiry times; the key itself expires with
 * its last member, so a deployment whose replicas all died leaves no key behind.
 */
const HEARTBEAT = new LuaScript(`${NOW_MS}
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`);

/** KEYS: replica set. The ids alive now. */
const LIVE = new LuaScript(`${NOW_MS}
return redis.call('ZRANGE', KEYS[1], 0, -1)
`);

/** KEYS: replica set. ARGV: replica id. How many others are alive once it is gone. */
const LEAVE = new LuaScript(`${NOW_MS}
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('ZCARD', KEYS[1])
`);

export interface RedisReplicaRegistryOptions {
  redis: Redis;
  /** `<keyPrefix>:<deploymentId>:replicas`. */
  key: string;
  replicaId: string;
  ttlMs: number;
}

/** Replicas in a sorted set scored by when each one's heartbeat runs out. */
export class RedisReplicaRegistry implements ReplicaRegistry {
  constructor(private readonly options: RedisReplicaRegistryOptions) {}

  heartbeat(): Promise<void> {
    const { redis, key, replicaId, ttlMs } = this.options;
    return redisExchange('replica heartbeat', async () => {
      await HEARTBEAT.run(redis, [key], [replicaId, Math.ceil(ttlMs)]);
    });
  }

  async live(): Promise<Set<string>> {
    const { redis, key } = this.options;
    const ids = await redisExchange('live replicas', () => LIVE.run(redis, [key], []));
    return new Set(Array.isArray(ids) ? ids.map(String) : []);
  }

  async leave(): Promise<number> {
    const { redis, key, replicaId } = this.options;
    const others = await redisExchange('replica leave', () => LEAVE.run(redis, [key], [replicaId]));
    return Number(others);
  }
}
