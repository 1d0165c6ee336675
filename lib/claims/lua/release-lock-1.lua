--[[
  Releases a lock if this owner still holds it.

  Input:
    KEYS[1]  the lock
    ARGV[1]  owner

  Output:
    1 released, 0 not ours
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
