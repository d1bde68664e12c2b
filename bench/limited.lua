-- wrk script: GET / with the API key, a route under a per-IP limit. CLIENTS > 1 gives each
-- request a client address out of that many (10.x.y.z) in X-Forwarded-For, which mailroom
-- believes from loopback, so requests count in as many rows; CLIENTS=1 is one hot client.
-- Prints one parseable line like webhook.lua.
local clients = tonumber(os.getenv("CLIENTS") or "1")
local headers = { ["Authorization"] = "Bearer " .. os.getenv("API_KEY") }

function init(args)
  math.randomseed(os.time() + math.random(1e6))
end

function request()
  if clients > 1 then
    local n = math.random(clients) - 1
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(n / 65536), math.floor(n / 256) % 256, n % 256)
  end
  return wrk.format("GET", "/", headers)
end

dofile("bench/result.lua")
