--[[
  keepOccurrence: how long an occurrence is kept once a handler is settled: `deadTtl`
  while a handler is dead (the dead letter's replay needs the snapshot), else `ttl`; and
  once no handler is running, parked or dead, without its snapshot (the done marks are
  all that de-duplication needs, and most of the bytes go).

  Needs: formats.
]]
local function keepOccurrence(occurrenceKey, ttl, deadTtl)
  local fields = redis.call('HGETALL', occurrenceKey)
  local running, dead = false, false
  for i = 1, #fields, 2 do
    if isHandlerField(fields[i]) then
      local state = fields[i + 1]
      if isDeadState(state) then dead = true end
      if isOpenState(state) then running = true end
    end
  end
  redis.call('PEXPIRE', occurrenceKey, dead and math.max(tonumber(deadTtl), tonumber(ttl)) or ttl)
  if not running and not dead then redis.call('HDEL', occurrenceKey, 'snapshot') end
end
