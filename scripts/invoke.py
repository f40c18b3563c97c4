#!/usr/bin/env python3
"""Invokes a function running under `cargo lambda watch` with a sample event from events/,
as written. A tenant event carries the placeholder ACCESS_TOKEN_FROM_AUTH_LOGIN: this
signs in first with events/auth-login.json (the sample tenant's owner, created by
events/auth-initialize-tenant.json) and puts the access token in its place. A custom
resource event's RESPONSE_URL is answered by a loopback listener here.

Usage: python3 scripts/invoke.py FUNCTION EVENT_FILE [--port 9000]
Prints the function's answer (JSON).
"""
import argparse, http.server, json, os, subprocess, sys, tempfile, threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "ACCESS_TOKEN_FROM_AUTH_LOGIN"


def invoke(function, path, port):
    out = subprocess.run(["cargo", "lambda", "invoke", function, "--data-file", path, "-A", "127.0.0.1",
                          "-P", str(port), "-o", "json"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"invoke {function} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)


def access_token(port):
    answer = invoke("auth", os.path.join(ROOT, "events", "auth-login.json"), port)
    body = json.loads(answer.get("body") or "{}")
    if "access_token" not in body:
        sys.exit(f"signing in failed (invoke events/auth-initialize-tenant.json first?): {answer}")
    return body["access_token"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("function")
    ap.add_argument("event")
    ap.add_argument("--port", type=int, default=9000, help="cargo lambda watch's port")
    a = ap.parse_args()
    text = open(os.path.join(ROOT, a.event) if not os.path.isabs(a.event) else a.event).read()
    if TOKEN in text:
        text = text.replace(TOKEN, access_token(a.port))
    server = None
    if "RESPONSE_URL" in text:
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        text = text.replace("RESPONSE_URL", f"http://127.0.0.1:{server.server_port}/cfn-response")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
    try:
        print(json.dumps(invoke(a.function, f.name, a.port), indent=2))
    finally:
        os.unlink(f.name)
        if server:
            server.shutdown()


if __name__ == "__main__":
    main()
