--[[
  Records occurrences and takes the free claims of their handlers, several occurrences in
  one call (a catch-up's batch in one round trip, not hundreds).

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   one occurrence hash per occurrence
    ARGV[1]      owner
    ARGV[2]      leaseMs
    ARGV[3]      mode: 'claim', 'revive' (dead claims too: a replay) or 'reserved'
                 (the reserving owner records what it runs; see claimOccurrence)
    ARGV[4]      takeExpiredOn: the run id of the server on which expired leases may be
                 taken, '' while their holders may be catching up (see claimOccurrence)
    then per occurrence: occurrence id, ttlMs, snapshot JSON, reservation key ('' if
    unknown), handler count, the handler keys

  Output:
    { granted, recorded }: granted is a flat list (occurrence position (1-based), handler,
    attempt, ...) of the claims granted; recorded lists the positions of the occurrences
    this call recorded first (for counting each failure once among replicas)
]]
--- @include "includes/now"
--- @include "includes/formats"
--- @include "includes/server-run-id"
--- @include "includes/claim-occurrence"
local leases, owner, leaseMs, mode, takeExpiredOn = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out, recorded = {}, {}
local a = 5
for k = 2, #KEYS do
  local id, ttl, snapshot, reservation, count = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local handlers = {}
  for i = 1, count do handlers[i] = ARGV[a + 4 + i] end
  if claimOccurrence(leases, KEYS[k], id, ttl, snapshot, handlers, owner, leaseMs, mode, k - 1, out, reservation, takeExpiredOn) then
    recorded[#recorded + 1] = k - 1
  end
  a = a + 5 + count
end
return { out, recorded }
