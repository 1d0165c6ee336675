/**
 * KEYS: events streams. ARGV: group, consumer, count, the failed-children key suffix, the
 * number of children-bookkeeping suffixes and those suffixes, then per stream: the id after
 * which to look ('0': from the start), the queue's job key prefix (`<prefix>:<queue>:`) and
 * '1' when whether a failed job had children is wanted.
 *
 * For each entry this consumer holds past that id that reports a failure, returns six
 * values: stream position (1-based), job id, the job's hash (empty when the job is gone),
 * the child key its failedReason names ('' if none), 1 if that child is among its failed
 * children (else 0), and 1 or 0 for whether it had children (-1 when not wanted). These
 * are the classifier's questions, answered here so that it asks Redis nothing.
 *
 * Sent on the blocking connection right behind XREADGROUP, it waits in Redis's input
 * buffer and runs the moment the read is served: the failed jobs come back with the
 * entries, instead of round trips after them, at a time when Redis is busy with whatever
 * the failure set off. It reads this consumer's own pending entries (XREADGROUP with an id,
 * which also counts one more delivery of each), so what other replicas were handed is not
 * loaded here.
 *
 * The failedReason pattern is BullMQ's deferred-failure text, as parseDeferredFailure
 * reads it; the classifier uses the answer only when both name the same child.
 */
export const READ_FAILED_JOBS = `
local failedChildrenSuffix, suffixCount = ARGV[4], tonumber(ARGV[5])
local first = 6 + suffixCount
local streams, settings = {}, {}
for k = 1, #KEYS do
  local a = first + 3 * (k - 1)
  streams[k] = KEYS[k]
  streams[#KEYS + k] = ARGV[a]
  settings[KEYS[k]] = { position = k, prefix = ARGV[a + 1], askChildren = ARGV[a + 2] == '1' }
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
      local reason
      for i = 1, #hash, 2 do
        if hash[i] == 'failedReason' then reason = hash[i + 1] end
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
      out[#out + 1] = setting.position
      out[#out + 1] = jobId
      out[#out + 1] = hash
      out[#out + 1] = named
      out[#out + 1] = namedFailed
      out[#out + 1] = hadChildren
    end
  end
end
return out
`;
