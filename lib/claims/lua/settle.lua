--[[
  Records handler outcomes, several in one call (a catch-up's handlers finish by the
  thousand).

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   the occurrence hash of each settlement
    ARGV[1]      owner
    ARGV[2]      ttlMs of a settled occurrence
    ARGV[3]      ttlMs of an occurrence with a dead handler (the dead letters' retention)
    then per settlement: handler, occurrence id, outcome ('done', or 'dead': the dead
    letter itself is a job of the dead-letter queue, added before this)

  Output:
    one 1 or 0 per settlement, in order: 0 when the caller no longer held the claim (its
    lease expired and another took it)
]]
--- @include "includes/formats"
--- @include "includes/keep-occurrence"
local leases, owner, ttl, deadTtl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local held = runStatePrefix(owner)
local out = {}
for k = 2, #KEYS do
  local a = 4 + (k - 2) * 3
  local occurrenceKey, handler, id, outcome = KEYS[k], ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local field = handlerFieldOf(handler)
  local member = claimMemberOf(handler, id)
  local state = redis.call('HGET', occurrenceKey, field)
  if not state or not startsWith(state, held) then
    out[#out + 1] = 0
  else
    if outcome == 'done' then
      redis.call('HSET', occurrenceKey, field, 'done')
    else
      redis.call('HSET', occurrenceKey, field, 'dead|' .. string.sub(state, #held + 1))
    end
    redis.call('ZREM', leases, member)
    keepOccurrence(occurrenceKey, ttl, deadTtl)
    out[#out + 1] = 1
  end
end
return out
