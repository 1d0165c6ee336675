--[[
  childrenOf: the direct children of a parent, as BullMQ keeps them under its key:
    <parent>:processed     HASH child key -> return value (JSON): completed
    <parent>:unsuccessful  ZSET child keys that failed the parent (failParentOnFailure)
    <parent>:failed        HASH child key -> failed reason: continueParentOnFailure and
                           ignoreDependencyOnFailure children, told apart by the flags on
                           the child's `parent` field (one that is gone counts as ignored)
    <parent>:dependencies  SET child keys not finished yet: pending
  A child removed under removeDependencyOnFailure is kept in none of them.

  Returns a flat list: truncated (1 when a group held more than `limit`), then per child:
  group ('c' completed, 'f' failed, 'i' ignored, 'p' pending), child key, its job name
  ('' when the child is gone), value (return value JSON, failed reason, or '').
]]
local function childrenOf(parentKey, limit)
  local out = { 0 }
  local function add(group, childKey, value)
    out[#out + 1] = group
    out[#out + 1] = childKey
    out[#out + 1] = redis.call('HGET', childKey, 'name') or ''
    out[#out + 1] = value or ''
  end
  -- At most `limit` members of a HASH or SET, as field/value pairs (a SET's values are '').
  local function members(scan, key)
    local found, cursor = {}, '0'
    repeat
      local reply = redis.call(scan, key, cursor, 'COUNT', 100)
      cursor = reply[1]
      local step = scan == 'HSCAN' and 2 or 1
      for i = 1, #reply[2], step do
        if #found >= 2 * limit then
          out[1] = 1
          return found
        end
        found[#found + 1] = reply[2][i]
        found[#found + 1] = step == 2 and reply[2][i + 1] or ''
      end
    until cursor == '0'
    return found
  end
  local processed = members('HSCAN', parentKey .. ':processed')
  for i = 1, #processed, 2 do add('c', processed[i], processed[i + 1]) end
  local unsuccessful = redis.call('ZRANGE', parentKey .. ':unsuccessful', 0, limit)
  if #unsuccessful > limit then
    out[1] = 1
    unsuccessful[#unsuccessful] = nil
  end
  for _, childKey in ipairs(unsuccessful) do add('f', childKey, redis.call('HGET', childKey, 'failedReason')) end
  local failed = members('HSCAN', parentKey .. ':failed')
  for i = 1, #failed, 2 do
    local flags = redis.call('HGET', failed[i], 'parent')
    local ok, parent = pcall(cjson.decode, flags or '')
    add((ok and type(parent) == 'table' and parent['cpof']) and 'f' or 'i', failed[i], failed[i + 1])
  end
  local pending = members('SSCAN', parentKey .. ':dependencies')
  for i = 1, #pending, 2 do add('p', pending[i], '') end
  return out
end
