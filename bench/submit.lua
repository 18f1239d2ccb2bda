-- wrk script: POST pre-signed recommendations through the gateway, each with its office's token.
-- BENCH_REQUESTS names a file of "token<TAB>compact JWS" lines. BENCH_RATE offers that many
-- requests a second on one schedule (0 = as fast as the server answers). Prints one JSON line
-- at the end.
--
-- wrk's own delay() only waits after each answer, so with it the rate falls as latency rises:
-- 8 connections paced to 40 ms "offered 200/s" but sent 101-127/s. Here each request takes the
-- next slot of a fixed schedule and waits for it; a request whose slot has passed (every
-- connection was waiting on the server) goes at once, so the schedule is kept, not lowered.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local moment = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, moment)
  return tonumber(moment.tv_sec) * 1000 + tonumber(moment.tv_nsec) / 1e6
end

local path = os.getenv("BENCH_REQUESTS")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local next_slot = nil
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  for line in io.lines(path) do
    local tab = line:find("\t")
    requests[#requests + 1] = wrk.format("POST", "/v1/recommendations", {
      ["Authorization"] = "Bearer " .. line:sub(1, tab - 1),
      ["Content-Type"] = "application/jose",
    }, line:sub(tab + 1))
  end
  step = tonumber(os.getenv("BENCH_THREADS") or "1")
  -- each phase starts at its own offset, so no phase repeats another's documents
  counter = id + tonumber(os.getenv("BENCH_OFFSET") or "0")
  created, repeated, refused = 0, 0, 0
end

function request()
  counter = counter + step
  if counter > #requests then counter = counter - #requests end
  return requests[counter]
end

function delay()
  if rate <= 0 then return 0 end
  local now = now_ms()
  next_slot = (next_slot or now) + 1000 / rate
  return math.max(0, next_slot - now)
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 200 then repeated = repeated + 1
  else refused = refused + 1 end
end

function done(summary, latency, requests)
  local created, repeated, refused = 0, 0, 0
  for _, thread in ipairs(threads) do
    created = created + thread:get("created")
    repeated = repeated + thread:get("repeated")
    refused = refused + thread:get("refused")
  end
  io.write(string.format(
    '{"seconds": %.3f, "requests": %d, "created": %d, "repeated": %d, "refused": %d, ' ..
    '"errors": %d, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.duration / 1e6, summary.requests, created, repeated, refused,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.timeout + summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
