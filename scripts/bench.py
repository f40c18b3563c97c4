#!/usr/bin/env python3
"""Performance figures of the product, measured against their floors in one run.

1. Every Lambda function's cold start (init + first invocation), warm invocation and
   peak RSS through the cold-start harness (a loopback Lambda Runtime API; DynamoDB,
   EventBridge and SQS are moto on loopback), beside the hello-world `lambda_runtime`
   floor; the stripped binary and its deployment zip (`bootstrap`, deflate -9, as
   `cargo lambda build --output-format zip` packs it).
   The stages whose sample makes all its store calls at once are measured
   again as the store-calls peer (`scripts/peers/store-calls`: the hello-world function
   sending the very requests the stage sent, recorded through a proxy, with no SDK): the
   least any function making those calls takes on this store.
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


def loopback_server(handler):
    """An HTTP server on a free loopback port, serving `handler` in background threads
    (stop it with `.shutdown()`)."""
    import http.server, threading
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


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


# What the stage samples of `events/` do in an empty world (no tenant, no rule): the
# rows after them measure the path of an event that matches a rule.
STAGE_LABELS = {
    "rule-evaluator": "rule-evaluator, no rule",
    "action-executor": "action-executor, run unknown",
}


# The stages whose sample, in the empty world, makes all its store calls at once (one
# round of concurrent requests, as their code joins them): the store-calls peer replays
# them at once too. (A proxy in Python cannot tell from the timing: it serves one request
# at a time.)
AT_ONCE = ("event-publisher", "rule-evaluator", "action-executor", "dead-letters")
PEER = os.path.join(ROOT, "scripts", "peers", "store-calls")
PEER_BINARY = os.path.join(TARGET, "peers", "release", "store-calls")


class Recorder:
    """A loopback proxy in front of the AWS endpoint that keeps every request sent through
    it (method, path, headers, body)."""

    SKIP = {"host", "content-length", "connection"}

    def __init__(self, endpoint):
        self.upstream = endpoint.removeprefix("http://")
        self.calls = []

    def __enter__(self):
        import http.client, http.server
        recorder = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in Recorder.SKIP}
                upstream = http.client.HTTPConnection(recorder.upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body, headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                # Kept before answering: the stage's run ends with its last answer.
                recorder.calls.append({"method": self.command, "path": self.path, "headers": headers,
                                       "body": body.decode(), "status": answer.status})
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in Recorder.SKIP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST

            def log_message(self, *a):
                pass

        self.server = loopback_server(H)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def __exit__(self, *a):
        self.server.shutdown()


def store_call_floor(tools, runs, name, event, env):
    """The store-calls peer making the calls the stage's first invocation of `event` made:
    the stage's event recorded through a proxy, the peer's calls sent straight to moto."""
    with Recorder(env["AWS_ENDPOINT_URL"]) as recorder:
        Driver(os.path.join(TARGET, "release", name), {**env, "AWS_ENDPOINT_URL": recorder.endpoint}).answers([event])
    if not recorder.calls:
        return {"error": "no store call"}, recorder
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(recorder.calls, f)
    try:
        peer_env = {"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"], "FLOOR_CALLS": f.name}
        result = harness(tools, runs, {"ping": 1}, peer_env, PEER_BINARY)
    finally:
        os.unlink(f.name)
    # The peer's calls must be answered as the stage's were (a refused call is faster).
    if "error" not in result:
        answered = sorted(json.loads(result["answer"])["body"])
        recorded = sorted(c["status"] for c in recorder.calls)
        if answered != recorded:
            result = {"error": f"the peer's calls were answered {answered}, the stage's {recorded}"}
    return result, recorder


def call_names(calls):
    """`3 GetItem`, `16 Query`: the operations of recorded calls, counted."""
    target = lambda c: next((v for k, v in c["headers"].items() if k.lower() == "x-amz-target"), c["path"])
    names = [target(c).rsplit(".", 1)[-1] for c in calls]
    return ", ".join(f"{names.count(n)} {n}" for n in dict.fromkeys(names))


class CfnResponses:
    """A loopback listener for the custom resource's answer to CloudFormation."""

    def __enter__(self):
        import http.server
        class H(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *a):
                pass
        self.server = loopback_server(H)
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


