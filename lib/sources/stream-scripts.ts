/**
 * KEYS: events streams. ARGV: group, consumer, count, then per stream: the id after which
 * to look ('0': from the start) and the queue's job key prefix (`<prefix>:<queue>:`).
 * For each entry this consumer holds past that id that reports a failure, returns stream
 * position (1-based), job id and the job's hash (empty when the job is gone).
 *
 * Sent on the blocking connection right behind XREADGROUP, it waits in Redis's input
 * buffer and runs the moment the read is served: the failed jobs come back with the
 * entries, instead of a load's round trip after them, at a time when Redis is busy with
 * whatever the failure set off. It reads this consumer's own pending entries (XREADGROUP
 * with an id, which also counts one more delivery of each), so what other replicas were
 * handed is not loaded here.
 */
export const READ_FAILED_JOBS = `
local streams, after, prefixes = {}, {}, {}
for k = 1, #KEYS do
  streams[k] = KEYS[k]
  after[k] = ARGV[2 + 2 * k]
  prefixes[KEYS[k]] = ARGV[3 + 2 * k]
  streams[#KEYS + k] = after[k]
end
local position = {}
for k = 1, #KEYS do position[KEYS[k]] = k end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', unpack(streams))
local out = {}
for _, stream in ipairs(reply or {}) do
  local key = stream[1]
  for _, entry in ipairs(stream[2]) do
    local fields = entry[2] or {}
    local event, jobId
    for i = 1, #fields, 2 do
      if fields[i] == 'event' then event = fields[i + 1] elseif fields[i] == 'jobId' then jobId = fields[i + 1] end
    end
    if event == 'failed' and jobId then
      out[#out + 1] = position[key]
      out[#out + 1] = jobId
      out[#out + 1] = redis.call('HGETALL', prefixes[key] .. jobId)
    end
  end
end
return out
`;
