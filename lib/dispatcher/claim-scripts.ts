/**
 * The Lua behind every claim. A handler runs for an occurrence only after `claim` gave
 * it the claim, and only `settle` ends one (`discard` a dead one, `drop` the lease of a
 * forgotten one), so every path
 * (worker, stream, sweep, expired lease, replay, another replica) meets the same atomic checks.
 *
 * A Worker reserves the failure of a flow job it starts (RESERVE), so that it can run the
 * handlers before its claim is back; while that lives, every other claim is taken in its name.
 *
 * Occurrence hash fields: `e` = snapshot; `h:<handler>` = `run|<owner>|<attempt>`,
 * `done`, `dead|<attempts>` or `discarded`. The leases ZSET holds `<handler>|<occurrence>` -> deadline
 * for every claim that is not settled. Time is Redis's, so replicas' clocks do not matter.
 */

export const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Records one occurrence (idempotent) and takes each of `handlers` that is unclaimed or whose
 * lease has expired (mode 'revive': and each dead one). Appends position, handler, attempt to
 * `out` for every claim taken. The one claim rule: CLAIM and the stream's read script
 * (READ_FAILED_JOBS) both call it. `snapshot` '' writes none (the caller writes it later).
 *
 * `reservation` is the key of the failed attempt's reservation ('' when the attempt is not
 * known). While another owner's lives, that owner's Worker runs the handlers the moment it
 * sees the failure, before it claims: so the claims are taken in its name, until the
 * reservation ends, and none is granted here. If that owner died, they expire with it and
 * are taken over like any claim. Mode 'convert' is the reserving owner recording what it
 * runs already: a claim already held in its name counts as taken, and the reservation ends.
 */
export const CLAIM_OCCURRENCE = `
local function claimOccurrence(leases, occ, id, ttl, snapshot, handlers, owner, leaseMs, mode, now, position, out, reservation)
  local created = redis.call('EXISTS', occ) == 0
  local holder, deadline, granting = owner, now + leaseMs, true
  if reservation ~= '' then
    local reserver = redis.call('GET', reservation)
    if mode == 'convert' then
      redis.call('DEL', reservation)
    elseif reserver and reserver ~= owner then
      holder, deadline, granting = reserver, now + math.max(redis.call('PTTL', reservation), 0), false
    end
  end
  local mine = 'run|' .. holder .. '|'
  local taken = false
  for _, handler in ipairs(handlers) do
    local field = 'h:' .. handler
    local member = handler .. '|' .. id
    local state = redis.call('HGET', occ, field)
    local attempts
    if not state then
      attempts = 0
    elseif mode == 'convert' and string.sub(state, 1, #mine) == mine then
      -- Taken in this owner's name while it was reserved: it is this owner's run.
      redis.call('ZADD', leases, deadline, member)
      out[#out + 1] = position
      out[#out + 1] = handler
      out[#out + 1] = tonumber(string.sub(state, #mine + 1)) or 1
      taken = true
    elseif string.sub(state, 1, 4) == 'run|' then
      local lease = redis.call('ZSCORE', leases, member)
      if not lease or tonumber(lease) <= now then
        attempts = tonumber(string.match(state, '|(%d+)$')) or 0
      end
    elseif mode == 'revive' and string.sub(state, 1, 5) == 'dead|' then
      attempts = tonumber(string.sub(state, 6)) or 0
    end
    if attempts then
      attempts = attempts + 1
      redis.call('HSET', occ, field, mine .. attempts)
      redis.call('ZADD', leases, deadline, member)
      if granting then
        out[#out + 1] = position
        out[#out + 1] = handler
        out[#out + 1] = attempts
      end
      taken = true
    end
  end
  -- The snapshot is kept while some handler may still need it; a late duplicate of an
  -- occurrence whose handlers are all done does not bring it back.
  -- (A dead sibling's PERSIST gives way here while something runs; the next settle restores it.)
  if created or taken then
    if snapshot ~= '' then redis.call('HSETNX', occ, 'e', snapshot) end
    redis.call('PEXPIRE', occ, ttl)
  end
end
`;