class Driver:
    """A loopback Lambda Runtime API that hands a function process a list of events, one
    after another, and keeps each whole answer (the harness keeps only its start): how the
    bench world is set up through the product's own functions."""

    def __init__(self, binary, env):
        self.binary, self.env = binary, env

    def answers(self, events):
        import http.server, threading
        pending, answers, done = [json.dumps(e).encode() for e in events], [], threading.Event()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if not pending:
                    done.set()
                    time.sleep(30)  # the process is killed once every answer is in
                    return
                body = pending.pop(0)
                self.send_response(200)
                for k, v in (("Content-Type", "application/json"), ("Lambda-Runtime-Aws-Request-Id", str(len(answers))),
                             ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000)),
                             ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f"),
                             ("Content-Length", str(len(body)))):
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answers.append((self.path.rsplit("/", 1)[-1], json.loads(payload or b"null")))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        server = loopback_server(H)
        env = {**os.environ, **self.env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
               "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "1",
               "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
        proc = subprocess.Popen([self.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not done.wait(60) or len(answers) < len(events):
                raise SystemExit(f"{self.binary}: {len(answers)} of {len(events)} events answered")
        finally:
            proc.kill()
            proc.wait()
            server.shutdown()
        for (kind, answer), event in zip(answers, events):
            status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
            if kind != "response" or status >= 400 and status != 409:
                raise SystemExit(f"{self.binary}: {kind} {answer} to {str(event)[:200]}")
        return [a for _, a in answers]


def sample(name, token=None):
    with open(os.path.join(ROOT, "events", name)) as f:
        event = json.load(f)
    if token and "headers" in event:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def automation_world(env, cfn):
    """The sample tenant as the `events/` payloads describe it, set up through the release
    functions: the catalog seeded, the tenant initialised, sales installed, and the sample
    rule (notify on a high-value opportunity) created, so the stage samples take the path
    of an event that matches a rule."""
    binary = lambda name: Driver(os.path.join(TARGET, "release", name), env)
    seed = sample("catalog-seed-create.json")
    seed["ResponseURL"] = cfn.event()["ResponseURL"]
    binary("catalog-seeder").answers([seed])
    _init, login = binary("auth").answers([sample("auth-initialize-tenant.json", ADMIN), sample("auth-login.json")])
    token = json.loads(login["body"])["access_token"]
    binary("tenant-systems").answers([sample("tenant-systems-install.json", token)])
    binary("automation").answers([sample("automation-create-rule.json", token)])


def fresh_processes(tools, runs, events, env, binary, worked):
    """The harness over one fresh process per event (each its own cold start), medians
    across them: for a stage whose sample must be new to be worked (a repeat is a
    duplicate the stage recognises and skips). Warm invocations repeat each process's
    event, so they are duplicates."""
    if len(events) < runs:
        return {"error": f"{len(events)} sample events for {runs} processes"}
    results = [harness(tools, 1, event, env, binary) for event in events[:runs]]
    for r in results:
        if "error" not in r and not worked(r["answer"]):
            r["error"] = f"answered {r['answer']}"
    ok = [r for r in results if "error" not in r]
    if len(ok) < len(results):
        return next(r for r in results if "error" in r)
    median = lambda k: sorted(r[k] for r in ok)[len(ok) // 2] if all(r.get(k) is not None for r in ok) else None
    return {**ok[0], **{k: median(k) for k in ("init_ms", "first_invoke_ms", "cold_total_ms", "warm_p50_ms", "rss_mb")},
            "runs": len(ok)}


def matched_events(runs):
    """The rule-evaluator sample, one copy per process, each a new event (its own id)."""
    base = sample("rule-evaluator-event.json")
    out = []
    for i in range(runs):
        e = json.loads(json.dumps(base))
        e["id"] = e["detail"]["event_id"] = f"{i:032x}"
        out.append(e)
    return out


def queued_actions(env, runs):
    """The action messages the matched evaluations queued, as SQS events of one message."""
    import boto3
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")
    template = sample("action-executor-batch.json")["Records"][0]
    events = []
    while len(events) < runs:
        got = sqs.receive_message(QueueUrl=env["ACTION_QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not got.get("Messages"):
            break
        for m in got["Messages"]:
            record = {**template, "messageId": m["MessageId"], "body": m["Body"]}
            events.append({"Records": [record]})
    return events


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
    ap.add_argument("--arm64-zips", default="", metavar="DIR",
                    help="also report the arm64 deployment zips that `cargo lambda build --release --arm64 "
                         "--output-format zip --lambda-dir DIR` made (DIR/<function>/bootstrap.zip)")
    a = ap.parse_args()
    tools = os.path.abspath(a.tools)
    wanted = [f for f in a.only.split(",") if f]
    if not a.no_build:
        packages = [arg for name in wanted for arg in ("-p", name)] or ["--bins"]
        run(["cargo", "build", "--release", "--locked", *packages], cwd=ROOT)
        for peer in ("hello-lambda", "axum-hello"):
            run(["cargo", "build", "--release"], cwd=os.path.join(tools, peer),
                env={**os.environ, "CARGO_TARGET_DIR": os.path.join(tools, peer, "target")})
        run(["cargo", "build", "--release", "--locked"], cwd=PEER,
            env={**os.environ, "CARGO_TARGET_DIR": os.path.join(TARGET, "peers")})
    moto, env = moto_world()
    rows, floors = [], []
    try:
        floor = harness(tools, a.runs, {"ping": 1}, {}, os.path.join(tools, "hello-lambda", "target", "release", "hello-lambda"))
        floor_total = floor["cold_total_ms"]
        binary = os.path.join(tools, "hello-lambda", "target", "release", "hello-lambda")
        rows.append(("hello-world floor", floor, *sizes(binary)))
        with CfnResponses() as cfn:
            for name, event in [(n, e) for n, e in FUNCTIONS if not wanted or n in wanted]:
                binary = os.path.join(TARGET, "release", name)
                event = cfn.event() if event == "seeder-delete" else event
                label = STAGE_LABELS.get(name, name)
                rows.append((label, harness(tools, a.runs, event, env, binary), *sizes(binary)))
            # The same stages' store calls, made by the store-calls peer (same empty world).
            for name, event in [(n, e) for n, e in FUNCTIONS if n in AT_ONCE and (not wanted or n in wanted)]:
                with open(os.path.join(ROOT, event)) as f:
                    floor_r, recorder = store_call_floor(tools, a.runs, name, json.load(f), env)
                label = STAGE_LABELS.get(name, name)
                stage = next(r for n, r, *_ in rows if n == label)
                floors.append((label, stage, floor_r, call_names(recorder.calls)))
            if not wanted or {"rule-evaluator", "action-executor"} & set(wanted):
                # The same stages on the path of an event that matches a rule: the sample
                # tenant, its sales system and rule set up first; each process gets a new
                # event, and the executor the actions those evaluations queued.
                automation_world(env, cfn)
                evaluator, executor = (os.path.join(TARGET, "release", n) for n in ("rule-evaluator", "action-executor"))
                rows.append(("rule-evaluator, rule matched",
                             fresh_processes(tools, a.runs, matched_events(a.runs), env, evaluator,
                                             lambda answer: answer.strip() not in ("0", "")), *sizes(evaluator)))
                rows.append(("action-executor, action run",
                             fresh_processes(tools, a.runs, queued_actions(env, a.runs), env, executor,
                                             lambda answer: '"batchItemFailures":[]' in answer), *sizes(executor)))
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
    if floors:
        print("\n| stage | its store calls (at once) | peer making them: cold total ms | stage: cold total ms | "
              "stage vs peer | peer vs floor |")
        print("|---|---|---|---|---|---|")
        for label, stage, peer, names in floors:
            if "error" in peer or "error" in stage:
                print(f"| {label} | {names} | error: {peer.get('error') or stage.get('error')} |")
                continue
            print(f"| {label} | {names} | {peer['cold_total_ms']:.1f} | {stage['cold_total_ms']:.1f} | "
                  f"{stage['cold_total_ms'] / peer['cold_total_ms']:.1f}x | {peer['cold_total_ms'] / floor_total:.1f}x |")
    misses = goal_misses(rows[1:], floor_total)
    if a.arm64_zips:
        misses += arm64_zips(a.arm64_zips, wanted)
    print("\nGoals (cold total <= 2x floor, peak RSS <= 16 MB, zip <= 5 MB): "
          + ("all met" if not misses else "missed: " + "; ".join(misses)))
    if a.no_wrk:
        return
    me, bare = throughput(tools, a.wrk_seconds)
    print(f"\nwrk -t1 -c16 -d{a.wrk_seconds}s: local server GET /api/v1/auth/me {me:,.0f} req/s; "
          f"bare axum handler {bare:,.0f} req/s; ratio {me / bare:.2f}x (goal >= 0.5x: {'met' if me >= bare / 2 else 'missed'})")


def arm64_zips(directory, wanted):
    """Prints the arm64 deployment zip of every function measured; returns the misses."""
    print("\n| function | arm64 zip MB |\n|---|---|")
    misses = []
    for name in dict.fromkeys(n for n, _ in FUNCTIONS if not wanted or n in wanted):
        archive = os.path.join(directory, name, "bootstrap.zip")
        if not os.path.exists(archive):
            print(f"| {name} | missing |")
            misses.append(f"{name} arm64 zip missing")
            continue
        size = os.path.getsize(archive) / 1e6
        print(f"| {name} | {size:.2f} |")
        if size > 5:
            misses.append(f"{name} arm64 zip {size:.1f} MB")
    return misses


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
