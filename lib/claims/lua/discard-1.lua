--[[
  Discards a dead letter's claim: its handler is never run again for that occurrence (the
  dead-letter job itself is removed by the caller).

  Input:
    KEYS[1]  the occurrence hash
    ARGV[1]  handler
    ARGV[2]  ttlMs of a settled occurrence

  Output:
    1 discarded, 0 when the handler was not dead for that occurrence
]]
--- @include "includes/formats"
--- @include "includes/keep-occurrence"
local field = handlerFieldOf(ARGV[1])
local state = redis.call('HGET', KEYS[1], field)
if not state or not isDeadState(state) then
  return 0
end
redis.call('HSET', KEYS[1], field, 'discarded')
keepOccurrence(KEYS[1], ARGV[2], ARGV[2])
return 1
