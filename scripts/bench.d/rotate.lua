-- Single-ID requests rotating over N entity names:
--   wrk ... -s rotate.lua URL -- N PREFIX DATATYPE
-- (the first pass also creates the entities).
local n, prefix, dtype = 1000, "e-", "long"
local reqs, i = {}, 0

init = function(args)
  n = tonumber(args[1]) or n
  prefix = args[2] or prefix
  dtype = args[3] or dtype
  for k = 0, n - 1 do
    reqs[k] = wrk.format("GET", "/api/next-id/" .. prefix .. k .. "?dataType=" .. dtype)
  end
end

request = function()
  local r = reqs[i]
  i = (i + 1) % n
  return r
end