/**
 * KEYS: leases, then one occurrence key per occurrence. ARGV: owner, leaseMs, mode ('claim',
 * 'revive' or 'convert', see CLAIM_OCCURRENCE), then per occurrence: occurrenceId, ttlMs,
 * snapshot, reservation key ('' if unknown), handler count, handlers.
 * Returns a flat list: occurrence position (1-based), handler, attempt, ...
 * Several occurrences in one call: a stream batch claims in one round trip, not hundreds.
 */
export const CLAIM = `${NOW}${CLAIM_OCCURRENCE}
local leases, owner, leaseMs, mode = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
local a = 4
for k = 2, #KEYS do
  local id, ttl, snapshot, reservation, count = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local handlers = {}
  for i = 1, count do handlers[i] = ARGV[a + 4 + i] end
  claimOccurrence(leases, KEYS[k], id, ttl, snapshot, handlers, owner, leaseMs, mode, now, k - 1, out, reservation)
  a = a + 5 + count
end
return out
`;

/**
 * KEYS: the job, its reservation (ModuleKeys.reservation, for the attempt the Worker started).
 * ARGV: owner, attemptsStarted, ttlMs. Taken when a Worker of this owner starts a flow job,
 * while the job runs: at its failure the handlers start at once, and are claimed (mode
 * 'convert') as they run. Refused when the job is no longer in that attempt or has finished
 * it: a failure that may already be claimed elsewhere is never reserved. Returns 1 or 0.
 */
export const RESERVE = `
local job = redis.call('HMGET', KEYS[1], 'ats', 'finishedOn')
if job[1] ~= ARGV[2] or job[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1
`;

/**
 * How long an occurrence is kept once a handler is settled: for ever while a handler is
 * dead (its replay needs the snapshot), else `ttl`; and once no handler is running or dead,
 * without its snapshot (the done marks are all dedup needs, and most of the bytes go).
 */
const KEEP = `
local function keep(occ, ttl)
  local fields = redis.call('HGETALL', occ)
  local running, dead = false, false
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'h:' then
      local state = fields[i + 1]
      if string.sub(state, 1, 5) == 'dead|' then dead = true end
      if string.sub(state, 1, 4) == 'run|' then running = true end
    end
  end
  if dead then redis.call('PERSIST', occ) else redis.call('PEXPIRE', occ, ttl) end
  if not running and not dead then redis.call('HDEL', occ, 'e') end
end
`;

/**
 * KEYS: leases, deadLetters, then one occurrence key per settlement. ARGV: owner, ttlMs, then
 * per settlement: handler, occurrenceId, outcome, value. outcome 'done', 'retry' (value = next
 * attempt) or 'dead' (value = record JSON). Returns one 1 or 0 per settlement, in order: 0 when
 * the caller no longer held the claim (its lease expired and another took it).
 * Several outcomes in one call: a catch-up's handlers finish by the thousand.
 */
export const SETTLE = `${KEEP}
local leases, dead, owner, ttl = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local held = 'run|' .. owner .. '|'
local out = {}
for k = 3, #KEYS do
  local a = 3 + (k - 3) * 4
  local occ, handler, id, outcome, value = KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local field = 'h:' .. handler
  local member = handler .. '|' .. id
  local state = redis.call('HGET', occ, field)
  if not state or string.sub(state, 1, #held) ~= held then
    out[#out + 1] = 0
  elseif outcome == 'retry' then
    redis.call('HSET', occ, field, held .. value)
    out[#out + 1] = 1
  else
    if outcome == 'done' then
      redis.call('HSET', occ, field, 'done')
      redis.call('HDEL', dead, member)
    else
      redis.call('HSET', occ, field, 'dead|' .. string.sub(state, #held + 1))
      redis.call('HSET', dead, member, value)
    end
    redis.call('ZREM', leases, member)
    keep(occ, ttl)
    out[#out + 1] = 1
  end
end
return out
`;

/**
 * KEYS: leases, then one occurrence key per occurrence. ARGV: owner, markerTtlMs, then per
 * occurrence: occurrenceId, snapshot, handler count, handlers.
 * For claims taken before the occurrence was classified (the stream's read script claims
 * every handler of the queue): forgets the claims of the handlers that turned out not to
 * want it, if this owner holds them or their lease has expired, as if never claimed; then
 * stores the snapshot while a handler still needs it (running or dead), or keeps the
 * occurrence only as a marker (markerTtlMs) when no handler wanted it.
 */
