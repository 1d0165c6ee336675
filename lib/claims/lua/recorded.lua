--[[
  Whether occurrences are recorded (claimed, settled or marked as seen): one call for a
  sweep's page, not one EXISTS per failed job.

  Input:
    KEYS[1..n]  occurrence hashes

  Output:
    one 1 or 0 per key
]]
local out = {}
for i = 1, #KEYS do out[i] = redis.call('EXISTS', KEYS[i]) end
return out
