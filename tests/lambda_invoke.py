"""Invokes each built `bootstrap` the way Lambda does: as a fresh process that polls a Lambda
Runtime API (served here, on 127.0.0.1) for its event and posts its response back.

Each function gets its fixture (FIXTURES/<LogicalId>.json, written by `devstack fixtures`
from the template and the functions' declarations: an event in AWS's documented shape and
the expected response). The functions reach DynamoDB and EventBridge
through their real AWS adapters, at an AWS-compatible endpoint (moto) where the devstack has
created the template's resources under the prefix `lambda`.

Usage: lambda_invoke.py BUILD_DIR TEMPLATE ENDPOINT FIXTURES
"""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from samtranslator.yaml_helper import yaml_parse

PREFIX = "lambda"


class RuntimeApi:
    """The Lambda Runtime API for one invocation: serves the event once, keeps the answer."""

    def __init__(self, event):
        self.event = json.dumps(event).encode()
        self.served = False
        self.answer = None
        self.done = threading.Event()
        self.first_next_at = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.send_error(404)
                if api.first_next_at is None:
                    api.first_next_at = time.monotonic()
                if api.served:
                    api.done.wait(60)
                    try:
                        return self.send_error(410)
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the function was stopped once it had answered
                api.served = True
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", "fixture-request")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:fixture")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e;Sampled=0")
                self.send_header("Content-Length", str(len(api.event)))
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = "response" if self.path.endswith("/response") else "error"
                api.answer = (kind, json.loads(body or b"null"))
                self.send_response(202)
                self.end_headers()
                api.done.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.server_address[1]}"


