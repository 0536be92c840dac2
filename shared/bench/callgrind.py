"""Instruction counts of the release bootstraps, which survive the machine's noise where
wall times do not: valgrind's callgrind counts every instruction a bootstrap executes, the
same for the same binary, input and environment whatever else the machine is doing.

For each trigger and listener: the instructions of a start plus one 1,000-record batch
(the workload's), of a start plus one small batch (the function's fixture), and their
difference, the batch's own count. Against the AWS-shaped sink (aws_sink.py), at 0 ms.

Usage: callgrind.py BUILD_DIR TEMPLATE WORKLOAD_DIR [FUNCTION ...]
"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import coldstart  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


def instructions(bootstrap, env, event, out):
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no")
    _, _, _, answers = coldstart.run(bootstrap, env, [event], patience=600, wrapper=wrapper)
    kind, response = answers[0]
    if kind != "response":
        raise RuntimeError(f"{bootstrap} answered {kind}: {json.dumps(response)[:300]}")
    for line in open(out):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main(build_dir, template_path, workload_dir, *only):
    template = yaml_parse(open(template_path).read())
    fixtures = os.path.join(os.path.dirname(__file__), "..", "..", "target", "fixtures")
    stream_1000 = json.load(open(os.path.join(workload_dir, "stream-1000-0.json")))
    sqs_1000 = {"Records": [m for batch in json.load(open(os.path.join(workload_dir, "sqs-1000.json"))) for m in batch["Records"]]}
    sink, endpoint = coldstart.start_sink()
    rows = []
    try:
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::Serverless::Function" or (only and logical_id not in only):
                continue
            big = stream_1000 if "Trigger" in logical_id else sqs_1000 if "Listener" in logical_id else None
            if big is None:
                continue
            env = {
                "PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_ENDPOINT_URL": endpoint, "RUST_LOG": "warn", "AWS_LAMBDA_FUNCTION_NAME": logical_id,
                **coldstart.environment(template, logical_id),
            }
            bootstrap = os.path.join(build_dir, logical_id, "bootstrap")
            fixture = json.load(open(os.path.join(fixtures, f"{logical_id}.json")))["event"]
            with tempfile.TemporaryDirectory() as work:
                small = instructions(bootstrap, env, fixture, os.path.join(work, "small.out"))
                large = instructions(bootstrap, env, big, os.path.join(work, "large.out"))
            rows.append((logical_id, small, large))
            print(f"counted {logical_id}", file=sys.stderr, flush=True)
    finally:
        sink.terminate()
        sink.communicate()
    print("| function | start + fixture batch | start + 1,000-record batch | the 1,000-record batch | per record |")
    print("|---|---|---|---|---|")
    for logical_id, small, large in rows:
        print(f"| {logical_id} | {small / 1e6:.1f} M | {large / 1e6:.1f} M | {(large - small) / 1e6:.1f} M | {(large - small) / 1000 / 1e3:.0f} k |")


if __name__ == "__main__":
    main(*sys.argv[1:])
