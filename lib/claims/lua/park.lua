--[[
  Parks claims this owner holds: a handler waiting for its retry's backoff to end, or for
  the failed parent's pending children (a settled delivery). The claim leaves the run
  queue, keeps the attempts made, and its lease becomes the time after which anyone may
  take it (claimOccurrence takes a parked claim without counting an attempt; its owner
  may take it back sooner, as its backoff ends).

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   the occurrence hash of each claim
    ARGV[1]      owner
    then per claim: handler, occurrence id, ms from now until anyone may take it, the
    attempts made so far

  Output:
    one 1 (parked) or 0 (no longer held by the owner) per claim
]]
--- @include "includes/now"
--- @include "includes/formats"
local held = runStatePrefix(ARGV[1])
local out = {}
for k = 2, #KEYS do
  local a = 2 + (k - 2) * 4
  local handler, id, delay, made = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local field = handlerFieldOf(handler)
  local state = redis.call('HGET', KEYS[k], field)
  if state and startsWith(state, held) then
    redis.call('HSET', KEYS[k], field, waitStatePrefix(ARGV[1]) .. made)
    redis.call('ZADD', KEYS[1], now + delay, claimMemberOf(handler, id))
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
