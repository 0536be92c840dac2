"""The event explorer (/_devstack/ui) in a real headless Chromium (Debian's chromium and
chromedriver, driven by Selenium): an order followed through the page to every view that
takes it, a message put in a dead-letter queue and redriven from the page, a service taken
down and brought back with its checkbox.

Which functions must apply OrderPlaced is read off template.yaml: the rules whose pattern
takes it, their target queues, and the functions that consume those queues.

Usage: explorer_browser.py DEVSTACK_BINARY
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SECRET = "explorer-browser-test"


def cloudformation(loader, suffix, node):
    """A short-form intrinsic (`!GetAtt A.Arn`, `!Ref A`...) in its long form."""
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {("Ref" if suffix == "Ref" else f"Fn::{suffix}"): value}


def load_template():
    yaml.SafeLoader.add_multi_constructor("!", cloudformation)
    return yaml.safe_load(open(os.path.join(ROOT, "template.yaml")))


def takers(template, source, detail_type):
    """Function logical ids that the template routes this event to."""
    resources = template["Resources"]
    queues = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        pattern = resource["Properties"]["EventPattern"]
        if source in pattern.get("source", [source]) and detail_type in pattern.get("detail-type", [detail_type]):
            for target in resource["Properties"]["Targets"]:
                queues.add(target["Arn"]["Fn::GetAtt"][0])
    functions = set()
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS" and event["Properties"]["Queue"]["Fn::GetAtt"][0] in queues:
                functions.add(name)
    return functions


class Devstack:
    def __init__(self, binary, work):
        self.binary = binary
        env = {**os.environ, "BULKHEAD_DEV_JWT_SECRET": SECRET, "RUST_LOG": "warn"}
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--data-dir", os.path.join(work, "data"),
             "--template", os.path.join(ROOT, "template.yaml"), "--max-visibility-ms", "100"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "devstack.log"), "w"), text=True, env=env,
        )
        first = self.process.stdout.readline()
        self.url = first[first.index("http://"):].split()[0]
        # Keep reading its output, so that a full pipe never stops it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def token(self, sub, role):
        out = subprocess.run(
            [self.binary, "token", "--sub", sub, "--role", role, "--template", os.path.join(ROOT, "template.yaml")],
            capture_output=True, text=True, env={**os.environ, "BULKHEAD_DEV_JWT_SECRET": SECRET}, check=True,
        )
        return out.stdout.strip()

    def call(self, method, path, body=None, token=None, headers=None):
        request = urllib.request.Request(self.url + path, method=method)
        if body is not None:
            request.data = json.dumps(body).encode()
            request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
            return json.loads(data) if data else None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait(driver, what, condition, seconds=20, describe=None):
    """Polls `condition` until it answers something true. The page redraws its tables every
    second, so an element found a moment ago may be gone: such a try counts as a miss.
    `describe` says what the page showed instead, for the failure."""
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            answer = condition(driver)
            if answer:
                return answer
        except Exception as e:  # a stale element, mostly
            last = e
        time.sleep(0.1)
    shown = f"; {describe(driver)}" if describe else ""
    raise AssertionError(f"the page never showed {what} (last error: {str(last)[:200]}{shown})")


def click(driver, element_id):
    wait(driver, f"#{element_id} to click", lambda d: d.find_element(By.ID, element_id).click() or True)


def set_faults(driver, plan):
    """Replaces the fault plan from the page's editor."""
    area = driver.find_element(By.ID, "faults-plan")
    area.click()
    area.clear()
    area.send_keys(json.dumps(plan))
    typed = area.get_attribute("value")
    assert typed == json.dumps(plan), f"the editor holds {typed!r}: a refresh wrote over the edit"
    click(driver, "faults-set")
    wait(driver, "the plan set", lambda d: d.find_element(By.ID, "faults-state").text == "set",
         describe=lambda d: f"#faults-state says {d.find_element(By.ID, 'faults-state').text!r}")
    driver.execute_script("document.getElementById('faults-state').textContent = ''")


