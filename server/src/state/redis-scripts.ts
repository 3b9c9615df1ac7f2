/**
 * The Lua scripts that make the Redis store's read-modify-write operations atomic: Redis runs a
 * script to completion before it serves any other client, so no two workers or replicas can
 * interleave inside one.
 *
 * Record scripts take the deployment's key prefix (`<keyPrefix>:<deploymentId>:`) as ARGV[1] and
 * build the index and pool keys from it, because which index a record belongs in is only known
 * once its fields are read. That is fine on a standalone Redis (the only mode REDIS_* configures);
 * a Redis Cluster would need every key of a deployment in one hash slot.
 *
 * Records are hashes whose field values are JSON (a string field is stored as `"warm"`, a null as
 * `null`); the scripts decode only the three indexed fields and never re-encode a whole record.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A script run by its SHA1, sent whole only when this Redis has not seen it yet (or restarted). */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Shared by the record scripts. `indexed(key)` reads the fields the indexes are keyed by;
 * `reindex(id, before, after)` moves the id between index sets (status:, session:, type:, tenant:, all) and
 * drops it from its pool once it stops being a warm sandbox of that type. `before`/`after` are nil
 * for a record that does not exist before / after the change. Only warm records enter a pool
 * (PUSH_WARM) and leaving 'warm' takes them out, so a pool's length is its warm count.
 */
const RECORD_PRELUDE = `
local P = ARGV[1]
local INDEXES = { 'status', 'session', 'type', 'tenant' }

local function text(encoded)
  if not encoded then return nil end
  local value = cjson.decode(encoded)
  if type(value) == 'string' then return value end
  return nil
end

local function indexed(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  local v = redis.call('HMGET', key, 'status', 'sessionId', 'type', 'tenantId')
  return { status = text(v[1]), session = text(v[2]), type = text(v[3]), tenant = text(v[4]) }
end

-- The tenant's records are its index set, so a tenant slot is taken and freed with the record.
local function tenantFull(tenant, max)
  return max > 0 and redis.call('SCARD', P .. 'tenant:' .. tenant) >= max
end

local function reindex(id, before, after)
  for _, name in ipairs(INDEXES) do
    local was = before and before[name]
    local is = after and after[name]
    if was ~= is then
      if was then redis.call('SREM', P .. name .. ':' .. was, id) end
      if is then redis.call('SADD', P .. name .. ':' .. is, id) end
    end
  end
  if before and before.status == 'warm' and not (after and after.status == 'warm' and after.type == before.type) then
    redis.call('LREM', P .. 'pool:' .. before.type, 0, id)
  end
  if after then
    redis.call('SADD', P .. 'all', id)
  else
    redis.call('SREM', P .. 'all', id)
  end
end
`;

function recordScript(body: string): LuaScript {
  return new LuaScript(`${RECORD_PRELUDE}\n${body}`);
}

/** ARGV: prefix, id, field, json, field, json... Replaces the record whole. */
export const PUT = recordScript(`
local id = ARGV[2]
local key = P .. 'sbx:' .. id
local before = indexed(key)
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 3))
reindex(id, before, indexed(key))
`);

/** ARGV: prefix, id, field, json... Returns the updated record's HGETALL, or nil if it does not exist. */
export const UPDATE = recordScript(`
local id = ARGV[2]
local key = P .. 'sbx:' .. id
local before = indexed(key)
if not before then return nil end
if #ARGV > 2 then
  redis.call('HSET', key, unpack(ARGV, 3))
  reindex(id, before, indexed(key))
end
return redis.call('HGETALL', key)
`);

/** ARGV: prefix, id. Removes the record, its index entries and its pool entry. */
export const DELETE = recordScript(`
local id = ARGV[2]
local key = P .. 'sbx:' .. id
local before = indexed(key)
if not before then return 0 end
reindex(id, before, nil)
redis.call('DEL', key)
return 1
`);

/**
 * ARGV: prefix, n, index suffix x n (e.g. 'status:warm'). Returns the HGETALL of every record in
 * all the named index sets (every record when n = 0), as one consistent snapshot.
 */
export const LIST = recordScript(`
local n = tonumber(ARGV[2])
local ids
if n == 0 then
  ids = redis.call('SMEMBERS', P .. 'all')
else
  local sets = {}
  for i = 1, n do sets[i] = P .. ARGV[2 + i] end
  ids = redis.call('SINTER', unpack(sets))
end
local out = {}
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', P .. 'sbx:' .. id)
  if #fields > 0 then out[#out + 1] = fields end
end
return out
`);

/** ARGV: prefix, type, id. Pools the id once (at the tail) if its record is a warm sandbox of that type. */
export const PUSH_WARM = recordScript(`
local t, id = ARGV[2], ARGV[3]
local r = indexed(P .. 'sbx:' .. id)
if not r or r.status ~= 'warm' or r.type ~= t then return 0 end
local pool = P .. 'pool:' .. t
redis.call('LREM', pool, 0, id)
redis.call('RPUSH', pool, id)
return 1
`);

