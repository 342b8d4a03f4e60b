-- wrk script: page views from many clients, as a wiki's readers are. Each request comes
-- "from" a random address in 10.0.0.0/8 (in X-Forwarded-For, which the gate believes from its
-- trusted loopback proxy), with a browser's headers.
math.randomseed(20261201)
local headers = {
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  ["Accept"] = "text/html,application/xhtml+xml",
  ["Accept-Language"] = "en-GB,en;q=0.8",
}
-- WRK_PACE_MS: each connection waits that long between a response and its next request, so
-- both proxies see the same offered load below saturation (the latency then is the proxy's,
-- not a queue's). Unset: flat out.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "")
if pace then
  delay = function() return pace end
end
request = function()
  headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format("GET", "/wiki/Main_Page", headers)
end
