--[[
  Renews or releases the leases of claims this owner holds, running or parked.

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   the occurrence hash of each claim
    ARGV[1]      owner
    ARGV[2]      leaseMs
    ARGV[3]      mode: 'renew' pushes each deadline to now + leaseMs (never earlier);
                 'release' sets it to 0: handed back, any replica may take the claim at
                 once, even while holders may be catching up after an outage (claimOccurrence)
    then per claim: handler, occurrence id

  Output:
    the 1-based positions of the claims the owner no longer holds
]]
--- @include "includes/now"
--- @include "includes/formats"
local held, parked = runStatePrefix(ARGV[1]), waitStatePrefix(ARGV[1])
local lost = {}
for i = 2, #KEYS do
  local handler = ARGV[2 * i]
  local member = claimMemberOf(handler, ARGV[2 * i + 1])
  local state = redis.call('HGET', KEYS[i], handlerFieldOf(handler))
  if state and (startsWith(state, held) or startsWith(state, parked)) then
    if ARGV[3] == 'renew' then
      redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), member)
    else
      redis.call('ZADD', KEYS[1], 'XX', 0, member)
    end
  else
    lost[#lost + 1] = i - 1
  end
end
return lost
