#!/usr/bin/env python3
"""Performance figures of the product, measured against their floors in one run.

1. Every Lambda function's cold start (init + first invocation), warm invocation and
   peak RSS through the cold-start harness (a loopback Lambda Runtime API; DynamoDB,
   EventBridge and SQS are moto on loopback), beside the hello-world `lambda_runtime`
   floor; the stripped binary and its deployment zip (`bootstrap`, deflate -9, as
   `cargo lambda build --output-format zip` packs it).
2. The local server's authenticated GET (`/api/v1/auth/me`) against a bare axum JSON
   handler, with wrk (1 thread, 16 connections).

Bounded: RUNS fresh processes per function (default 7), WRK_SECONDS per wrk run
(default 10). Prints a markdown table.

Usage: python3 scripts/bench.py --tools DIR
  DIR: the team's measuring tools (coldstart.py, hello-lambda/, axum-hello/).
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
ADMIN = "bench-platform-admin-token-0123456789abcdef"
JWT = "bench-token-signing-key-0123456789abcdef01"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def api_event(method, path):
    """An API Gateway HTTP API (v2) event without credentials: the function's router and
    authenticator answer it (401) without the store."""
    return {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path, "rawQueryString": "",
            "headers": {"accept": "application/json", "host": "api.example.com"},
            "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "api.example.com",
                               "domainPrefix": "api", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                                               "sourceIp": "203.0.113.10", "userAgent": "bench"},
                               "requestId": "bench", "routeKey": f"{method} {path}", "stage": "$default",
                               "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 1795305600000},
            "isBase64Encoded": False}


# (function, event): API functions get a GET of one of their routes; stages their sample payload.
FUNCTIONS = [
    ("health", api_event("GET", "/health/live")),
    ("catalog", api_event("GET", "/api/v1/systems")),
    ("tenant-systems", api_event("GET", "/api/v1/tenants/acme/systems")),
    ("config", api_event("GET", "/api/v1/config/tenants/acme/configs")),
    ("auth", api_event("GET", "/api/v1/auth/me")),
    ("users", api_event("GET", "/api/v1/users")),
    ("audit", api_event("GET", "/api/v1/audit-logs")),
    ("records", api_event("GET", "/api/v1/systems/sales/records/opportunities")),
    ("automation", api_event("GET", "/api/v1/automation/rules")),
    ("settings", api_event("GET", "/api/v1/settings")),
    ("feature-flags", api_event("GET", "/api/v1/settings/feature-flags")),
    ("notes", api_event("GET", "/api/v1/tools/notes")),
    ("calls", api_event("GET", "/api/v1/tools/calls")),
    ("reviews", api_event("GET", "/api/v1/tools/reviews")),
    ("calendar-events", api_event("GET", "/api/v1/tools/events")),
    ("attachments", api_event("GET", "/api/v1/tools/attachments")),
    ("tenants", api_event("GET", "/api/v1/tenants/acme/exports/01J00000000000000000000000")),
    ("docs", api_event("GET", "/openapi.json")),
    ("event-publisher", "events/event-publisher-stream.json"),
    ("rule-evaluator", "events/rule-evaluator-event.json"),
    ("action-executor", "events/action-executor-batch.json"),
    ("dead-letters", "events/dead-letters-schedule.json"),
    # At deployment only: a stack deletion's request (the seeder answers CloudFormation and
    # keeps the catalog), so the figure is the function's start, not the catalog's writes.
    ("catalog-seeder", "seeder-delete"),
]


class CfnResponses:
    """A loopback listener for the custom resource's answer to CloudFormation."""

    def __enter__(self):
        import http.server, threading
        class H(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def event(self):
        with open(os.path.join(ROOT, "events", "catalog-seed-create.json")) as f:
            event = json.load(f)
        event["RequestType"] = "Delete"
        event["PhysicalResourceId"] = "builtin-catalog"
        event["ResponseURL"] = f"http://127.0.0.1:{self.server.server_port}/cfn-response"
        return event

    def __exit__(self, *a):
        self.server.shutdown()


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, **kw)


def moto_world():
    import boto3
    port = free_port()
    proc = subprocess.Popen(["moto_server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    endpoint = f"http://127.0.0.1:{port}"
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    boto3.client("dynamodb", **kw).create_table(
        TableName="bench", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}, {"AttributeName": "SK", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}])
    boto3.client("events", **kw).create_event_bus(Name="bench-events")
    queue = boto3.client("sqs", **kw).create_queue(QueueName="bench-actions")["QueueUrl"]
    env = {"TABLE_NAME": "bench", "AWS_ENDPOINT_URL": endpoint, "EVENT_BUS_NAME": "bench-events",
           "ACTION_QUEUE_URL": queue, "JWT_SECRET": JWT, "PLATFORM_ADMIN_TOKEN": ADMIN, "RUST_LOG": "warn"}
    return proc, env


def harness(tools, runs, event, env, binary):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        if isinstance(event, str):
            shutil.copyfile(os.path.join(ROOT, event), f.name)
        else:
            json.dump(event, f)
        path = f.name
    cmd = [sys.executable, os.path.join(tools, "coldstart.py"), "-n", str(runs), "--event", path]
    for k, v in env.items():
        cmd += ["--env", f"{k}={v}"]
    out = subprocess.run(cmd + ["--", binary], check=True, capture_output=True, text=True).stdout
    os.unlink(path)
    return json.loads(out.strip().splitlines()[-1])


