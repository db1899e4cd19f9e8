"""The HTTP contract: docs/openapi.yaml against the live binary, with Schemathesis.

Schemathesis (pinned in scripts/test-deps, installed in .tools/schemathesis so its
pytest plugin and dependencies stay out of this pytest) runs as a CLI. It generates
valid and invalid requests for every operation of the document, plus requests with
methods the document does not list, and checks each answer:

    not_a_server_error           no 5xx, whatever the input
    status_code_conformance      every status is one the document lists
    content_type_conformance     every Content-Type is one the document lists
    response_schema_conformance  every body matches its schema
    unsupported_method           undocumented methods get 405 ...
    allow_header_conformance     ... with an Allow header naming the documented ones

Bounded and deterministic: a fixed seed, at most 50 examples per operation, no
example database, no stateful phase; the run takes about 20-30 s. The server runs on
loopback without ADMIN_TOKEN, so the admin routes (init, reset, delete) are exercised
too; the entities named in the document's examples are seeded first so status, reset
and delete also reach their success paths.
"""
import json
import os
import subprocess
import time

import pytest

from bbutil import REPO, ok

SCHEMA = REPO / "docs" / "openapi.yaml"
ST_DIR = REPO / ".tools" / "schemathesis" / "bin"
ST = os.environ.get("SCHEMATHESIS") or str(ST_DIR / "schemathesis")
ST_PYTHON = str(ST_DIR / "python")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,unsupported_method,allow_header_conformance")
SEED = 20240101
MAX_EXAMPLES = 50
RUN_LIMIT_S = 150          # the whole run; it normally takes well under a minute

# SPEC section 4, route by route, with the methods each serves (HEAD on every GET).
ROUTES = {
    "/health": {"get", "head"},
    "/shard-info": {"get", "head"},
    "/api/next-id/{entity}": {"get", "head"},
    "/api/next-batch/{entity}": {"get", "head"},
    "/api/status/{entity}": {"get", "head"},
    "/api/list": {"get", "head"},
    "/api/types": {"get", "head"},
    "/api/init/{entity}": {"post"},
    "/api/reset/{entity}": {"put"},
    "/api/entity/{entity}": {"delete"},
    "/api/parse-snowflake/{id}": {"get", "head"},
    "/api/compose-snowflake": {"get", "head"},
    "/api/parse-typeid/{id}": {"get", "head"},
    "/metrics": {"get", "head"},
}
HTTP_METHODS = {"get", "head", "post", "put", "delete", "patch", "options", "trace"}


@pytest.fixture(scope="module")
def st_bin():
    if not (os.path.isfile(ST) and os.access(ST, os.X_OK)):
        pytest.skip(f"schemathesis not installed at {ST}: run scripts/test-deps")
    return ST


@pytest.fixture(scope="module")
def doc(st_bin):
    """The document as JSON, loaded by the venv's Python (PyYAML lives there),
    with every $ref checked to resolve."""
    script = r"""
import json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
bad = []
def resolve(ref):
    node = d
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
def walk(x):
    if isinstance(x, dict):
        r = x.get("$ref")
        if isinstance(r, str) and not (r.startswith("#/") and resolve(r)):
            bad.append(r)
        for v in x.values():
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(d)
print(json.dumps({"doc": d, "unresolved": bad}))
"""
    p = subprocess.run([ST_PYTHON, "-c", script, str(SCHEMA)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert not out["unresolved"], f"unresolved $ref: {out['unresolved']}"
    return out["doc"]


@pytest.fixture(scope="module")
def csrv(module_servers, doc):
    # The twitter layout (4,096,000 IDs/s) keeps 10,000-ID snowflake batches quick.
    s = module_servers(env={"SNOWFLAKE_LAYOUT": "twitter"})
    for t in ("int", "long", "snowflake", "uuid8", "uuid12", "uuid16", "uuid22", "uuid7", "ulid"):
        ok(s.next_id(f"seed-{t}", t))      # seed-int, seed-long, ...: the doc's examples
    ok(s.init("seed-init", "long", start="1000"), 201)
    return s


def test_document_covers_every_route(doc):
    assert str(doc.get("openapi", "")).startswith("3.1."), doc.get("openapi")
    got = {p: {m for m in ops if m in HTTP_METHODS} for p, ops in doc["paths"].items()}
    assert got == ROUTES


def test_document_lists_errors_and_405(doc, csrv):
    """Every operation documents its error statuses with the error schema, and
    every undocumented standard method on a path is 405 with the right Allow."""
    for path, ops in doc["paths"].items():
        for m, op in ops.items():
            if m not in HTTP_METHODS:
                continue
            assert any(code.startswith("4") for code in op["responses"]), (m, path)
        concrete = (path.replace("{entity}", "seed-int").replace("{id}", "1"))
        allowed = {m.upper() for m in ops if m in HTTP_METHODS}
        for m in sorted(HTTP_METHODS - set(ops)):
            r = csrv.request(m.upper(), concrete, body="{}" if m in ("post", "put", "patch") else None)
            assert r.status == 405, (m, path, r)
            got = {x.strip() for x in r.headers.get("allow", "").split(",") if x.strip()}
            assert got == allowed, (m, path, r.headers)


@pytest.mark.timeout(RUN_LIMIT_S + 30)
def test_server_conforms_to_openapi(st_bin, csrv, tmp_path):
    cmd = [st_bin, "--no-color", "run", str(SCHEMA),
           "--url", csrv.url,
           "--checks", CHECKS,
           "--max-examples", str(MAX_EXAMPLES),
           "--seed", str(SEED),
           "--workers", "1",
           "--phases", "examples,coverage,fuzzing",
           "--generation-database", "none",
           "--request-timeout", "10",
           "--suppress-health-check", "all"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_LIMIT_S,
                       cwd=tmp_path, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, NO_COLOR="1"))
    took = time.monotonic() - t0
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"schemathesis found problems in {took:.0f} s:\n{out[-20000:]}"
    assert "No issues found" in out, out[-5000:]
    assert csrv.running, csrv.output()
    ok(csrv.get("/health"))
