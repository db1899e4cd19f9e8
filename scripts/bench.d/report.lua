-- Appended to every wrk script the benchmark runs: prints one machine-readable
-- line with the run's totals and latency percentiles (microseconds).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\":%.0f,\"duration_us\":%.0f,\"bytes\":%.0f," ..
    "\"err_connect\":%.0f,\"err_read\":%.0f,\"err_write\":%.0f,\"err_status\":%.0f," ..
    "\"err_timeout\":%.0f,\"lat_mean_us\":%.1f,\"lat_max_us\":%.0f,\"p50_us\":%.0f," ..
    "\"p90_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
