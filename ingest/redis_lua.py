"""The Redis patrol's Lua scripts: each runs atomically in Redis, so a claim, a completion or a request is one step
that no other worker can interleave with. Times come from the caller's clock (ARGV), never Redis TIME, so tests
run on simulated time and every worker's hosts must share a wall clock (NTP), as leases do anyway.

ARGV[1] is always the key namespace (see `ingest.redis_keys`); the scripts build the keys from it.
"""

from __future__ import annotations

_KEYS = """
local ns = ARGV[1]
local leases, owners = ns .. 'patrol:leases', ns .. 'patrol:owners'
local failing_leases, state = ns .. 'patrol:failing-leases', ns .. 'patrol:state'
local requests, requested = ns .. 'patrol:requests', ns .. 'patrol:requested'
local function zset(name) return ns .. 'patrol:' .. name end
local function cam(id) return ns .. 'cam:' .. id end
"""

# ARGV: ns, now, lease_s, worker, failing_share, earned, burst, decay, enter, exit, spread_s, max_reclaim
# returns {id, kind, mode_switched_to, lateness, camera hash fields...} or {false, next_due (or -1)}
CLAIM = (
    _KEYS
    + """
local now, lease_s, worker = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local failing_share, earned, burst = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local decay, enter, exit_, spread = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])

-- leases past their expiry (their worker died): back at their original due time, spread when many at once
local stale = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[12]))
for i, id in ipairs(stale) do
  local z, due = unpack(redis.call('HMGET', cam(id), 'zset', 'due'))
  due = math.max(tonumber(due) or now, now + (i - 1) * spread)
  redis.call('ZREM', leases, id)
  redis.call('ZREM', failing_leases, id)
  redis.call('HDEL', owners, id)
  redis.call('ZADD', zset(z or 'due:0'), due, id)
  redis.call('HINCRBY', state, 'reclaimed', 1)
  if redis.call('SISMEMBER', requested, id) == 1 then redis.call('RPUSH', requests, id) end
end

local s = redis.call('HMGET', state, 'mode', 'lateness', 'credit', 'peak')
local mode, lateness = s[1] or 'deadline', tonumber(s[2]) or 0
local credit, peak = tonumber(s[3]) or burst, tonumber(s[4]) or 1

local function lease(id, z, kind, switched)
  redis.call('ZREM', zset(z), id)
  redis.call('ZADD', leases, now + lease_s, id)
  redis.call('HSET', owners, id, worker)
  if z == 'failing' then redis.call('ZADD', failing_leases, now + lease_s, id) end
  local n = redis.call('ZCARD', leases)
  if n > peak then redis.call('HSET', state, 'peak', n) end
  redis.call('SREM', requested, id)
  local out = {id, kind, switched, tostring(lateness)}
  local fields = redis.call('HGETALL', cam(id))
  for i = 1, #fields do out[#out + 1] = fields[i] end
  return out
end

-- failing cameras first, but never more than their share of the workers
local cap = math.max(1, math.floor(failing_share * peak))
if redis.call('ZCARD', failing_leases) < cap then
  local head = redis.call('ZRANGEBYSCORE', zset('failing'), '-inf', now, 'LIMIT', 0, 1)
  if head[1] then return lease(head[1], 'failing', 'failing', '') end
end

-- requests, while they have credit
while credit >= 1 and redis.call('LLEN', requests) > 0 do
  local id = redis.call('LPOP', requests)
  if redis.call('SISMEMBER', requested, id) == 1 and not redis.call('ZSCORE', leases, id) then
    redis.call('HSET', state, 'credit', credit - 1)
    redis.call('HINCRBY', state, 'served', 1)
    local z = redis.call('HGET', cam(id), 'zset') or 'due:0'
    return lease(id, z, 'request', '')
  end
end

-- the regular round: earliest due first, or in overload the highest priority first
local best, best_due = nil, nil
for p = 9, 0, -1 do
  local head = redis.call('ZRANGE', zset('due:' .. p), 0, 0, 'WITHSCORES')
  if head[1] then
    local due = tonumber(head[2])
    if due <= now and (best_due == nil or due < best_due) then
      best, best_due = p, due
      if mode == 'overload' then break end
    end
  end
end
if best ~= nil then
  local id = redis.call('ZRANGE', zset('due:' .. best), 0, 0)[1]
  credit = math.min(burst, credit + earned)
  local c = redis.call('HMGET', cam(id), 'visits', 'early', 'revisit_s')
  local switched = ''
  if (tonumber(c[1]) or 0) > 0 then  -- a first visit is not a revisit: a cold start is no overload
    local late = (now - best_due - (tonumber(c[2]) or 0)) / tonumber(c[3])
    lateness = lateness + decay * (math.max(0, late) - lateness)
    if mode == 'deadline' and lateness > enter then switched = 'overload'
    elseif mode == 'overload' and lateness < exit_ then switched = 'deadline' end
    if switched ~= '' then mode = switched end
  end
  redis.call('HSET', state, 'credit', credit, 'lateness', lateness, 'mode', mode)
  return lease(id, 'due:' .. best, 'regular', switched)
end

-- nothing due: when the next camera is (the caller sleeps until then, or its poll interval)
local next_due = nil
local function consider(z)
  local head = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  if head[2] and (next_due == nil or tonumber(head[2]) < next_due) then next_due = tonumber(head[2]) end
end
for p = 0, 9 do consider(zset('due:' .. p)) end
consider(zset('failing'))
consider(leases)
return {false, tostring(next_due or -1)}
"""
)

