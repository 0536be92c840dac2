"""Cold start, warm latency, peak memory and size of each release bootstrap.

Each bootstrap from `sam build` runs as a fresh process under a local Lambda Runtime API, as
in Lambda. ENDPOINT is where the functions' AWS SDK calls go:

- `sink` (what shared/bench/run uses): shared/bench/aws_sink.py, started here, answers every
  DynamoDB and EventBridge call at once as if the tables were empty, so the figures are the
  bootstrap's own;
- a URL: an AWS-compatible endpoint (moto) where the devstack created the template's
  resources under the prefix `lambda` (`shared/bench/run coldstart-moto`); its latency is in
  the invocation times, and it may be too slow to finish the 1,000-record batches.

Measured:

- init: from process start to its first `GET /runtime/invocation/next`;
- first: the first invocation, from handing out the event to the posted response;
- warm: the median of the next invocations of the same process;
- batch: the time of one invocation with a batch of 1,000 records (triggers: one stream
  event of 1,000 records; listeners: one SQS batch of 1,000 messages), in a fresh process;
- peak RSS (VmHWM) after that batch (triggers and listeners) or the fixture request (APIs);
- size: the stripped bootstrap.

The local Runtime API sets TCP_NODELAY on its sockets: Python's http.server writes a
response's headers and body separately, and with Nagle's algorithm the body waited for the
client's delayed ACK, which added about 40 ms to every warm invocation.

Each function's first answer is checked against its fixture's expected answer
(target/fixtures, written by `devstack fixtures`), so a function that fails against the
endpoint does not pass unnoticed.

Usage: coldstart.py BUILD_DIR TEMPLATE ENDPOINT|sink WORKLOAD_DIR [RUNS]
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
from lambda_invoke import check, environment  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Each measured process is killed with its connection open: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """Hands out events one by one and times each invocation."""

    def __init__(self, events):
        self.events = [json.dumps(e).encode() for e in events]
        self.started = {}
        self.durations = []
        self.answers = []
        self.first_next = None
        self.finished = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # http.server sends headers and body in two writes; without TCP_NODELAY the
            # second waits for the runtime's delayed ACK (about 40 ms) on a kept-alive socket.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                if api.first_next is None:
                    api.first_next = time.monotonic()
                n = len(api.started)
                if n >= len(api.events):
                    api.finished.wait(60)
                    self.send_response(410)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request_id = f"r{n}"
                body = api.events[n]
                api.started[request_id] = time.monotonic()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request_id = self.path.split("/")[-2]
                api.durations.append(time.monotonic() - api.started[request_id])
                kind = "response" if self.path.endswith("/response") else "error"
                api.answers.append((kind, json.loads(body or b"null")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if len(api.durations) == len(api.events):
                    api.finished.set()

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(bootstrap, env, events, patience=120, wrapper=()):
    """Starts the bootstrap (under `wrapper`, such as valgrind, if given) and serves it the
    events one by one."""
    api = RuntimeApi(events)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server.server_address[1]}")
    start = time.monotonic()
    process = subprocess.Popen([*wrapper, bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = api.finished.wait(patience)
    rss_kb = None
    try:
        for line in open(f"/proc/{process.pid}/status"):
            if line.startswith("VmHWM:"):
                rss_kb = int(line.split()[1])
    except OSError:
        pass
    if wrapper:
        # The runtime exits on the 410 that follows the last event, and valgrind writes
        # its counts as it exits.
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.terminate()
    else:
        process.kill()
    process.wait()
    api.server.shutdown()
    if not done:
        raise RuntimeError(f"{bootstrap} did not answer every event")
    return (api.first_next - start) * 1000, [d * 1000 for d in api.durations], rss_kb, api.answers


def big_batch(bootstrap, env, event, patience=60):
    """Duration (ms) and peak RSS (kB) of one big batch, or Nones when the endpoint is too
    slow to finish it in time."""
    try:
        _, durations, rss_kb, answers = run(bootstrap, env, [event], patience)
    except RuntimeError:
        return None, None
    kind, response = answers[0]
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if kind != "response" or failures:
        print(f"warning: {bootstrap}: the big batch answered {kind} {json.dumps(response)[:300]}", file=sys.stderr)
    return durations[0], rss_kb


def start_sink():
    """Starts aws_sink.py in its own process (so it does not share this one's GIL) and
    returns the process and its URL."""
    sink = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(__file__), "aws_sink.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    port = sink.stdout.readline().strip()
    return sink, f"http://127.0.0.1:{port}"


def main(build_dir, template_path, endpoint, workload_dir, runs="3"):
    sink = None
    if endpoint == "sink":
        sink, endpoint = start_sink()
    try:
        measure(build_dir, template_path, endpoint, workload_dir, runs, against="sink" if sink else endpoint)
    finally:
        if sink:
            sink.terminate()
            _, counts = sink.communicate()
            print(f"sink requests: {counts.strip()}", file=sys.stderr)


def measure(build_dir, template_path, endpoint, workload_dir, runs, against):
    template = yaml_parse(open(template_path).read())
    fixtures = os.path.join(os.path.dirname(__file__), "..", "..", "target", "fixtures")
    stream_1000 = json.load(open(os.path.join(workload_dir, "stream-1000-0.json")))
    sqs_1000 = {"Records": [m for batch in json.load(open(os.path.join(workload_dir, "sqs-1000.json"))) for m in batch["Records"]]}
    base = {
        "PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint, "RUST_LOG": "warn",
    }
    rows = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        bootstrap = os.path.join(build_dir, logical_id, "bootstrap")
        env = dict(base, AWS_LAMBDA_FUNCTION_NAME=logical_id, **environment(template, logical_id))
        env["RUST_LOG"] = "warn"
        fixture = json.load(open(os.path.join(fixtures, f"{logical_id}.json")))["event"]
        inits, firsts, warms = [], [], []
        answered_as_expected = True
        for _ in range(int(runs)):
            init, durations, _, answers = run(bootstrap, env, [fixture] * 21)
            inits.append(init)
            firsts.append(durations[0])
            warms.extend(durations[1:])
            ok, seen = check(answers[0], json.load(open(os.path.join(fixtures, f"{logical_id}.json")))["expect"])
            if not ok:
                answered_as_expected = False
                print(f"warning: {logical_id} answered {seen[:300]}", file=sys.stderr)
        big = stream_1000 if "Trigger" in logical_id else sqs_1000 if "Listener" in logical_id else None
        batch_ms, rss_kb = big_batch(bootstrap, env, big or fixture)
        rows.append({
            "function": logical_id,
            "against": against,
            "answered_as_expected": answered_as_expected,
            "init_ms": statistics.median(inits),
            "first_ms": statistics.median(firsts),
            "warm_ms": statistics.median(warms),
            "batch_1000_ms": batch_ms if big else None,
            "peak_rss_mb": rss_kb / 1024 if rss_kb else None,
            "size_mb": os.path.getsize(bootstrap) / 1024 / 1024,
        })
        print(f"measured {logical_id}", file=sys.stderr, flush=True)
    print(f"against {against}; medians of {runs} fresh starts, warm: {int(runs) * 20} invocations")
    print("| function | init (ms) | first invocation (ms) | warm median (ms) | 1,000-record batch (ms) | peak RSS (MB) | size (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rss = f"{r['peak_rss_mb']:.1f}" if r["peak_rss_mb"] else "not measured (endpoint too slow for the batch)"
        batch = f"{r['batch_1000_ms']:.1f}" if r["batch_1000_ms"] else "—"
        flag = "" if r["answered_as_expected"] else " (unexpected answer)"
        print(f"| {r['function']}{flag} | {r['init_ms']:.1f} | {r['first_ms']:.2f} | {r['warm_ms']:.2f} | {batch} | {rss} | {r['size_mb']:.1f} |")
    json.dump(rows, open(os.path.join(workload_dir, "coldstart.json"), "w"), indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
