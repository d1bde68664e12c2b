-- wrk script: GETs with the API key; prints one parseable line like webhook.lua.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("API_KEY")

dofile("bench/result.lua")
