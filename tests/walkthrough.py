"""Runs the README's walkthrough against a fresh devstack, so that the docs stay true.

Usage: walkthrough.py DEVSTACK_BINARY
"""
import re
import socket
import subprocess
import sys
import tempfile


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(binary):
    readme = open("README.md").read()
    section = readme[readme.index("## Walkthrough"):readme.index("## Architecture")]
    script = "set -eu\n" + "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S))
    port = free_port()
    script = script.replace("./target/release/devstack", binary).replace("127.0.0.1:3000", f"127.0.0.1:{port}")
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen([binary, "--port", str(port), "--data-dir", data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            first = server.stdout.readline()
            assert f"http://127.0.0.1:{port}" in first, first
            run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
        finally:
            server.terminate()
            server.wait(timeout=10)
    out = run.stdout
    checks = {
        "the script ran to the end": run.returncode == 0,
        "a product was created": '{"sku":"A1","version":1}' in out,
        "tracking read the order at version 2 with its name": '"name":"Anchor","quantity":3' in out,
        "a shipped order is too late to cancel": '"code":"too-late"' in out,
        "fulfillment lists the shipped order": '"lines":[{"sku":"A1","quantity":3}]' in out,
        "sales counted it": '"revenueCents":3750' in out,
        "the replay to notifications completed": re.search(r"COMPLETED (\d+)/\1 events", out) is not None,
        "and mailed nothing twice": out.count('"subject":"Your order') == 2,
        "the inbox has the shipment": '"kind":"shipped","lines":[{"sku":"A1","quantity":3}]' in out,
        "orders down answers 503": '"code":"service-down"' in out,
        "tracking caught up after being down": '"status":"DELIVERED"' in out,
        "no 500 anywhere": '"status":500' not in out,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(out)
        print(run.stderr, file=sys.stderr)
    for name in failed:
        print(f"FAILED: {name}", file=sys.stderr)
    print(f"walkthrough: {len(checks) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
