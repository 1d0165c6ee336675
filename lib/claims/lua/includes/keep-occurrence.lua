--[[
  keepOccurrence: how long an occurrence is kept once a handler is settled. For ever
  while a handler is dead (its replay needs the snapshot), else `ttl`; and once no
  handler is running or dead, without its snapshot (the done marks are all that
  de-duplication needs, and most of the bytes go).

  Needs: formats.
]]
local function keepOccurrence(occurrenceKey, ttl)
  local fields = redis.call('HGETALL', occurrenceKey)
  local running, dead = false, false
  for i = 1, #fields, 2 do
    if isHandlerField(fields[i]) then
      local state = fields[i + 1]
      if isDeadState(state) then dead = true end
      if isOpenState(state) then running = true end
    end
  end
  if dead then redis.call('PERSIST', occurrenceKey) else redis.call('PEXPIRE', occurrenceKey, ttl) end
  if not running and not dead then redis.call('HDEL', occurrenceKey, 'snapshot') end
end
