"""A small stand-in for Engramia's API, for the real-host test tier.

Answers /v1/version, /v1/health and /v1/health/deep as /work/shared/engramia-api.md describes:
maintenance from ENGRAMIA_MAINTENANCE (503 for everything but the two health paths), bearer keys
from ENGRAMIA_API_KEYS, deep health reading the real alembic_version row and comparing it with
this image's own alembic head. ENGRAMIA_TEST_FAULT (baked into a release's image) makes a release
bad the way incidents are: "crash" exits at start-up, "deep-error" fails every deep check.
"""

import json
import os
import signal
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
from alembic.config import Config
from alembic.script import ScriptDirectory

PORT = 8000
HEALTH_PATHS = {"/v1/health", "/v1/health/deep"}
ROUTES = {"/v1/version", "/v1/health", "/v1/health/deep"}
STARTED = time.monotonic()


def log(message):
    print(f"INFO:     {message}", flush=True)


def expected_head():
    script = ScriptDirectory.from_config(Config("/app/alembic.ini"))
    return script.get_current_head()


def in_maintenance():
    return os.environ.get("ENGRAMIA_MAINTENANCE", "").strip().lower() in {"1", "true", "yes"}


def api_keys():
    return [k.strip() for k in os.environ.get("ENGRAMIA_API_KEYS", "").split(",") if k.strip()]


def db_url():
    url = os.environ["ENGRAMIA_DATABASE_URL"]
    # SQLAlchemy spells the driver into the scheme; libpq does not know it.
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def query(sql):
    """(rows, latency_ms) of one statement on a fresh connection."""
    start = time.monotonic()
    conn = psycopg2.connect(db_url(), connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
    finally:
        conn.close()
    return rows, round((time.monotonic() - start) * 1000, 1)


def check(status, latency_ms=None, error=None, **extra):
    return {"status": status, "latency_ms": latency_ms, "error": error, **extra}


def storage_check():
    try:
        _, ms = query("SELECT 1")
        return check("ok", ms)
    except Exception as e:  # the API reports, it does not crash
        return check("error", None, f"({type(e).__module__}.{type(e).__name__}) {str(e).strip()}")


def migration_check():
    expected = expected_head()
    try:
        rows, ms = query("SELECT version_num FROM alembic_version")
    except Exception as e:
        return check("error", None, f"could not read alembic_version: {str(e).strip()}",
                     current_revision=None, expected_revision=expected)
    current = rows[0][0] if rows else None
    if current == expected:
        return check("ok", ms, None, current_revision=current, expected_revision=expected)
    return check("error", ms, f"Database schema revision {current or '<base>'} does not match expected {expected}",
                 current_revision=current, expected_revision=expected)


def deep_health():
    checks = {
        "storage": storage_check(),
        # No LLM, embedding or Stripe provider is reachable from a test host.
        "llm": check("not_configured"),
        "embedding": check("not_configured"),
        "redis": check("not_configured"),
        "stripe": check("not_configured"),
        "migration": migration_check(),
    }
    if os.environ.get("ENGRAMIA_TEST_FAULT") == "deep-error":
        for name in ("storage", "migration"):
            checks[name] = {**checks[name], "status": "error", "error": checks[name]["error"] or "injected fault"}
    statuses = [c["status"] for c in checks.values() if c["status"] != "not_configured"]
    if all(s == "ok" for s in statuses):
        overall = "ok"
    elif all(s == "error" for s in statuses):
        overall = "error"
    else:
        overall = "degraded"
    body = {
        "status": overall,
        "version": os.environ.get("ENGRAMIA_APP_VERSION", ""),
        "uptime_seconds": round(time.monotonic() - STARTED, 1),
        "checks": checks,
    }
    return (503 if overall == "error" else 200), body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""

    def log_message(self, fmt, *args):  # uvicorn's access-log shape, on stdout
        pass

    def send(self, status, body, headers=None):
        text = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(text)))
        self.send_header("x-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)
        log(f'{self.client_address[0]}:{self.client_address[1]} - "{self.command} {self.path} HTTP/1.1" {status}')

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if in_maintenance() and path not in HEALTH_PATHS:
            return self.send(503, {
                "error_code": "SERVICE_UNAVAILABLE",
                "detail": "Service is under scheduled maintenance. Please try again later.",
                "error_context": {"retry_after": 3600},
            }, {"retry-after": "3600"})
        if path not in ROUTES:
            return self.send(404, {"detail": "Not Found"})
        if path == "/v1/version":
            return self.send(200, {
                "app_version": os.environ.get("ENGRAMIA_APP_VERSION", ""),
                "api_version": "v1",
                "git_commit": os.environ.get("ENGRAMIA_GIT_COMMIT", ""),
                "build_time": os.environ.get("ENGRAMIA_BUILD_TIME", ""),
            })
        keys = api_keys()
        header = self.headers.get("authorization", "")
        if not keys:
            return self.send(503, {"error_code": "STORAGE_ERROR", "detail": "No API keys configured. Set ENGRAMIA_API_KEYS."})
        if not header.startswith("Bearer "):
            return self.send(401, {"error_code": "UNAUTHORIZED",
                                   "detail": "Missing or malformed Authorization header. Expected: Bearer <key>"})
        if header[len("Bearer "):] not in keys:
            return self.send(401, {"error_code": "UNAUTHORIZED", "detail": "Invalid API key."})
        if path == "/v1/health":
            try:
                rows, _ = query("SELECT count(*) FROM patterns")
            except Exception:
                return self.send(503, {"error_code": "STORAGE_ERROR", "detail": "Storage backend error."})
            return self.send(200, {"status": "ok", "storage": "postgres", "pattern_count": rows[0][0]})
        status, body = deep_health()
        return self.send(status, body)


def main():
    # PID 1 in a container has no default signal actions: without this, `docker stop` waits
    # its full timeout and then kills.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(f"Started server process [{os.getpid()}]")
    if "ENGRAMIA_DATABASE_URL" not in os.environ:
        print("ERROR:    ENGRAMIA_DATABASE_URL not set", file=sys.stderr, flush=True)
        sys.exit(1)
    if os.environ.get("ENGRAMIA_TEST_FAULT") == "crash":
        print("ERROR:    Application startup failed. Exiting.", file=sys.stderr, flush=True)
        print("alembic.util.exc.CommandError: Can't locate revision identified by '034'", file=sys.stderr, flush=True)
        sys.exit(3)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    log("Application startup complete.")
    log(f"Uvicorn running on http://0.0.0.0:{PORT} (Press CTRL+C to quit)")
    server.serve_forever()


if __name__ == "__main__":
    main()
