--[[
  The direct children of a parent (see childrenOf).

  Input:
    KEYS[1]  the parent's job key
    ARGV[1]  at most this many children per group

  Output:
    childrenOf's flat list
]]
--- @include "includes/children-of"
return childrenOf(KEYS[1], tonumber(ARGV[1]))
