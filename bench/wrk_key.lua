-- wrk script for section 6: send the service key the way an SDK does, in X-API-Key.
-- The key comes from the environment (BENCH_API_KEY), never from the command line.
wrk.headers["X-API-Key"] = os.getenv("BENCH_API_KEY")