def sizes(binary):
    with tempfile.TemporaryDirectory() as d:
        stripped = os.path.join(d, "bootstrap")
        shutil.copyfile(binary, stripped)
        subprocess.run(["strip", stripped], check=True)
        archive = os.path.join(d, "bootstrap.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(stripped, "bootstrap")
        return os.path.getsize(stripped) / 1e6, os.path.getsize(archive) / 1e6


def wrk(url, seconds, headers=()):
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("Requests/sec"))
    return float(line.split()[1])


def post(url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def throughput(tools, seconds):
    data = tempfile.mkdtemp()
    port, hello_port = free_port(), free_port()
    server = subprocess.Popen([os.path.join(TARGET, "release", "local-server")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, "PORT": str(port), "DATA_DIR": data, "PLATFORM_ADMIN_TOKEN": ADMIN, "RUST_LOG": "warn"})
    hello = subprocess.Popen([os.path.join(tools, "axum-hello", "target", "release", "axum-hello")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PORT": str(hello_port)})
    try:
        wait_port(port)
        wait_port(hello_port)
        base = f"http://127.0.0.1:{port}"
        post(f"{base}/api/v1/auth/initialize-tenant", {"tenant_id": "bench", "name": "Bench", "admin_email": "owner@bench.example.com",
                                                      "admin_password": "owner password 1234"}, ADMIN)
        token = post(f"{base}/api/v1/auth/login", {"tenant_id": "bench", "email": "owner@bench.example.com",
                                                   "password": "owner password 1234"})["access_token"]
        me = wrk(f"{base}/api/v1/auth/me", seconds, [f"Authorization: Bearer {token}"])
        bare = wrk(f"http://127.0.0.1:{hello_port}/hello", seconds)
        return me, bare
    finally:
        for p in (server, hello):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", required=True)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 7)))
    ap.add_argument("--wrk-seconds", type=int, default=int(os.environ.get("WRK_SECONDS", 10)))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated functions (default: all)")
    ap.add_argument("--no-wrk", action="store_true")
    a = ap.parse_args()
    tools = os.path.abspath(a.tools)
    wanted = [f for f in a.only.split(",") if f]
    if not a.no_build:
        packages = [arg for name in wanted for arg in ("-p", name)] or ["--bins"]
        run(["cargo", "build", "--release", "--locked", *packages], cwd=ROOT)
        for peer in ("hello-lambda", "axum-hello"):
            run(["cargo", "build", "--release"], cwd=os.path.join(tools, peer),
                env={**os.environ, "CARGO_TARGET_DIR": os.path.join(tools, peer, "target")})
    moto, env = moto_world()
    rows = []
    try:
        floor = harness(tools, a.runs, {"ping": 1}, {}, os.path.join(tools, "hello-lambda", "target", "release", "hello-lambda"))
        floor_total = floor["cold_total_ms"]
        binary = os.path.join(tools, "hello-lambda", "target", "release", "hello-lambda")
        rows.append(("hello-world floor", floor, *sizes(binary)))
        with CfnResponses() as cfn:
            for name, event in [(n, e) for n, e in FUNCTIONS if not wanted or n in wanted]:
                binary = os.path.join(TARGET, "release", name)
                event = cfn.event() if event == "seeder-delete" else event
                rows.append((name, harness(tools, a.runs, event, env, binary), *sizes(binary)))
    finally:
        moto.terminate()
    print(f"\nMachine: {os.cpu_count()} cores, {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}")
    # What a cold start adds over a warm invocation of the same event (init + first - warm):
    # the stages' events do store and queue calls on moto, which a warm invocation pays too.
    floor_added = added(floor)
    print("\n| function | init ms | first invoke ms | cold total ms | vs floor | warm ms | cold - warm ms | vs floor | "
          "peak RSS MB | stripped MB | zip MB | outcome |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r, stripped, zipped in rows:
        if "error" in r:
            print(f"| {name} | error: {r['error']} |")
            continue
        total = r["cold_total_ms"]
        print(f"| {name} | {r['init_ms']:.1f} | {r['first_invoke_ms']:.2f} | {total:.1f} | {total / floor_total:.1f}x | "
              f"{r.get('warm_p50_ms') or 0:.2f} | {added(r):.1f} | {added(r) / floor_added:.1f}x | "
              f"{r.get('rss_mb') or 0:.1f} | {stripped:.1f} | {zipped:.1f} | {r['outcome']} |")
    misses = goal_misses(rows[1:], floor_total)
    print("\nGoals (cold total <= 2x floor, peak RSS <= 16 MB, zip <= 5 MB): "
          + ("all met" if not misses else "missed: " + "; ".join(misses)))
    if a.no_wrk:
        return
    me, bare = throughput(tools, a.wrk_seconds)
    print(f"\nwrk -t1 -c16 -d{a.wrk_seconds}s: local server GET /api/v1/auth/me {me:,.0f} req/s; "
          f"bare axum handler {bare:,.0f} req/s; ratio {me / bare:.2f}x (goal >= 0.5x: {'met' if me >= bare / 2 else 'missed'})")


def added(r):
    """Milliseconds a cold start adds over a warm invocation of the same event."""
    return r["cold_total_ms"] - (r.get("warm_p50_ms") or 0)


def goal_misses(rows, floor_total):
    """What misses the goals, one phrase per function and goal."""
    misses = []
    for name, r, _stripped, zipped in rows:
        if "error" in r:
            misses.append(f"{name} failed")
            continue
        if r["cold_total_ms"] > 2 * floor_total:
            misses.append(f"{name} cold {r['cold_total_ms'] / floor_total:.1f}x")
        if (r.get("rss_mb") or 0) > 16:
            misses.append(f"{name} RSS {r['rss_mb']:.1f} MB")
        if zipped > 5:
            misses.append(f"{name} zip {zipped:.1f} MB")
    return misses


if __name__ == "__main__":
    main()
