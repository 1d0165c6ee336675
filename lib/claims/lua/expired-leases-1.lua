--[[
  Claims whose holder stopped renewing them, oldest first (those handed back, at 0, come
  first).

  Input:
    KEYS[1]  leases ZSET
    ARGV[1]  limit
    ARGV[2]  '1': only the claims handed back (while holders may be catching up after an
             outage), '0': every expired one

  Output:
    claim members
]]
--- @include "includes/now"
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2] == '1' and 0 or now, 'LIMIT', 0, tonumber(ARGV[1]))
