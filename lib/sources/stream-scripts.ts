import { CLAIM_OCCURRENCE, NOW } from '../dispatcher/claim-scripts.js';

/**
 * KEYS: events streams. ARGV: group, consumer, count, the failed-children key suffix, the
 * number of children-bookkeeping suffixes and those suffixes; then '1' followed by
 * ClaimStore.claimArgs (leases key, occurrence key prefix, owner, leaseMs, ttl, reservation
 * key prefix) to claim, or '0' alone; then per stream: the id after which to look ('0':
 * from the start), the queue's name, its job key prefix (`<prefix>:<queue>:`), '1' when
 * whether a failed job had children is wanted, and the number of handlers to claim and
 * their keys.
 *
 * For each entry this consumer holds past that id that reports a failure, returns eight
 * values: stream position (1-based), job id, the job's hash (empty when the job is gone),
 * the child key its failedReason names ('' if none), 1 if that child is among its failed
 * children (else 0), 1 or 0 for whether it had children (-1 when not wanted), the
 * occurrence id it claimed ('' if none) and the claims it took (position, handler,
 * attempt, ...). These are the classifier's questions, answered here so that it asks Redis
 * nothing, and the dispatcher's claim, taken here so that it waits for nothing.
 *
 * Sent on the blocking connection right behind XREADGROUP, it waits in Redis's input
 * buffer and runs the moment the read is served: the failed jobs come back with the
 * entries, instead of round trips after them, at a time when Redis is busy with whatever
 * the failure set off. It reads this consumer's own pending entries (XREADGROUP with an id,
 * which also counts one more delivery of each), so what other replicas were handed is not
 * loaded here.
 *
 * Claiming, it records a terminal failure (the job has finishedOn) under the occurrence id
 * every source derives (`<queue>:<jobId>:<finishedOn>`, as occurrenceId() builds it) with
 * the claim rule every other path uses (CLAIM_OCCURRENCE, with the reservation of the
 * attempt that failed, as ModuleKeys.reservation builds it), for every handler given: which
 * of them match is only known once the job is classified. The snapshot is left to the
 * dispatcher (ClaimStore.forget); until it is stored, a replica taking the claims over
 * rebuilds the occurrence from the job.
 *
 * The failedReason pattern is BullMQ's deferred-failure text, as parseDeferredFailure
 * reads it; the classifier uses the answer only when both name the same child.
 */
export const READ_FAILED_JOBS = `${NOW}${CLAIM_OCCURRENCE}
local failedChildrenSuffix, suffixCount = ARGV[4], tonumber(ARGV[5])
local a = 6 + suffixCount
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
      local named = reason and string.match(reason, '^child (.+) failed$') or ''
      local namedFailed = 0
      if named ~= '' and redis.call('ZSCORE', key .. failedChildrenSuffix, named) then namedFailed = 1 end
      local hadChildren = -1
      if setting.askChildren and #hash > 0 then
        local bookkeeping = {}
        for i = 1, suffixCount do bookkeeping[i] = key .. ARGV[5 + i] end
        hadChildren = redis.call('EXISTS', unpack(bookkeeping)) > 0 and 1 or 0
      end
      local id, granted = '', {}
      if claiming and #setting.handlers > 0 and reason and finishedOn and finishedOn ~= '' then
        id = setting.queue .. ':' .. jobId .. ':' .. finishedOn
        local reservation = attemptsStarted and (reservationPrefix .. setting.queue .. ':' .. jobId .. ':' .. attemptsStarted) or ''
        claimOccurrence(leases, occurrencePrefix .. id, id, ttl, '', setting.handlers, owner, leaseMs, 'claim', now, 0, granted, reservation)
      end
      out[#out + 1] = setting.position
      out[#out + 1] = jobId
      out[#out + 1] = hash
      out[#out + 1] = named
      out[#out + 1] = namedFailed
      out[#out + 1] = hadChildren
      out[#out + 1] = id
      out[#out + 1] = granted
    end
  end
end
return out
`;
