--[[
  now: Redis's clock in ms. Every deadline the module keeps in Redis (leases, and
  everything compared with them) is on this clock, so replicas' clocks do not matter.
]]
local redisTime = redis.call('TIME')
local now = tonumber(redisTime[1]) * 1000 + math.floor(tonumber(redisTime[2]) / 1000)
