--[[
  claimOccurrence: the one claim rule. CLAIM (claim.lua) and the stream's read
  (read-and-claim.lua) both call it.

  Records one occurrence (idempotent; returns true when this call recorded it first) and
  takes each of `handlers` that is unclaimed or
  whose lease has expired, each parked one whose time has come or that this owner parked
  (mode 'revive': and each dead one). For every claim granted it
  appends position, handler, attempt to `out`. `snapshot` '' writes none (the caller
  stores it later).

  `reservation` is the key of the failed attempt's reservation ('' when the attempt is
  not known). While another owner's reservation lives, that owner's Worker runs the
  handlers the moment it sees the failure, before it claims: the claims are taken in its
  name, until the reservation ends, and none is granted here. If that owner died, they
  expire with it and are taken over like any claim. Mode 'reserved' is the reserving
  owner recording what it already runs: a claim held in its name counts as taken, and
  the reservation ends.

  An expired lease is taken only when `takeExpiredOn` names this server's run id (a lease
  handed back, at 0, always is): the caller gives '' while the leases' live holders may
  still be coming back from an outage (LeaseTrust), and a call it sent before the server
  restarted, resent after, names the server that is gone. Such claims are left to the
  take-over, which asks again later.

  Needs: now, formats, server-run-id.
]]
local function leaseFree(lease, takeExpiredOn)
  if not lease then return true end
  local deadline = tonumber(lease)
  -- 0: handed back by its holder (lease.lua), anyone's at once.
  return deadline <= 0 or (deadline <= now and takeExpiredOn ~= '' and takeExpiredOn == serverRunId())
end

local function claimOccurrence(leases, occurrenceKey, occurrenceId, ttl, snapshot, handlers, owner, leaseMs, mode, position, out, reservation, takeExpiredOn)
  local created = redis.call('EXISTS', occurrenceKey) == 0
  local holder, deadline, granting = owner, now + leaseMs, true
  if reservation ~= '' then
    local reserver = redis.call('GET', reservation)
    if mode == 'reserved' then
      redis.call('DEL', reservation)
    elseif reserver and reserver ~= owner then
      holder, deadline, granting = reserver, now + math.max(redis.call('PTTL', reservation), 0), false
    end
  end
  local held = runStatePrefix(holder)
  local taken = false
  for _, handler in ipairs(handlers) do
    local field = handlerFieldOf(handler)
    local member = claimMemberOf(handler, occurrenceId)
    local state = redis.call('HGET', occurrenceKey, field)
    local attempts
    if not state then
      attempts = 0
    elseif mode == 'reserved' and startsWith(state, held) then
      -- Taken in this owner's name while it was reserved: it is this owner's run.
      redis.call('ZADD', leases, deadline, member)
      out[#out + 1] = position
      out[#out + 1] = handler
      out[#out + 1] = tonumber(string.sub(state, #held + 1)) or 1
      taken = true
    elseif isRunState(state) then
      if leaseFree(redis.call('ZSCORE', leases, member), takeExpiredOn) then
        attempts = tonumber(string.match(state, '|(%d+)$')) or 0
      end
    elseif isWaitState(state) then
      -- Parked: its owner takes it again when it likes, anyone once its lease has ended;
      -- the attempt that follows is counted then.
      if startsWith(state, waitStatePrefix(owner)) or leaseFree(redis.call('ZSCORE', leases, member), takeExpiredOn) then
        attempts = tonumber(string.match(state, '|(%d+)$')) or 0
      end
    elseif mode == 'revive' and isDeadState(state) then
      attempts = tonumber(string.sub(state, 6)) or 0
    end
    if attempts then
      attempts = attempts + 1
      redis.call('HSET', occurrenceKey, field, held .. attempts)
      redis.call('ZADD', leases, deadline, member)
      if granting then
        out[#out + 1] = position
        out[#out + 1] = handler
        out[#out + 1] = attempts
      end
      taken = true
    end
  end
  -- The snapshot is kept while some handler may still need it; a late duplicate of an
  -- occurrence whose handlers are all done does not bring it back. (A dead sibling's
  -- PERSIST gives way here while something runs; the next settle restores it.)
  if created or taken then
    if snapshot ~= '' then redis.call('HSETNX', occurrenceKey, 'snapshot', snapshot) end
    redis.call('PEXPIRE', occurrenceKey, ttl)
  end
  return created
end
