-- wrk script: POST partner tip-offs to /v1/reports, each signed in advance (the signature
-- is valid for the replay window, longer than a round). BENCH_TIPS names a file of lines
-- "<timestamp>\t<signature>\t<json body>"; BENCH_KEY is the partner's key. The requests go
-- round the file, so each thread sends distinct points.
local tips = {}
local next_tip = 1

function init(args)
   for line in io.lines(os.getenv("BENCH_TIPS")) do
      local ts, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      tips[#tips + 1] = {ts, sig, body}
   end
   next_tip = (wrk.thread:get("offset") or 0) % #tips + 1
end

function setup(thread)
   setup_count = (setup_count or 0) + 1
   thread:set("offset", (setup_count - 1) * 7919)
end

function request()
   local tip = tips[next_tip]
   next_tip = next_tip % #tips + 1
   return wrk.format("POST", "/v1/reports", {
      ["Content-Type"] = "application/json",
      ["X-Api-Key"] = os.getenv("BENCH_KEY"),
      ["X-Gridline-Timestamp"] = tip[1],
      ["X-Gridline-Signature"] = tip[2],
   }, tip[3])
end
