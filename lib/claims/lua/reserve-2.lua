--[[
  Reserves the failure of the attempt a Worker of this owner has just started, while the
  job runs: at its failure the handlers start at once, and are claimed (mode 'reserved')
  as they run. Refused when the job is no longer in that attempt or has finished it: a
  failure that may already be claimed elsewhere is never reserved.

  Input:
    KEYS[1]  the job hash
    KEYS[2]  the reservation key of that attempt
    ARGV[1]  owner
    ARGV[2]  attemptsStarted of the attempt (BullMQ's `ats`)
    ARGV[3]  ttlMs (leaseMs)

  Output:
    1 reserved, 0 refused
]]
local job = redis.call('HMGET', KEYS[1], 'ats', 'finishedOn')
if job[1] ~= ARGV[2] or job[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1
