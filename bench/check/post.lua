-- wrk script: POST one action body (from the file named in BODY_FILE) to /v1/check.
--
-- VARY_NEW_TEXT=1: each request's new_wikitext starts with a comment no other request has, so
-- its new text is one the service has never seen (as every saved edit's new text is), while
-- its old text repeats (as an edit's old text is the text the page's previous save stored).
-- Without it every request is the same edit, which flatters whatever the service remembers
-- between checks (the link cache, the recent-actions texts stored once).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CHECK_TOKEN")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

if os.getenv("VARY_NEW_TEXT") == "1" then
  local _, last = body:find('"new_wikitext"%s*:%s*"')
  assert(last, "the body has no new_wikitext string")
  local head, tail = body:sub(1, last), body:sub(last + 1)
  local n = 0
  -- Each wrk run of a benchmark names itself (RUN), so that one run's texts are not the
  -- texts an earlier run (the warm-up) already sent.
  local run = os.getenv("RUN") or ""
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, head .. "<!-- " .. run .. " t" .. tostring(tid) .. " r" .. n .. " -->" .. tail)
  end
end

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if non200 == 1 then io.stderr:write("non-200 answer: " .. status .. " " .. body .. "\n") end
  end
end
