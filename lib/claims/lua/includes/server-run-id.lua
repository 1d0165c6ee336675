--[[
  serverRunId: the run id of this Redis server (INFO server), read at most once per call
  and only when asked. It is new each time the server starts, and differs on another
  server that takes its place.
]]
local runIdOfServer
local function serverRunId()
  if not runIdOfServer then runIdOfServer = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or '' end
  return runIdOfServer
end