def environment(template, logical_id):
    """The function's environment, as CloudFormation would resolve it under the prefix."""
    variables = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    variables.update(template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    resolved = {}
    for name, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            default = template.get("Parameters", {}).get(ref, {}).get("Default")
            resolved[name] = str(default) if default is not None else f"{PREFIX}-{ref}"
        else:
            resolved[name] = str(value)
    return resolved


def create_identities(template, endpoint):
    """The template's SES identities, created at the endpoint as CloudFormation would create
    them (moto counts an identity it created as verified), so that mail can be sent from them."""
    import boto3

    ses = boto3.client("sesv2", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::SES::EmailIdentity":
            identity = resource["Properties"]["EmailIdentity"]
            if isinstance(identity, dict) and "Ref" in identity:
                identity = template["Parameters"][identity["Ref"]]["Default"]
            ses.create_email_identity(EmailIdentity=identity)


def subset(expected, actual):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    return expected == actual


def invoke(bootstrap, env, event):
    api = RuntimeApi(event)
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address)
    started = time.monotonic()
    process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finished = api.done.wait(30)
    process.kill()
    stdout, stderr = process.communicate()
    api.server.shutdown()
    stderr = (stderr + stdout).decode(errors="replace")[-2000:]
    if not finished:
        return None, stderr, None, []
    init_ms = (api.first_next_at - started) * 1000 if api.first_next_at else None
    lines = []
    for line in stdout.decode(errors="replace").splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return api.answer, stderr, init_ms, lines


EVENT_FIELDS = ["eventId", "eventType", "aggregate", "version", "correlationId", "causationId"]


def role(resource):
    kinds = {e["Type"] for e in resource["Properties"].get("Events", {}).values()}
    return "trigger" if "DynamoDB" in kinds else "listener" if "SQS" in kinds else "api"


def observed(logical_id, kind, event, lines):
    """What the function's stdout must show: EMF lines in namespace Bulkhead with the
    dimension `function`, the figures of its role, and the event's ids on every line about
    one event. Answers what is wrong, if anything."""
    wrong = []
    emf = [l for l in lines if "_aws" in l]
    figures = {}
    for line in emf:
        directive = line["_aws"]["CloudWatchMetrics"][0]
        if directive["Namespace"] != "Bulkhead" or "function" not in directive["Dimensions"][0]:
            wrong.append(f"an EMF line outside Bulkhead/function: {line}")
        if line.get("function") != logical_id:
            wrong.append(f"an EMF line of function {line.get('function')}")
        for metric in directive["Metrics"]:
            if metric["Name"] not in line:
                wrong.append(f"{metric['Name']} has no value: {line}")
            figures[metric["Name"]] = {d: line.get(d) for d in directive["Dimensions"][0]}
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
    expected = {
        "trigger": ["EventsPublished", "PutEventsLatency"],
        "listener": ["MessagesFailed"],
        "api": ["Commands"] if method not in ("GET", "HEAD") else [],
    }[kind]
    for name in expected:
        if name not in figures:
            wrong.append(f"no {name} figure among {sorted(figures)}")
    if kind == "listener" and not {"MessagesApplied", "MessagesIgnored"} & set(figures):
        wrong.append(f"no applied or ignored message among {sorted(figures)}")
    if "Commands" in expected and "outcome" not in figures.get("Commands", {}):
        wrong.append("Commands has no outcome dimension")
    about = [l for l in lines if l.get("message") in ("event to publish", "message applied", "message ignored")]
    if kind != "api" and not about:
        wrong.append("no line about an event")
    for line in about:
        missing = [f for f in EVENT_FIELDS if f not in line.get("span", {})]
        if missing:
            wrong.append(f"a line about an event without {missing}: {line}")
    return wrong


def check(answer, expect):
    kind, response = answer
    if kind != "response":
        return False, f"the function reported an error: {response}"
    if "statusCode" in expect:
        body = response.get("body") or "null"
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        actual = {"statusCode": response.get("statusCode"), "headers": headers, "body": json.loads(body)}
        return subset(expect, actual), json.dumps(actual)
    return subset(expect, response), json.dumps(response)


def main(build_dir, template_path, endpoint, fixtures_dir):
    template = yaml_parse(open(template_path).read())
    functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": endpoint,
    }
    create_identities(template, endpoint)
    failures = []
    for logical_id in functions:
        bootstrap = os.path.join(build_dir, logical_id, "bootstrap")
        fixture_path = os.path.join(fixtures_dir, f"{logical_id}.json")
        if not os.path.exists(fixture_path):
            failures.append(f"{logical_id}: no fixture at {fixture_path} (devstack fixtures makes one for every function)")
            continue
        fixture = json.load(open(fixture_path))
        env = dict(base, AWS_LAMBDA_FUNCTION_NAME=logical_id, **environment(template, logical_id))
        if not os.access(bootstrap, os.X_OK):
            failures.append(f"{logical_id}: no bootstrap at {bootstrap}")
            continue
        answer, stderr, init_ms, lines = invoke(bootstrap, env, fixture["event"])
        if answer is None:
            failures.append(f"{logical_id}: no answer within 30 s\n{stderr}")
            continue
        ok, seen = check(answer, fixture["expect"])
        kind = role(template["Resources"][logical_id])
        wrong = observed(logical_id, kind, fixture["event"], lines)
        emf = sum(1 for l in lines if "_aws" in l)
        print(f"{'ok  ' if ok and not wrong else 'FAIL'} {logical_id}: init {init_ms:.1f} ms, {emf} EMF lines, answered {seen[:140]}")
        if not ok:
            failures.append(f"{logical_id}: expected {json.dumps(fixture['expect'])}\n  got {seen}\n{stderr}")
        if wrong:
            failures.append(f"{logical_id}: " + "; ".join(wrong[:5]))
        if kind != "api":
            # A payload that is not a batch fails the invocation, which Lambda retries whole.
            answer, stderr, _, _ = invoke(bootstrap, env, {"Records": "not a list"})
            if answer is None or answer[0] != "error":
                failures.append(f"{logical_id}: a payload that is not a batch answered {answer}\n{stderr}")
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print(f"invocations: {len(functions) - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
