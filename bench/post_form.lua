-- wrk script: POST the same form-encoded Open311 report on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = os.getenv("BENCH_FORM")
