-- wrk: POST /api/v1/responses:batch with N diary responses per request, each with a fresh
-- UUID. Arguments after `--`:
--   tokens_file run_prefix(8 hex digits) authored_at local_dates(comma-separated) batch_size
local tokens, items = {}, {}
local counter, requests = 0, 0
local prefix = "00000000"
local size = 100
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  prefix = args[2]
  size = tonumber(args[5])
  local i = 0
  for day in string.gmatch(args[4], "[^,]+") do
    i = i + 1
    -- everything after the id: the id goes first so each item is one format call
    items[#items + 1] = string.format(
      '","questionnaire":"diary","version":1,"authored_at":"%s","local_date":"%s","task_id":null,'
      .. '"answers":{"pain_avg":%d,"pain_worst":%d,"sleep_hours":6.5,"sleep_quality":5,"activity":4,'
      .. '"mood":6,"rescue_doses":1,"se_drowsiness":0,"se_nausea":1,"se_constipation":0,'
      .. '"se_dizziness":0}}',
      args[3], day, 2 + i % 6, 4 + i % 6)
  end
end

function request()
  requests = requests + 1
  local parts = {}
  for k = 1, size do
    counter = counter + 1
    parts[k] = string.format('{"id":"%s-%04x-4000-8000-%012x', prefix, tid or 1, counter)
      .. items[counter % #items + 1]
  end
  local headers = {
    ["Authorization"] = "Bearer " .. tokens[requests % #tokens + 1],
    ["Content-Type"] = "application/json",
  }
  return wrk.format("POST", "/api/v1/responses:batch", headers,
    '{"responses":[' .. table.concat(parts, ",") .. ']}')
end
