--[[
  Discards a dead letter: its handler is never run again for that occurrence.

  Input:
    KEYS[1]  the occurrence hash
    KEYS[2]  dead letters HASH
    ARGV[1]  handler
    ARGV[2]  occurrence id
    ARGV[3]  ttlMs of a settled occurrence

  Output:
    1 discarded, 0 when there was no such dead letter
]]
--- @include "includes/formats"
--- @include "includes/keep-occurrence"
if redis.call('HDEL', KEYS[2], claimMemberOf(ARGV[1], ARGV[2])) == 0 then
  return 0
end
local field = handlerFieldOf(ARGV[1])
local state = redis.call('HGET', KEYS[1], field)
if state and isDeadState(state) then
  redis.call('HSET', KEYS[1], field, 'discarded')
end
keepOccurrence(KEYS[1], ARGV[3])
return 1
