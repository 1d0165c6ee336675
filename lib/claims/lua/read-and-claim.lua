--[[
  The stream source's read: sent on the blocking connection right behind XREADGROUP, it
  waits in Redis's input buffer and runs the moment the read is served. It reads this
  consumer's entries past the given ids (XREADGROUP with an id, which also counts one
  more delivery of each), so what other replicas were handed is not loaded here, and
  returns their failed jobs with the answers the classifier needs: it then asks Redis
  nothing. When the stream is the primary source it also claims them: the dispatcher
  then waits for nothing.

  Claiming, it records each terminal failure (the job has finishedOn) under the
  occurrence id every source derives, with the one claim rule (claimOccurrence) and the
  reservation of the attempt that failed, for every handler given: which of them match
  is only known once the job is classified, and the dispatcher releases the others
  (release-unwanted.lua) with the snapshot. Until that is stored, a replica taking the
  claims over rebuilds the occurrence from the job.

  Input:
    KEYS[1..n]  the events streams
    ARGV[1]     group
    ARGV[2]     consumer
    ARGV[3]     count
    ARGV[4]     the failed-children key suffix (':unsuccessful')
    ARGV[5]     at most this many children per group (childrenOf)
    then '1' and the claim arguments (leases key, occurrence key prefix, owner, leaseMs,
    ttlMs, reservation key prefix) to claim, or '0' alone
    then per stream: the id after which to read ('0': from the start), the queue, its job
    key prefix (`<prefix>:<queue>:`), '1' when a failed job's children are wanted, the
    number of handlers to claim and their keys

  Output:
    for each entry read that reports a failure, nine values: stream position (1-based),
    job id, the job's hash (empty when the job is gone), the child key its failedReason
    names ('' if none), 1 if that child is among its failed children (else 0), its
    children (childrenOf's list; empty when not asked), the occurrence id it claimed (''
    if none), the claims granted (position, handler, attempt, ...) and 1 when this read
    recorded the occurrence first (else 0)
]]
--- @include "includes/now"
--- @include "includes/formats"
--- @include "includes/claim-occurrence"
--- @include "includes/children-of"
local failedChildrenSuffix, childrenLimit = ARGV[4], tonumber(ARGV[5])
local a = 6
local claiming = ARGV[a] == '1'
local leases, occurrencePrefix, owner, leaseMs, ttl, reservationPrefix
if claiming then
  leases, occurrencePrefix, owner, leaseMs, ttl, reservationPrefix = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6]
  a = a + 7
else
  a = a + 1
end
local streams, settings = {}, {}
for k = 1, #KEYS do
  local count = tonumber(ARGV[a + 4])
  local handlers = {}
  for i = 1, count do handlers[i] = ARGV[a + 4 + i] end
  streams[k] = KEYS[k]
  streams[#KEYS + k] = ARGV[a]
  settings[KEYS[k]] = { position = k, queue = ARGV[a + 1], prefix = ARGV[a + 2], askChildren = ARGV[a + 3] == '1', handlers = handlers }
  a = a + 5 + count
end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', unpack(streams))
local out = {}
for _, stream in ipairs(reply or {}) do
  local setting = settings[stream[1]]
  for _, entry in ipairs(stream[2]) do
    local fields = entry[2] or {}
    local event, jobId
    for i = 1, #fields, 2 do
      if fields[i] == 'event' then event = fields[i + 1] elseif fields[i] == 'jobId' then jobId = fields[i + 1] end
    end
    if event == 'failed' and jobId then
      local key = setting.prefix .. jobId
      local hash = redis.call('HGETALL', key)
      local reason, finishedOn, attemptsStarted
      for i = 1, #hash, 2 do
        local field = hash[i]
        if field == 'failedReason' then reason = hash[i + 1]
        elseif field == 'finishedOn' then finishedOn = hash[i + 1]
        elseif field == 'ats' then attemptsStarted = hash[i + 1] end
      end
      local named = deferredChildOf(reason)
      local namedFailed = 0
      if named ~= '' and redis.call('ZSCORE', key .. failedChildrenSuffix, named) then namedFailed = 1 end
      local children = {}
      if setting.askChildren and #hash > 0 then children = childrenOf(key, childrenLimit) end
      local id, granted, recorded = '', {}, 0
      if claiming and #setting.handlers > 0 and reason and finishedOn and finishedOn ~= '' then
        id = occurrenceIdOf(setting.queue, jobId, finishedOn)
        local reservation = attemptsStarted and reservationKeyOf(reservationPrefix, setting.queue, jobId, attemptsStarted) or ''
        if claimOccurrence(leases, occurrencePrefix .. id, id, ttl, '', setting.handlers, owner, leaseMs, 'claim', 0, granted, reservation) then
          recorded = 1
        end
      end
      out[#out + 1] = setting.position
      out[#out + 1] = jobId
      out[#out + 1] = hash
      out[#out + 1] = named
      out[#out + 1] = namedFailed
      out[#out + 1] = children
      out[#out + 1] = id
      out[#out + 1] = granted
      out[#out + 1] = recorded
    end
  end
end
return out