export const FORGET = `${NOW}
local leases, owner, markerTtl = KEYS[1], ARGV[1], ARGV[2]
local held = 'run|' .. owner .. '|'
local a = 3
for k = 2, #KEYS do
  local occ, id, snapshot, count = KEYS[k], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  for i = a + 3, a + 2 + count do
    local field = 'h:' .. ARGV[i]
    local member = ARGV[i] .. '|' .. id
    local state = redis.call('HGET', occ, field)
    if state and string.sub(state, 1, 4) == 'run|' then
      local deadline = redis.call('ZSCORE', leases, member)
      if string.sub(state, 1, #held) == held or not deadline or tonumber(deadline) <= now then
        redis.call('HDEL', occ, field)
        redis.call('ZREM', leases, member)
      end
    end
  end
  local fields = redis.call('HGETALL', occ)
  local handlers, needed = 0, false
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 'h:' then
      handlers = handlers + 1
      local state = string.sub(fields[i + 1], 1, 4)
      if state == 'run|' or state == 'dead' then needed = true end
    end
  end
  if handlers == 0 then
    redis.call('HSET', occ, 'e', snapshot)
    redis.call('PEXPIRE', occ, markerTtl)
  elseif needed then
    redis.call('HSETNX', occ, 'e', snapshot)
  end
  a = a + 3 + count
end
return 1
`;

/**
 * KEYS: occurrence, deadLetters. ARGV: handler, occurrenceId, ttlMs. Forgets a dead letter;
 * its handler is never run again for that occurrence. Returns 0 when there was none.
 */
export const DISCARD = `${KEEP}
local member = ARGV[1] .. '|' .. ARGV[2]
if redis.call('HDEL', KEYS[2], member) == 0 then
  return 0
end
local field = 'h:' .. ARGV[1]
local state = redis.call('HGET', KEYS[1], field)
if state and string.sub(state, 1, 5) == 'dead|' then
  redis.call('HSET', KEYS[1], field, 'discarded')
end
keep(KEYS[1], ARGV[3])
return 1
`;

/**
 * KEYS: leases, occurrence... ARGV: owner, leaseMs, mode, then handler and occurrenceId for
 * each occurrence key. mode 'renew' pushes the deadlines of claims still held by owner to
 * now + leaseMs (never earlier); 'release' sets them to now, so any replica may take them
 * at once. Returns the 1-based positions of the claims the owner no longer holds.
 */
export const LEASE = `${NOW}
local held = 'run|' .. ARGV[1] .. '|'
local lost = {}
for i = 2, #KEYS do
  local handler = ARGV[2 * i]
  local member = handler .. '|' .. ARGV[2 * i + 1]
  local state = redis.call('HGET', KEYS[i], 'h:' .. handler)
  if state and string.sub(state, 1, #held) == held then
    if ARGV[3] == 'renew' then
      redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), member)
    else
      redis.call('ZADD', KEYS[1], 'XX', now, member)
    end
  else
    lost[#lost + 1] = i - 1
  end
end
return lost
`;

/**
 * KEYS: leases, occurrence. ARGV: handler, occurrenceId. Forgets the lease of a claim whose
 * occurrence is no longer stored (nothing could run it), unless the occurrence came back
 * meanwhile with this handler running: that lease is a live claim's. Returns 1 if dropped.
 */
export const DROP = `
local state = redis.call('HGET', KEYS[2], 'h:' .. ARGV[1])
if state and string.sub(state, 1, 4) == 'run|' and redis.call('HEXISTS', KEYS[2], 'e') == 1 then
  return 0
end
return redis.call('ZREM', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
`;

/**
 * KEYS: occurrence keys. Returns 1 or 0 for each: whether the occurrence is recorded
 * (claimed, settled or marked as seen). One call for a sweep's page, not one EXISTS per job.
 */
export const RECORDED = `
local out = {}
for i = 1, #KEYS do out[i] = redis.call('EXISTS', KEYS[i]) end
return out
`;

/** KEYS: leases. ARGV: limit. Members whose lease has expired, oldest first. */
export const EXPIRED = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`;
