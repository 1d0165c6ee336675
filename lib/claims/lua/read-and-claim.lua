--[[
  The stream source's read of failures, in one of two modes:

  'behind': sent on the blocking connection right behind XREADGROUP, it waits in Redis's
  input buffer and runs the moment the read is served. It reads this consumer's entries
  past the given ids (XREADGROUP with an id, which also counts one more delivery of each),
  so what other replicas were handed is not loaded here. Redis 7.0 serves a read blocked
  on several streams with the one stream that woke it, although the command that woke it
  may have added to others too (BullMQ fails a child and moves its parent in one script,
  each in its queue's stream; Valkey 8, from Redis 7.2, returns them all): so each stream
  the read did not return is read on here ('>'), and those entries go back whole, as part
  of the read. Every failure entry is answered, claimed while the claims taken stay within
  `room` (the rest unclaimed: the caller claims them as it delivers them); the caller
  acknowledges the entries once their failures are recorded.

  'new': a catch-up's read, alone: it reads the entries past the group's position (those
  no consumer was handed yet), claims their failures and moves the group past them, since
  each failure it could record is recorded by now (the rest report no failure, or one
  whose job is gone or no longer failed). It reads with XRANGE and moves the group with
  XGROUP SETID, keeping its entries-read count as XREADGROUP would: the same outcome as
  XREADGROUP '>' and XACK, without putting each entry in the pending list only to take it
  out again (most entries of a busy stream report no failure). Only failures that took a
  claim or were recorded first here, and malformed failure entries, are answered: the
  other entries never leave Redis. It takes no more claims than `room`: it reads each
  stream in steps of at most as many entries as the claims left allow (an entry reports
  one failure at most), so whatever it reads it can claim, and it starts with a different
  stream at each call. (One entry a call is always read: a queue with more handlers than
  the room takes one failure at a time.)

  For each failure it returns the failed job with the answers the classifier needs (it
  then asks Redis nothing) and, when claiming, the claims: it records each terminal
  failure (the job has finishedOn) under the occurrence id every source derives, with the
  one claim rule (claimOccurrence) and the reservation of the attempt that failed, for
  every handler given: which of them match is only known once the job is classified, and
  the dispatcher releases the others (release-unwanted.lua). Until the snapshot is
  stored, a replica taking the claims over rebuilds the occurrence from the job.

  Input:
    KEYS[1..n]  the events streams
    ARGV[1]     group
    ARGV[2]     consumer
    ARGV[3]     count (entries per stream)
    ARGV[4]     mode: 'behind' or 'new' ('new' needs claiming)
    ARGV[5]     the claims it may take (room)
    ARGV[6]     'new': the stream to start with (1-based)
    ARGV[7]     the failed-children key suffix (':unsuccessful')
    ARGV[8]     at most this many children per group (childrenOf)
    then '1' and the claim arguments (leases key, occurrence key prefix, owner, leaseMs,
    ttlMs, reservation key prefix, takeExpiredOn: see claimOccurrence) to claim, or '0' alone
    then per stream: the id after which to read ('behind'; '0': from the start; ignored
    by 'new'), the queue, its job key prefix (`<prefix>:<queue>:`), '1' when a failed
    job's children are wanted, the number of handlers to claim and their keys

  Output: one JSON string (cjson) of the list below, in which an empty list may read as
  {}. A reply of 100 failures holds thousands of small strings (each job's hash above
  all), which ioredis decodes one RESP value at a time, several times slower than
  JSON.parse reads the same in one string. The list:
    per stream, in KEYS order: entries read, the id of the last one ('' if none), 1 when
    it may hold more unread entries (else 0), and ('behind') the entries it read on, as
    XREADGROUP returns them (empty when none, and in mode 'new');
    then for each failure answered, eleven values: stream position (1-based), entry id,
    job id ('' when the entry has none: malformed), the job's hash (empty when the job is
    gone), the child key its failedReason names ('' if none), 1 if that child is among
    its failed children (else 0), its children (childrenOf's list; empty when not asked),
    its root cause (key, name, failedReason, stacktrace of the job at the end of the
    chain of failed children, followed down from the named child; empty when none), the
    occurrence id it claimed ('' if none), the claims granted (position, handler,
    attempt, ...) and 1 when this read recorded the occurrence first (else 0)
]]
--- @include "includes/now"
--- @include "includes/formats"
--- @include "includes/server-run-id"
--- @include "includes/claim-occurrence"
--- @include "includes/children-of"
local group, consumer, count, mode = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local room, firstStream = tonumber(ARGV[5]), tonumber(ARGV[6])
local failedChildrenSuffix, childrenLimit = ARGV[7], tonumber(ARGV[8])
local a = 9
local claiming = ARGV[a] == '1'
local leases, occurrencePrefix, owner, leaseMs, ttl, reservationPrefix, takeExpiredOn
if claiming then
  leases, occurrencePrefix, owner, leaseMs, ttl, reservationPrefix, takeExpiredOn = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  a = a + 8
else
  a = a + 1
end
local catchingUp = mode == 'new'
if catchingUp and not claiming then return redis.error_reply('read-and-claim: mode new needs claiming') end
-- Deeper than any sane flow; stops a corrupt, cyclic chain of failed children.
local MAX_CASCADE_DEPTH = 64

local settings = {}
for k = 1, #KEYS do
  local handlerCount = tonumber(ARGV[a + 4])
  local handlers = {}
  for i = 1, handlerCount do handlers[i] = ARGV[a + 4 + i] end
  settings[k] = { stream = KEYS[k], after = ARGV[a], queue = ARGV[a + 1], prefix = ARGV[a + 2], askChildren = ARGV[a + 3] == '1', handlers = handlers }
  a = a + 5 + handlerCount
end

-- The job at the end of the chain of failed children that starts at `childKey`.
local function rootCauseOf(childKey)
  local cause = {}
  local current = childKey
  for _ = 1, MAX_CASCADE_DEPTH do
    local fields = redis.call('HMGET', current, 'name', 'failedReason', 'stacktrace')
    if not fields[1] then break end
    cause = { current, fields[1], fields[2] or '', fields[3] or '' }
    local next = deferredChildOf(fields[2])
    if next == '' or not redis.call('ZSCORE', current .. failedChildrenSuffix, next) then break end
    current = next
  end
  return cause
end

local answers = {}

-- Reads one entry: a failure's job and answers, and its claims. Returns the claims granted.
local function readEntry(position, setting, entry)
  local fields = entry[2] or {}
  local event, jobId
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then event = fields[i + 1] elseif fields[i] == 'jobId' then jobId = fields[i + 1] end
  end
  if event ~= 'failed' then return 0 end
  local key = jobId and setting.prefix .. jobId
  local hash = key and redis.call('HGETALL', key) or {}
  local reason, finishedOn, attemptsStarted
  for i = 1, #hash, 2 do
    local field = hash[i]
    if field == 'failedReason' then reason = hash[i + 1]
    elseif field == 'finishedOn' then finishedOn = hash[i + 1]
    elseif field == 'ats' then attemptsStarted = hash[i + 1] end
  end
  local id, granted, recorded = '', {}, 0
  if claiming and (catchingUp or room > 0) and #setting.handlers > 0 and reason and finishedOn and finishedOn ~= '' then
    id = occurrenceIdOf(setting.queue, jobId, finishedOn)
    local reservation = attemptsStarted and reservationKeyOf(reservationPrefix, setting.queue, jobId, attemptsStarted) or ''
    if claimOccurrence(leases, occurrencePrefix .. id, id, ttl, '', setting.handlers, owner, leaseMs, 'claim', 0, granted, reservation, takeExpiredOn) then
      recorded = 1
    end
  end
  if catchingUp and jobId and #granted == 0 and recorded == 0 then return 0 end
  local named = deferredChildOf(reason)
  local namedFailed = 0
  if named ~= '' and redis.call('ZSCORE', key .. failedChildrenSuffix, named) then namedFailed = 1 end
  local children = {}
  if setting.askChildren and #hash > 0 then children = childrenOf(key, childrenLimit) end
  answers[#answers + 1] = position
  answers[#answers + 1] = entry[1]
  answers[#answers + 1] = jobId or ''
  answers[#answers + 1] = hash
  answers[#answers + 1] = named
  answers[#answers + 1] = namedFailed
  answers[#answers + 1] = children
  answers[#answers + 1] = namedFailed == 1 and rootCauseOf(named) or {}
  answers[#answers + 1] = id
  answers[#answers + 1] = granted
  answers[#answers + 1] = recorded
  return #granted / 3
end

local function record(fields)
  local info = {}
  for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
  return info
end

-- Where the group stands in a stream: the last entry it was handed, and how many entries it
-- has read (false when Redis does not know); nil without the stream or the group.
local function groupPosition(stream)
  local found, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if not found then return nil end
  for _, fields in ipairs(groups) do
    local info = record(fields)
    if info['name'] == group then return info['last-delivered-id'], tonumber(info['entries-read']) or false end
  end
  return nil
end

-- Whether stream entry id `a` comes after `b` (ids are '<ms>-<seq>').
local function after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(am) ~= tonumber(bm) then return tonumber(am) > tonumber(bm) end
  return tonumber(as) > tonumber(bs)
end

-- Moves the group from `from` past `last`, having read `read` more entries, counting them as
-- XREADGROUP does: exactly at the stream's last entry; else on from a known count, unless
-- entries deleted (XDEL) in between make it unknown.
local function moveGroup(stream, from, last, read, entriesRead)
  local info = record(redis.call('XINFO', 'STREAM', stream))
  local readSoFar
  if info['last-generated-id'] == last then
    readSoFar = info['entries-added']
  elseif entriesRead and not after(info['max-deleted-entry-id'], from) then
    readSoFar = entriesRead + read
  end
  if readSoFar then
    redis.call('XGROUP', 'SETID', stream, group, last, 'ENTRIESREAD', readSoFar)
  else
    redis.call('XGROUP', 'SETID', stream, group, last)
  end
end

local out = {}
if catchingUp then
  local readInCall = 0
  for step = 0, #KEYS - 1 do
    local k = (firstStream - 1 + step) % #KEYS + 1
    local setting = settings[k]
    local perFailure = math.max(1, #setting.handlers)
    local from, entriesRead = groupPosition(setting.stream)
    local position = from
    -- As XREADGROUP answers: the reader recreates the stream and the group.
    if not from then return redis.error_reply('NOGROUP No such key ' .. setting.stream .. ' or consumer group ' .. group) end
    local read, last, more = 0, '', 1
    while read < count do
      local want = math.min(count - read, math.floor(room / perFailure))
      -- A queue with more handlers than the room still moves: one entry per call.
      if want < 1 and readInCall == 0 then want = 1 end
      if want < 1 then break end
      local entries = redis.call('XRANGE', setting.stream, '(' .. position, '+', 'COUNT', want)
      for _, entry in ipairs(entries) do room = room - readEntry(k, setting, entry) end
      read = read + #entries
      readInCall = readInCall + #entries
      if #entries > 0 then
        last = entries[#entries][1]
        position = last
      end
      if #entries < want then
        more = 0
        break
      end
    end
    if read > 0 then moveGroup(setting.stream, from, last, read, entriesRead) end
    out[4 * k - 3], out[4 * k - 2], out[4 * k - 1], out[4 * k] = read, last, more, {}
  end
else
  -- XREADGROUP over `streams` from `ids` (one per stream), by stream key.
  local function readGroup(streams, ids)
    local args = {}
    for i, stream in ipairs(streams) do
      args[i] = stream
      args[#streams + i] = ids[i]
    end
    local byStream = {}
    for _, stream in ipairs(redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'STREAMS', unpack(args)) or {}) do
      byStream[stream[1]] = stream[2]
    end
    return byStream
  end
  local afterIds = {}
  for k = 1, #KEYS do afterIds[k] = settings[k].after end
  -- (A read of pending entries answers every stream, with an empty list when it has none.)
  local handed = readGroup(KEYS, afterIds)
  local unread, news = {}, {}
  for k = 1, #KEYS do
    if #(handed[KEYS[k]] or {}) == 0 then
      unread[#unread + 1] = KEYS[k]
      news[#news + 1] = '>'
    end
  end
  local readOn = #unread > 0 and readGroup(unread, news) or {}
  for k = 1, #KEYS do
    local more = readOn[KEYS[k]]
    local entries = more or handed[KEYS[k]] or {}
    for _, entry in ipairs(entries) do room = room - readEntry(k, settings[k], entry) end
    out[4 * k - 3], out[4 * k - 2], out[4 * k - 1] = #entries, #entries > 0 and entries[#entries][1] or '', #entries >= count and 1 or 0
    out[4 * k] = more or {}
  end
end
for i = 1, #answers do out[#out + 1] = answers[i] end
return cjson.encode(out)