/**
 * ARGV: prefix, type, now (epoch ms)[, tenant, max]. Pops pooled ids until one names a warm record
 * of that type, marks it claimed (and the tenant's) and returns its HGETALL; ids of records gone or
 * no longer warm are dropped. With a tenant already holding `max` records, claims nothing.
 */
export const CLAIM_WARM = recordScript(`
local t, now, tenant = ARGV[2], ARGV[3], ARGV[4]
if tenant and tenantFull(tenant, tonumber(ARGV[5])) then return nil end
local pool = P .. 'pool:' .. t
while true do
  local id = redis.call('LPOP', pool)
  if not id then return nil end
  local key = P .. 'sbx:' .. id
  local before = indexed(key)
  if before and before.status == 'warm' and before.type == t then
    redis.call('HSET', key, 'status', '"claimed"', 'claimedAt', now, 'lastActiveAt', now)
    if tenant then redis.call('HSET', key, 'tenantId', cjson.encode(tenant)) end
    reindex(id, before, indexed(key))
    return redis.call('HGETALL', key)
  end
end
`);

/**
 * ARGV: prefix, id, tenant, max. Makes the record the tenant's unless the tenant holds `max` records
 * already; 1 if the record is the tenant's afterwards, 0 if the tenant is full or the record is gone.
 */
export const ASSIGN_TENANT = recordScript(`
local id, tenant = ARGV[2], ARGV[3]
local key = P .. 'sbx:' .. id
local before = indexed(key)
if not before then return 0 end
if before.tenant == tenant then return 1 end
if tenantFull(tenant, tonumber(ARGV[4])) then return 0 end
redis.call('HSET', key, 'tenantId', cjson.encode(tenant))
reindex(id, before, indexed(key))
return 1
`);

/**
 * KEYS: counter. ARGV: limit, window ms. Counts one event; the first opens the window (the key's
 * expiry). Returns { 1 if within the limit else 0, ms until the window closes }.
 */
export const COUNT_IN_WINDOW = new LuaScript(`
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local left = redis.call('PTTL', KEYS[1])
-- A counter without an expiry (written by hand, or an expiry lost) would block forever: give it one.
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
if count <= tonumber(ARGV[1]) then return { 1, left } end
return { 0, left }
`);

/** KEYS: record. ARGV: now (epoch ms). */
export const TOUCH = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'lastActiveAt', ARGV[1])
return 1
`);

/** KEYS: instance set. ARGV: id, max (0: unlimited). 1 if the id holds a slot afterwards. */
export const RESERVE_INSTANCE = new LuaScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
local max = tonumber(ARGV[2])
if max > 0 and redis.call('SCARD', KEYS[1]) >= max then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
`);

/**
 * KEYS: taken ports, cursor, the owner's record. ARGV: start, end, owner. When the record exists its
 * hostPort is set to the port handed out, in the same step. Taken ports are a sorted set scored by port
 * with members `<port>:<owner>`. ZCOUNT says whether a span still has a free port (fewer taken
 * than its width), so halving the span finds the lowest free one in O(log range) counts: no list of
 * free ports is kept and no port is probed one by one, even on a nearly full range. The search
 * starts at the cursor, just past the last port handed out, and wraps once, so a freed port stays
 * out of use for a while (its old connections drain before a new sandbox publishes on it).
 */
export const ALLOCATE_PORT = new LuaScript(`
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])

local function hasFree(from, to)
  return redis.call('ZCOUNT', KEYS[1], from, to) < to - from + 1
end

local function lowestFree(from, to)
  if from > to or not hasFree(from, to) then return nil end
  while from < to do
    local mid = math.floor((from + to) / 2)
    if hasFree(from, mid) then to = mid else from = mid + 1 end
  end
  return from
end

local cursor = tonumber(redis.call('GET', KEYS[2])) or first
if cursor < first or cursor > last then cursor = first end
local port = lowestFree(cursor, last) or lowestFree(first, cursor - 1)
if not port then return nil end
redis.call('ZADD', KEYS[1], port, port .. ':' .. ARGV[3])
redis.call('SET', KEYS[2], port + 1)
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('HSET', KEYS[3], 'hostPort', port) end
return port
`);

/** KEYS: taken ports. ARGV: port, owner. The member names the owner, so only the owner frees it. */
export const RELEASE_PORT = new LuaScript(`
return redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
`);

/** KEYS: lease. ARGV: holder, ttl ms. Takes a free lease or renews one the holder has; 1 if held. */
export const ACQUIRE_LEASE = new LuaScript(`
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`);

/** KEYS: lease. ARGV: holder. Only the holder can let go. */
export const RELEASE_LEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`);
