--[[
  serverRunId: the run id of this Redis server (INFO server), read at most once per call
  and only when asked. It is new each time the server starts, and differs on another
  server that takes its place. A user that may not run INFO reads 'unknown' on every
  server: expired leases are then judged by LeaseTrust's window alone.
]]
local runIdOfServer
local function serverRunId()
  if not runIdOfServer then
    local info = redis.pcall('INFO', 'server')
    runIdOfServer = type(info) == 'string' and string.match(info, 'run_id:(%w+)') or 'unknown'
  end
  return runIdOfServer
end
