-- bench/soak: wrk script.  Counts responses per wall-clock second in
-- each thread, so that one stalled second shows even when the run's
-- average hides it, and checks every body: it must be the whole of v1
-- or the whole of v2.
--
--   wrk ... -s soak.lua URL -- V1_FILE V2_FILE
--
-- Each page carries "wharf-soak-version=vN length=L", L being the
-- page's own length in bytes.  A body counts as torn when the marker is
-- missing, when its length is not L, or when it differs in any byte from
-- the file of its version.  done() merges the threads' tables (wrk's
-- thread:get copies them) and prints lines for bench/soak/soak.py:
--   SOAK-SECOND <unix second> <responses>     (gaps filled with 0)
--   SOAK-BODIES v1=N v2=N torn=N non2xx=N
--   SOAK-ERRORS connect=N read=N write=N timeout=N status=N

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Per thread (each has its own Lua state): globals, read by done().
per_second = {}
good = { v1 = 0, v2 = 0 }
torn = 0
non2xx = 0
torn_sample = nil

local expected = {}

local function slurp(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

function init(args)
   expected.v1 = slurp(args[1])
   expected.v2 = slurp(args[2])
end

function response(status, headers, body)
   local now = os.time()
   per_second[now] = (per_second[now] or 0) + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      return
   end
   local v, len = string.match(body, "wharf%-soak%-version=(v%d+) length=(%d+)")
   if v ~= nil and expected[v] ~= nil and #body == tonumber(len)
      and body == expected[v] then
      good[v] = good[v] + 1
   else
      torn = torn + 1
      if torn_sample == nil then
         torn_sample = string.format("status=%d bytes=%d marker=%s/%s",
            status, #body, tostring(v), tostring(len))
      end
   end
end

function done(summary, latency, requests)
   local all = {}
   local first, last = nil, nil
   local v1, v2, t, bad = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      local counts = thread:get("per_second")
      for sec, n in pairs(counts) do
         all[sec] = (all[sec] or 0) + n
         if first == nil or sec < first then first = sec end
         if last == nil or sec > last then last = sec end
      end
      local g = thread:get("good")
      v1 = v1 + g.v1
      v2 = v2 + g.v2
      t = t + thread:get("torn")
      bad = bad + thread:get("non2xx")
      local sample = thread:get("torn_sample")
      if sample ~= nil then
         io.write("SOAK-TORN-SAMPLE " .. sample .. "\n")
      end
   end
   if first ~= nil then
      for sec = first, last do
         io.write(string.format("SOAK-SECOND %d %d\n", sec, all[sec] or 0))
      end
   end
   io.write(string.format("SOAK-BODIES v1=%d v2=%d torn=%d non2xx=%d\n",
      v1, v2, t, bad))
   local e = summary.errors
   io.write(string.format(
      "SOAK-ERRORS connect=%d read=%d write=%d timeout=%d status=%d\n",
      e.connect, e.read, e.write, e.timeout, e.status))
end
