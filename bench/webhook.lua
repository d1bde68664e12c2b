-- wrk script: POSTs a payload file to /webhook, giving every request its own Message-ID.
-- The payload holds the placeholder @@MSGID@@; PAYLOAD names the file.
local path = os.getenv("PAYLOAD")
local file = assert(io.open(path, "rb"))
local body = file:read("*a")
file:close()
local at = assert(body:find("@@MSGID@@", 1, true), "no @@MSGID@@ in " .. path)
local before, after = body:sub(1, at - 1), body:sub(at + 9)
body = nil

local threads, counter, prefix = {}, 0, ""
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = string.format("%d-%d-%d", os.time(), math.random(1e9), id or 0)
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/webhook", headers, before .. prefix .. "-" .. counter .. after)
end

dofile("bench/result.lua")
