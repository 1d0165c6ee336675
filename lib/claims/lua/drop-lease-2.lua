--[[
  Drops the lease of a claim whose occurrence is no longer stored (nothing could run it),
  unless the occurrence came back meanwhile with this handler running or parked: that
  lease is a live claim's.

  Input:
    KEYS[1]  leases ZSET
    KEYS[2]  the occurrence hash
    ARGV[1]  handler
    ARGV[2]  occurrence id

  Output:
    1 dropped, 0 kept
]]
--- @include "includes/formats"
local state = redis.call('HGET', KEYS[2], handlerFieldOf(ARGV[1]))
if state and isOpenState(state) and redis.call('HEXISTS', KEYS[2], 'snapshot') == 1 then
  return 0
end
return redis.call('ZREM', KEYS[1], claimMemberOf(ARGV[1], ARGV[2]))
