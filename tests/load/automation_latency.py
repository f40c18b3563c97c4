#!/usr/bin/env python3
"""Automation latency on a running local server: record POST -> notification visible.

Bounded: EVENTS events one after another (default 60), each waited for at most 5 s.
Usage: python3 tests/load/automation_latency.py [BASE_URL] [ADMIN_TOKEN]
Prints p50, p90, p99 and max in milliseconds.
"""
import json
import sys
import time
import urllib.request
import uuid

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000"
ADMIN = sys.argv[2] if len(sys.argv) > 2 else ""
EVENTS = 60


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE + path, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data, timeout=10) as answer:
        text = answer.read()
        return json.loads(text) if text else None


def main():
    tenant = "lat-" + uuid.uuid4().hex[:8]
    email, password = f"owner@{tenant}.example.com", "latency password 1234"
    call("POST", "/api/v1/auth/initialize-tenant",
         {"tenant_id": tenant, "name": tenant, "admin_email": email, "admin_password": password}, ADMIN)
    token = call("POST", "/api/v1/auth/login", {"tenant_id": tenant, "email": email, "password": password})["access_token"]
    call("POST", f"/api/v1/tenants/{tenant}/systems", {"system_id": "sales"}, token)
    call("POST", "/api/v1/automation/rules", {
        "name": "latency", "module_type": "sales", "trigger_id": "high_value_opportunity",
        "conditions": [{"type": "value_threshold", "value": 10000}],
        "actions": [{"type": "send_notification", "parameters": {"recipient": "m@example.com", "message": "{{opportunity_name}}"}}],
    }, token)
    latencies = []
    for i in range(EVENTS):
        seen = len(call("GET", "/api/v1/notifications?limit=200", token=token)["items"])
        start = time.perf_counter()
        call("POST", "/api/v1/systems/sales/records/opportunities",
             {"name": f"deal {i}", "value": 20000, "stage": "prospecting"}, token)
        deadline = start + 5
        while time.perf_counter() < deadline:
            if len(call("GET", "/api/v1/notifications?limit=200", token=token)["items"]) > seen:
                latencies.append((time.perf_counter() - start) * 1000)
                break
            time.sleep(0.001)
        else:
            print(f"event {i}: no notification within 5 s", file=sys.stderr)
        time.sleep(0.02)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(f"events {len(latencies)}/{EVENTS}  p50 {pick(0.5):.1f} ms  p90 {pick(0.9):.1f} ms  "
          f"p99 {pick(0.99):.1f} ms  max {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
