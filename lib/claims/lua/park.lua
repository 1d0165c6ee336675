--[[
  Parks claims this owner holds, or parks again those it parked: a handler waiting for
  its retry's backoff to end, or for the failed parent's pending children (a settled
  delivery, parked again each time its owner looks and finds them still pending). The
  claim leaves the run queue, keeps the attempts made, and its lease becomes the time
  after which anyone may take it (claimOccurrence takes a parked claim without counting
  an attempt; its owner may take it back sooner, as its backoff or its wait ends).

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   the occurrence hash of each claim
    ARGV[1]      owner
    then per claim: handler, occurrence id, ms from now until anyone may take it, the
    attempts made so far

  Output:
    one 1 (parked) or 0 (neither held nor parked by the owner any more) per claim
]]
--- @include "includes/now"
--- @include "includes/formats"
local held, parked = runStatePrefix(ARGV[1]), waitStatePrefix(ARGV[1])
local out = {}
for k = 2, #KEYS do
  local a = 2 + (k - 2) * 4
  local handler, id, delay, made = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local field = handlerFieldOf(handler)
  local state = redis.call('HGET', KEYS[k], field)
  if state and (startsWith(state, held) or startsWith(state, parked)) then
    redis.call('HSET', KEYS[k], field, parked .. made)
    redis.call('ZADD', KEYS[1], now + delay, claimMemberOf(handler, id))
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
