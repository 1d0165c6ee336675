--[[
  Whether failed parents are settled: no child of theirs is pending any more.

  Input:
    KEYS[1..n]  the parents' job keys

  Output:
    Redis's time (ms), then one 1 (settled) or 0 per parent
]]
--- @include "includes/now"
local out = { now }
for i = 1, #KEYS do
  out[i + 1] = redis.call('SCARD', KEYS[i] .. ':dependencies') == 0 and 1 or 0
end
return out
