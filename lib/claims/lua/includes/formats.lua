--[[
  The strings the module stores, as lib/claims/formats.ts builds them (a test checks that
  both give the same strings).

  occurrence id:   <queue>:<jobId>:<finishedOn>
  claim member:    <handler>|<occurrence id>      (handler keys never contain '|')
  handler field:   h:<handler>                    (in the occurrence hash)
  run state:       run|<owner>|<attempt>
  parked state:    wait|<owner>|<attempts made>   (waiting for its backoff to end, or for
                   the failed parent's pending children: a settled delivery)
]]
local function occurrenceIdOf(queue, jobId, finishedOn)
  return queue .. ':' .. jobId .. ':' .. finishedOn
end

local function claimMemberOf(handler, occurrenceId)
  return handler .. '|' .. occurrenceId
end

local function handlerFieldOf(handler)
  return 'h:' .. handler
end

local function isHandlerField(field)
  return string.sub(field, 1, 2) == 'h:'
end

local function runStatePrefix(owner)
  return 'run|' .. owner .. '|'
end

local function waitStatePrefix(owner)
  return 'wait|' .. owner .. '|'
end

local function isRunState(state)
  return string.sub(state, 1, 4) == 'run|'
end

local function isWaitState(state)
  return string.sub(state, 1, 5) == 'wait|'
end

-- A claim that still has work ahead (running, or parked): its occurrence's snapshot is needed.
local function isOpenState(state)
  return isRunState(state) or isWaitState(state)
end

local function isDeadState(state)
  return string.sub(state, 1, 5) == 'dead|'
end

local function startsWith(text, prefix)
  return string.sub(text, 1, #prefix) == prefix
end

--[[
  reservation key: <reservation prefix><queue>:<jobId>:<attemptsStarted>
  (the prefix is `<module base>:res:`, given by the caller)
]]
local function reservationKeyOf(reservationPrefix, queue, jobId, attemptsStarted)
  return reservationPrefix .. queue .. ':' .. jobId .. ':' .. attemptsStarted
end

-- The child key in BullMQ's deferred failure text `child <key> failed`, or ''.
local function deferredChildOf(failedReason)
  return failedReason and string.match(failedReason, '^child (.+) failed$') or ''
end