# ARGV: ns, id, worker, zset, due, early, failures, health, last_error, last_visit, lead_s, ring, samples,
#       interval ('' for a first visit), late (0/1), revisit window
# returns 1, or 0 when the lease was lost (expired and taken back): the plan is then the other worker's
COMPLETE = (
    _KEYS
    + """
local id, worker = ARGV[2], ARGV[3]
if redis.call('HGET', owners, id) ~= worker then return 0 end
redis.call('ZREM', leases, id)
redis.call('ZREM', failing_leases, id)
redis.call('HDEL', owners, id)
redis.call('HSET', cam(id), 'zset', ARGV[4], 'due', ARGV[5], 'early', ARGV[6], 'failures', ARGV[7],
  'health', ARGV[8], 'last_error', ARGV[9], 'last_visit', ARGV[10], 'lead_s', ARGV[11], 'ring', ARGV[12],
  'samples', ARGV[13])
redis.call('HINCRBY', cam(id), 'visits', 1)
redis.call('ZADD', zset(ARGV[4]), tonumber(ARGV[5]), id)
if ARGV[14] ~= '' then
  redis.call('LPUSH', ns .. 'patrol:revisits', ARGV[14] .. ' ' .. ARGV[15])
  redis.call('LTRIM', ns .. 'patrol:revisits', 0, tonumber(ARGV[16]) - 1)
end
if redis.call('SISMEMBER', requested, id) == 1 then redis.call('RPUSH', requests, id) end
return 1
"""
)

# ARGV: ns, then (id, name, priority, revisit_s, first due) per camera. Due times already planned are kept
# (a restart does not reset the patrol); a camera whose priority changed moves to its new set at the same time.
REGISTER = (
    _KEYS
    + """
local added = 0
for i = 2, #ARGV, 5 do
  local id, name, p, revisit, first = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = cam(id)
  local old = redis.call('HGET', key, 'zset')
  local new = 'due:' .. p
  redis.call('HSET', key, 'name', name, 'priority', p, 'revisit_s', revisit)
  redis.call('SADD', ns .. 'patrol:cameras', id)
  if not redis.call('ZSCORE', leases, id) then
    local due = old and redis.call('ZSCORE', zset(old), id)
    if not due then
      due = redis.call('HGET', key, 'due') or first
      added = added + 1
    end
    if old then redis.call('ZREM', zset(old), id) end
    local z = (old == 'failing') and 'failing' or new
    redis.call('ZADD', zset(z), due, id)
    redis.call('HSET', key, 'zset', z, 'due', due)
  elseif old ~= 'failing' then
    redis.call('HSET', key, 'zset', new)  -- planned there at its completion
  end
end
return added
"""
)

# ARGV: ns, id -> 1 (queued or already waiting), 0 (not patrolled)
REQUEST = (
    _KEYS
    + """
local id = ARGV[2]
if redis.call('SISMEMBER', ns .. 'patrol:cameras', id) == 0 then return 0 end
if redis.call('SADD', requested, id) == 1 and not redis.call('ZSCORE', leases, id) then
  redis.call('RPUSH', requests, id)
end
return 1
"""
)

# ARGV: ns, worker, now, lease_s, ttl, ids... -> how many of the worker's leases were renewed
HEARTBEAT = (
    _KEYS
    + """
local worker, now, lease_s = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', ns .. 'worker:' .. worker, tostring(now), 'PX', math.floor(tonumber(ARGV[5]) * 1000))
redis.call('ZADD', ns .. 'workers', now, worker)
local renewed = 0
for i = 6, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', owners, id) == worker then
    redis.call('ZADD', leases, 'XX', now + lease_s, id)
    if redis.call('ZSCORE', failing_leases, id) then redis.call('ZADD', failing_leases, 'XX', now + lease_s, id) end
    renewed = renewed + 1
  end
end
return renewed
"""
)

# ARGV: ns, id, worker, due: put back a camera this worker cannot visit (not in its cameras.yaml), unplanned
RELEASE = (
    _KEYS
    + """
local id, worker = ARGV[2], ARGV[3]
if redis.call('HGET', owners, id) ~= worker then return 0 end
redis.call('ZREM', leases, id)
redis.call('ZREM', failing_leases, id)
redis.call('HDEL', owners, id)
local z = redis.call('HGET', cam(id), 'zset') or 'due:0'
redis.call('ZADD', zset(z), tonumber(ARGV[4]), id)
redis.call('HSET', cam(id), 'due', ARGV[4])
return 1
"""
)
