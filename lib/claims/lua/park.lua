--[[
  Parks claims whose handler waits for the parent's pending children (a settled
  delivery): the claim leaves its holder, keeps its attempts, and its lease becomes the
  time to look again, so that any replica's take-over picks it up then (claimOccurrence
  takes a parked claim whose time has come without counting an attempt).

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   the occurrence hash of each claim
    ARGV[1]      owner
    then per claim: handler, occurrence id, ms from now until it is looked at again

  Output:
    one 1 (parked) or 0 (no longer held by the owner) per claim
]]
--- @include "includes/now"
--- @include "includes/formats"
local held = runStatePrefix(ARGV[1])
local out = {}
for k = 2, #KEYS do
  local a = 2 + (k - 2) * 3
  local handler, id, delay = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local field = handlerFieldOf(handler)
  local state = redis.call('HGET', KEYS[k], field)
  if state and startsWith(state, held) then
    local attempt = tonumber(string.sub(state, #held + 1)) or 1
    redis.call('HSET', KEYS[k], field, 'wait|' .. (attempt - 1))
    redis.call('ZADD', KEYS[1], now + delay, claimMemberOf(handler, id))
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