def main(binary):
    template = load_template()
    expected = takers(template, "bulkhead.orders", "OrderPlaced")
    assert len(expected) >= 2, expected
    checks = 0
    with tempfile.TemporaryDirectory() as work:
        stack = Devstack(os.path.abspath(binary), work)
        driver = browser()
        try:
            driver.get(stack.url + "/_devstack/ui")
            wait(driver, "a live tail", lambda d: d.find_element(By.ID, "tail-state").text == "live")
            stack.call("PUT", "/products/A1", {"name": "Anchor", "priceCents": 1250}, stack.token("mia", "merchandiser"))
            alice = stack.token("alice", "customer")
            order = stack.call("POST", "/orders", {"lines": [{"sku": "A1", "quantity": 2}]}, alice,
                               {"x-correlation-id": "corr-browser-1", "idempotency-key": "browser-key-1"})["id"]

            # The live tail shows the order's event as it is published and applied.
            wait(driver, "OrderPlaced in the live tail", lambda d: any(
                "OrderPlaced" in row.text and row.get_attribute("data-kind") == "publish"
                for row in d.find_elements(By.CSS_SELECTOR, "#tail tr")))
            checks += 1

            # One change end to end: request, publish, and every view that takes it.
            Select(driver.find_element(By.ID, "path-kind")).select_by_visible_text("correlationId")
            driver.find_element(By.ID, "path-query").send_keys("corr-browser-1")

            def path_rows(d):
                d.find_element(By.ID, "path-go").click()
                time.sleep(0.2)
                return d.find_elements(By.CSS_SELECTOR, "#path-hops tbody tr")

            def complete(d):
                rows = path_rows(d)
                applied = {r.get_attribute("data-function") for r in rows if r.get_attribute("data-kind") == "applied"}
                return rows if expected <= applied else False

            rows = wait(driver, f"an applied hop for each of {sorted(expected)}", complete)
            kinds = [r.get_attribute("data-kind") for r in rows]
            assert kinds[0] == "request", kinds
            request = rows[0].text
            for seen in ("POST /orders", "status 201", "sub alice", "Idempotency-Key browser-key-1"):
                assert seen in request, (seen, request)
            assert "publish" in kinds and "write" in kinds, kinds
            assert kinds.index("write") < kinds.index("publish"), kinds
            write = next(r.text for r in rows if r.get_attribute("data-kind") == "write")
            assert f"order#{order} written at version 1" in write, write
            publish = next(r.text for r in rows if r.get_attribute("data-kind") == "publish")
            assert "OrderPlaced" in publish and "schemaVersion 2" in publish, publish
            routed = " ".join(p.text for p in driver.find_elements(By.CSS_SELECTOR, "#path pre.routed"))
            for function in expected:
                assert function in routed, (function, routed)
            checks += 1

            # The order's history.
            driver.find_element(By.ID, "history-id").send_keys(order)
            driver.find_element(By.ID, "history-go").click()
            wait(driver, "the order's version 1", lambda d: "v1 OrderPlaced" in d.find_element(By.ID, "history").text)
            checks += 1

            # A message in a dead-letter queue, redriven from the page.
            set_faults(driver, {"listenerErrorOn": ["corr-browser-2"]})
            wait(driver, "the fault plan in force", lambda d: stack.call("GET", "/_devstack/status")["faults"]["listenerErrorOn"] == ["corr-browser-2"])
            second = stack.call("POST", "/orders", {"lines": [{"sku": "A1", "quantity": 1}]}, alice,
                                {"x-correlation-id": "corr-browser-2"})["id"]
            dlq = "TrackingDLQ"

            def dead_letters(d):
                cells = d.find_elements(By.CSS_SELECTOR, f"#queue-{dlq} td")
                return len(cells) > 1 and cells[1].text == "1"

            wait(driver, f"a message in {dlq}", dead_letters, seconds=30)
            click(driver, f"peek-button-{dlq}")
            peeked = wait(driver, "the dead letter", lambda d: d.find_element(By.ID, f"peek-{dlq}").text)
            assert "1 message(s)" in peeked and second in peeked, peeked
            set_faults(driver, {})
            wait(driver, "no fault", lambda d: stack.call("GET", "/_devstack/status")["faults"]["listenerErrorOn"] == [])
            click(driver, f"redrive-{dlq}")
            wait(driver, f"{dlq} empty again", lambda d: d.find_elements(By.CSS_SELECTOR, f"#queue-{dlq} td")[1].text == "0")
            driver.find_element(By.ID, "path-query").clear()
            driver.find_element(By.ID, "path-query").send_keys("corr-browser-2")
            wait(driver, "tracking applying the redriven message", lambda d: any(
                r.get_attribute("data-kind") == "applied" and r.get_attribute("data-function") == "TrackingListenerFunction"
                for r in path_rows(d)))
            checks += 1

            # A service down and up again with its checkbox.
            click(driver, "down-tracking")
            wait(driver, "tracking down", lambda d: "tracking" in stack.call("GET", "/_devstack/status")["down"])
            wait(driver, "the summary saying so", lambda d: "down: tracking" in d.find_element(By.ID, "summary").text)
            click(driver, "down-tracking")
            wait(driver, "tracking up", lambda d: stack.call("GET", "/_devstack/status")["down"] == [])
            checks += 1
        finally:
            if os.environ.get("BULKHEAD_EXPLORER_SCREENSHOT"):
                driver.set_window_size(1400, 1100)
                driver.save_screenshot(os.environ["BULKHEAD_EXPLORER_SCREENSHOT"])
            driver.quit()
            stack.stop()
    print(f"explorer: {checks} checks passed in headless Chromium")


if __name__ == "__main__":
    main(*sys.argv[1:])
