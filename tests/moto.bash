# Sourced by tests/run and shared/bench/run, from the repository's root.
#
#   start_moto PORT LOG    starts tests/moto_server.py on 127.0.0.1:PORT, its stdout and
#                          stderr in LOG, and sets MOTO_PID once it listens. When moto exits
#                          first, or does not listen within 30 s, prints LOG's last lines
#                          and fails.
start_moto() {
    local port=$1 log=$2
    .venv/bin/python tests/moto_server.py 127.0.0.1 "$port" > "$log" 2>&1 &
    MOTO_PID=$!
    for _ in $(seq 300); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto exited before it listened on port $port; the end of $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
    kill "$MOTO_PID" 2>/dev/null || true
    echo "moto did not listen on port $port within 30 s; the end of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
}
