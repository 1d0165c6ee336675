--[[
  For claims taken before the occurrence was classified (the stream's read claims every
  handler of the queue): releases the claims of the handlers that turned out not to want
  it, when this owner holds them or their lease has expired, as if never claimed. Then
  stores the snapshot while a handler still needs it (running or dead), or keeps the
  occurrence only as a marker (markerTtlMs) when no handler wanted it. A snapshot '' (none
  given) stores nothing, and never stands in for one another instance stores.

  Input:
    KEYS[1]      leases ZSET
    KEYS[2..n]   one occurrence hash per occurrence
    ARGV[1]      owner
    ARGV[2]      markerTtlMs
    then per occurrence: occurrence id, snapshot JSON, handler count, the unwanted handlers

  Output:
    1
]]
--- @include "includes/now"
--- @include "includes/formats"
local leases, owner, markerTtl = KEYS[1], ARGV[1], ARGV[2]
local held = runStatePrefix(owner)
local a = 3
for k = 2, #KEYS do
  local occurrenceKey, id, snapshot, count = KEYS[k], ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  for i = a + 3, a + 2 + count do
    local field = handlerFieldOf(ARGV[i])
    local member = claimMemberOf(ARGV[i], id)
    local state = redis.call('HGET', occurrenceKey, field)
    if state and isRunState(state) then
      local deadline = redis.call('ZSCORE', leases, member)
      if startsWith(state, held) or not deadline or tonumber(deadline) <= now then
        redis.call('HDEL', occurrenceKey, field)
        redis.call('ZREM', leases, member)
      end
    end
  end
  local fields = redis.call('HGETALL', occurrenceKey)
  local handlers, needed = 0, false
  for i = 1, #fields, 2 do
    if isHandlerField(fields[i]) then
      handlers = handlers + 1
      if isOpenState(fields[i + 1]) or isDeadState(fields[i + 1]) then needed = true end
    end
  end
  if handlers == 0 then
    redis.call('HSET', occurrenceKey, 'snapshot', snapshot)
    redis.call('PEXPIRE', occurrenceKey, markerTtl)
  elseif needed and snapshot ~= '' then
    redis.call('HSETNX', occurrenceKey, 'snapshot', snapshot)
  end
  a = a + 3 + count
end
return 1
