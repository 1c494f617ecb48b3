-- wrk script of bench/run.sh.
--   BENCH_TOKENS=file  cycle through the tokens of file (one per line):
--                      every request carries another token ("cold")
--   otherwise          the request as given on the command line (-H ...)
-- Prints one line: RESULT requests duration_us p50_us p99_us errors

local tokens, n, i = {}, 0, 0

local file = os.getenv("BENCH_TOKENS")
if file and file ~= "" then
    for line in io.lines(file) do
        n = n + 1
        tokens[n] = line
    end
end

request = function()
    if n == 0 then
        return wrk.request()
    end
    i = i % n + 1
    return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. tokens[i] })
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.status + e.timeout))
end
