--[[
  Claims whose holder stopped renewing them, oldest first.

  Input:
    KEYS[1]  leases ZSET
    ARGV[1]  limit

  Output:
    claim members
]]
--- @include "includes/now"
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
