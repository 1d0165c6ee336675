--[[
  The run id of the Redis server that holds the module's keys (LeaseTrust).

  Input:
    KEYS[1]  leases ZSET: only so that a Cluster sends the call to the node of the module's slot

  Output:
    the run id
]]
--- @include "includes/server-run-id"
return serverRunId()
