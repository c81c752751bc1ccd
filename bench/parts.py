"""The in-process sections. Each runs in a child process of bench/run.py (the cache backend and
other settings are read at start-up) and returns a dict that the parent turns into figures.

Requests go through Django's WSGI handler (section 4: the test Client, for its session), so the
whole stack is measured: middleware, the gate, django-ninja, the view, the response.
"""

import datetime
import functools
import hashlib
import json
import os
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

from accesscontrol.rbac import versions
from bench import data
from bench.timing import (
    Request,
    Variant,
    Wsgi,
    capture,
    http_variant,
    interleaved,
    progress,
    queries_of,
)
from bench.timing import summary as summarize

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))  # section 1, per variant
SCALE_ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "150"))  # section 3, per variant and size
SCALE_LARGE = int(os.environ.get("BENCH_SCALE_LARGE", "100000"))
SCALE_SMALL = 100
LIST_ROUNDS = int(os.environ.get("BENCH_LIST_ROUNDS", "8"))
INGEST_ROUNDS = int(os.environ.get("BENCH_INGEST_ROUNDS", "6"))


def batch_body(count, project="bench") -> bytes:
    """A /runs/batch body like the langsmith SDK's: completed LLM runs, each its own trace."""
    now = datetime.datetime.now(datetime.UTC)
    runs = []
    for i in range(count):
        run_id = str(uuid.uuid4())
        runs.append(
            {
                "id": run_id,
                "trace_id": run_id,
                "dotted_order": f"{now:%Y%m%dT%H%M%S%fZ}{run_id}",
                "session_name": project,
                "name": "ChatModel",
                "run_type": "llm",
                "inputs": {"messages": [{"role": "user", "content": f"question number {i}"}]},
                "outputs": {"generations": [{"text": f"the answer to question {i}"}]},
                "start_time": now.isoformat(),
                "end_time": now.isoformat(),
                "tags": ["bench"],
                "extra": {"metadata": {"ls_provider": "bench", "i": i}},
            }
        )
    return json.dumps({"post": runs, "patch": []}).encode()


def _measure(variants, rounds, warmup, label, cold=None):
    """Medians, plus the SQL of one warm call (and of one cold call: after `cold()`)."""
    times = interleaved(variants, rounds, warmup, label)
    result = {}
    for variant in variants:  # every warm call first: `cold()` would make the next one cold
        figures = summarize(times[variant.name])
        captured = capture(variant)
        figures["sql"], figures["redis"] = captured["sql"], captured["redis"]
        figures["queries"] = len(figures["sql"])
        result[variant.name] = figures
    if cold is not None:
        for variant in variants:
            cold()
            captured = capture(variant)
            figures = result[variant.name]
            figures["sql_cold"], figures["redis_cold"] = captured["sql"], captured["redis"]
            figures["queries_cold"] = len(figures["sql_cold"])
    return result


def configuration() -> dict:
    return {
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "cache_location": settings.CACHES["default"].get("LOCATION", ""),
        "authz_cache": getattr(settings, "AUTHZ_CACHE", "not a setting"),
        "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE"),
    }


# Sections 1 and 2: the key-authenticated request vs. a bare view, and vs. DRF's HasAPIKey


def api_overhead() -> dict:
    label = os.environ.get("BENCH_LABEL", "api")
    progress(f"[{label}] making the tenant, keys and a DRF key")
    cache.clear()
    tenant = data.Tenant(f"bench-{label}")
    service_key = tenant.service_key("Editor")
    token = tenant.personal_token()
    drf_key = data.drf_api_key()
    tenant_id = str(tenant.workspace.pk)
    floor_keys(service_key)
    wsgi = Wsgi()
    requests = {
        "healthz": Request("GET", "/healthz"),
        "floor": Request("GET", "/bench/floor", {"X-API-Key": service_key}),
        "ninja_public": Request("GET", "/api/v1/info"),
        "whoami_service_key": Request("GET", "/api/v1/auth/whoami", {"X-API-Key": service_key}),
        "whoami_pat_tenant": Request(
            "GET", "/api/v1/auth/whoami", {"X-API-Key": token, "X-Tenant-Id": tenant_id}
        ),
        "batch_5_runs": Request(
            "POST",
            "/api/v1/runs/batch",
            {"X-API-Key": service_key},
            body=lambda: batch_body(5),
            expect=202,
        ),
        "drf_open": Request("GET", "/bench/drf/open"),
        "drf_has_api_key": Request("GET", "/bench/drf/has-api-key", {"X-API-Key": drf_key}),
    }
    variants = [http_variant(wsgi, name, request) for name, request in requests.items()]
    # Cold: the organization's access just changed (its version moved, off the clock), so no
    # principal of it is trusted and the key is read from the database: one statement. An
    # organization of their own, so the warm variants stay warm.
    other = data.Tenant(f"bench-{label}-cold")
    changed = functools.partial(versions.bump, other.org.pk)
    cold = {
        "whoami_service_key_cold": {"X-API-Key": other.service_key("Editor")},
        "whoami_pat_tenant_cold": {
            "X-API-Key": other.personal_token(),
            "X-Tenant-Id": str(other.workspace.pk),
        },
    }
    for name, headers in cold.items():
        request = Request("GET", "/api/v1/auth/whoami", headers)
        variants.append(http_variant(wsgi, name, request, before=changed))
    progress(f"[{label}] {ROUNDS} interleaved rounds of {len(variants)} requests")
    return {
        "configuration": configuration(),
        "variants": _measure(variants, ROUNDS, max(30, ROUNDS // 10), label, cold=cache.clear),
    }


def floor_keys(*raw_keys):
    """The floor endpoint's dict (bench/urls.py): these keys among 10,000 others."""
    from bench.urls import FLOOR_KEYS

    FLOOR_KEYS.clear()
    FLOOR_KEYS.update({hashlib.sha256(os.urandom(16)).hexdigest(): "other" for _ in range(10_000)})
    FLOOR_KEYS.update({hashlib.sha256(raw.encode()).hexdigest(): "bench" for raw in raw_keys})


# Section 3: permission resolution with 100 vs. 100,000 members, keys and roles


def _org_counts(tenant) -> dict:
    from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
    from accesscontrol.organizations.models import OrganizationMembership
    from accesscontrol.rbac.models import Role
    from accesscontrol.workspaces.models import WorkspaceMembership

    org = tenant.org
    return {
        "org_memberships": OrganizationMembership.objects.filter(organization=org).count(),
        "workspace_memberships": WorkspaceMembership.objects.filter(
            workspace=tenant.workspace
        ).count(),
        "service_keys": ServiceKey.objects.filter(organization=org).count(),
        "personal_tokens": PersonalAccessToken.objects.filter(
            org_membership__organization=org
        ).count(),
        "roles": Role.objects.filter(organization=org).count(),
    }


def _grow(tenant, total, prefix):
    """Fill the organization up to `total` members, service keys, tokens and custom roles."""
    from accesscontrol.rbac.models import Role

    counts = _org_counts(tenant)
    roles = data.add_roles(tenant.org, total - counts["roles"], prefix)
    members = total - counts["org_memberships"]
    memberships = data.add_members(tenant.org, tenant.workspace, members, prefix, roles)
    data.add_personal_tokens(memberships, prefix)
    viewer = Role.objects.system("Viewer").pk
    data.add_service_keys(
        tenant.org, tenant.workspace, total - counts["service_keys"], prefix, viewer
    )
    data.analyze()
    return _org_counts(tenant)


def _explain(statements) -> list[dict]:
    """EXPLAIN ANALYZE of each SELECT (plain EXPLAIN for writes: they are not run)."""
    plans = []
    with connection.cursor() as cursor:
        for sql in statements:
            analyze = sql.lstrip().upper().startswith("SELECT")
            cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ") + sql)
            lines = [row[0] for row in cursor.fetchall()]
            plans.append({"sql": sql, "plan": lines})
    return plans


def _table_sizes() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint FROM pg_class "
            "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        )
        return dict(cursor.fetchall())


def permission_scale() -> dict:
    from accesscontrol.accounts.models import User
    from accesscontrol.rbac.resolver import resolve_access

    progress("[scale] making the measured tenant")
    cache.clear()
    tenant = data.Tenant("bench-scale", custom_role=True)
    service_key = tenant.service_key("Editor")
    token = tenant.personal_token()
    member = User.objects.get(pk=tenant.member.pk)
    tenant_id = str(tenant.workspace.pk)
    wsgi = Wsgi()
    whoami = "/api/v1/auth/whoami"
    # Every call starts with the Django cache emptied: authorization versions are gone, so any
    # cached principal is stale and the permissions come from the database each time.
    variants = [
        http_variant(
            wsgi,
            "whoami_service_key",
            Request("GET", whoami, {"X-API-Key": service_key}),
            before=cache.clear,
        ),
        http_variant(
            wsgi,
            "whoami_pat_tenant",
            Request("GET", whoami, {"X-API-Key": token, "X-Tenant-Id": tenant_id}),
            before=cache.clear,
        ),
        http_variant(
            wsgi,
            "whoami_pat_default_workspace",
            Request("GET", whoami, {"X-API-Key": token}),
            before=cache.clear,
        ),
    ]
    expected = tenant.role.permission_set

    def resolve(_):
        access = resolve_access(member, tenant.org.pk, tenant.workspace)
        if not expected <= access.permissions:
            raise SystemExit(f"bench: resolve_access gave {sorted(access.permissions)}")

    variants.append(Variant("resolve_access", resolve, cache.clear))

    # Small, large, small again (the large rows deleted): the large figure is compared with
    # both small ones, so a change in the machine's load during the run shows as a spread
    # between the two small figures instead of passing for an effect of the size.
    stages, plans = {}, {}
    for stage in ("small", "large", "small_again"):
        started = time.monotonic()
        if stage == "small_again":
            progress("[scale] deleting the large rows (then VACUUM ANALYZE)")
            data.remove_members_keys_roles("fill-large")
            counts = _org_counts(tenant)
        else:
            total = SCALE_SMALL if stage == "small" else SCALE_LARGE
            progress(f"[scale] growing to {total:,} members, keys, tokens and roles")
            counts = _grow(tenant, total, f"fill-{stage}")
        changed_in = time.monotonic() - started
        progress(f"[scale] {stage}: {counts} ({changed_in:.0f} s); measuring")
        stages[stage] = {
            "counts": counts,
            "seconds": changed_in,
            "variants": _measure(variants, SCALE_ROUNDS, 30, f"scale {stage}"),
        }
        if stage == "large":
            table_rows = _table_sizes()
            for variant in variants:
                cache.clear()
                plans[variant.name] = _explain(queries_of(variant))
    return {
        "configuration": configuration(),
        "stages": stages,
        "plans": plans,
        "table_rows": table_rows,
    }


# Section 4: console list pages with 10 vs. 1,000 rows


PAGES = {
    "workspace members": "/o/{org}/w/main/members/",
    "organization members": "/o/{org}/members/",
    "service keys": "/o/{org}/w/main/keys/",
    "audit log": "/o/{org}/audit/",
    "datasets": "/o/{org}/w/main/datasets/",
    "access review": "/o/{org}/w/main/access/",
}


# The statement of rbac/resolver.resolve_access: the signed-in user's access on a console page.
RESOLVER_SQL = 'SELECT "organizations_organizationmembership"."org_role" AS "org_role", '


def access_statements(statements) -> int:
    return sum(sql.startswith(RESOLVER_SQL) for sql in statements)


def _fill_lists(tenant, rows, prefix):
    from accesscontrol.audit.models import AuditEvent
    from accesscontrol.rbac.models import Role

    viewer = Role.objects.system("Viewer").pk
    data.add_members(tenant.org, tenant.workspace, rows - 1, prefix, [viewer])  # + the member
    data.add_service_keys(tenant.org, tenant.workspace, rows, prefix, viewer)
    existing = AuditEvent.objects.filter(organization=tenant.org).count()
    data.add_audit_events(tenant.org, tenant.workspace, max(0, rows - existing))
    data.add_datasets(tenant.workspace, rows)


def console_lists() -> dict:
    sizes = {"small": 10, "large": 1000}
    tenants, clients = {}, {}
    for size, rows in sizes.items():
        progress(f"[lists] a tenant with {rows} rows of each kind")
        tenant = data.Tenant(f"bench-list-{rows}")
        _fill_lists(tenant, rows, f"list-{rows}")
        tenants[size] = tenant
        clients[size] = Client()
        clients[size].force_login(tenant.admin)
    data.analyze()

    def page_variant(page, size):
        client, path = clients[size], PAGES[page].format(org=tenants[size].org.slug)

        def run(_):
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"bench: {path} answered {response.status_code}")
            return response

        return Variant(f"{page}|{size}", run)

    variants = [page_variant(page, size) for page in PAGES for size in sizes]
    progress(f"[lists] {LIST_ROUNDS} interleaved rounds of {len(variants)} pages")
    # Warm: the signed-in user's access kept from the page before; cold: the cache emptied
    # (every authorization version gone), so the access is read again.
    measured = _measure(variants, LIST_ROUNDS, 2, "lists", cold=cache.clear)
    for variant in variants:
        figures = measured[variant.name]
        figures["access_queries"] = access_statements(figures["sql"])
        figures["access_queries_cold"] = access_statements(figures["sql_cold"])
        body = variant.run(None).content
        figures["table_rows_rendered"] = body.count(b"<tr")
        figures["bytes"] = len(body)
    return {"configuration": configuration(), "sizes": sizes, "variants": measured}


# Section 5: batch run ingest


def batch_ingest() -> dict:
    progress("[ingest] making the tenant and a service key")
    tenant = data.Tenant("bench-ingest")
    service_key = tenant.service_key("Editor")
    wsgi = Wsgi()
    sizes = (100, 1000)
    bodies = {n: len(batch_body(n)) for n in sizes}
    variants = [
        http_variant(
            wsgi,
            f"batch_{n}_runs",
            Request(
                "POST",
                "/api/v1/runs/batch",
                {"X-API-Key": service_key},
                body=lambda n=n: batch_body(n, project="ingest"),
                expect=202,
            ),
        )
        for n in sizes
    ]
    progress(f"[ingest] {INGEST_ROUNDS} interleaved rounds of 100- and 1,000-run batches")
    measured = _measure(variants, INGEST_ROUNDS, 1, "ingest")
    for n in sizes:
        figures = measured[f"batch_{n}_runs"]
        figures["runs"] = n
        figures["body_bytes"] = bodies[n]
        figures["runs_per_second"] = n / (figures["median_ms"] / 1000)
        figures["sql"] = [sql[:300] for sql in figures["sql"]]  # the INSERTs are long
    return {"configuration": configuration(), "variants": measured}


# Section 6 needs a key for wrk; the parent runs gunicorn and wrk.


def http_key() -> dict:
    tenant = data.Tenant("bench-http")
    return {"key": tenant.service_key("Editor"), "workspace": str(tenant.workspace.pk)}


# Section 7: the run filter language at 1M runs

FILTER_RUNS = int(os.environ.get("BENCH_FILTER_RUNS", "1000000"))
FILTER_ROUNDS = int(os.environ.get("BENCH_FILTER_ROUNDS", "30"))


def run_filters() -> dict:
    from accesscontrol.resources.models import Project

    progress(f"[filter] a tenant with {FILTER_RUNS:,} runs in 4 projects (INSERT ... SELECT)")
    tenant = data.Tenant("bench-filter")
    projects = [
        Project.objects.create(workspace=tenant.workspace, name=f"app {i}").pk for i in range(4)
    ]
    # Another tenant's runs in the same table: a query must skip them by its workspace.
    other = data.Tenant("bench-filter-other")
    other_project = Project.objects.create(workspace=other.workspace, name="app").pk
    started = time.monotonic()
    total = data.add_traces(
        tenant.workspace, projects, FILTER_RUNS // data.RUNS_PER_TRACE, say=progress
    )
    data.add_traces(other.workspace, [other_project], FILTER_RUNS // 40, salt="other", say=progress)
    data.analyze()
    fill_seconds = time.monotonic() - started
    key = tenant.service_key("Viewer")
    wsgi = Wsgi()
    user = "u4242"
    queries = {
        "slow_llm_calls": (
            "/api/v1/runs/query",
            {"session": [str(projects[0])], "filter": 'and(eq(run_type, "llm"), gt(latency, 15))'},
        ),
        "one_users_runs": (
            "/api/v1/runs/query",
            {"filter": f'and(eq(metadata_key, "user"), eq(metadata_value, "{user}"))'},
        ),
        "llm_calls_of_badly_rated_traces": (
            "/api/v1/runs/query",
            {
                "filter": 'eq(run_type, "llm")',
                "trace_filter": 'and(eq(feedback_key, "correctness"), lt(feedback_score, 0.2))',
            },
        ),
        "stats_of_one_user": (
            "/api/v1/runs/stats",
            {"filter": f'and(eq(metadata_key, "user"), eq(metadata_value, "{user}"))'},
        ),
    }
    variants = [
        http_variant(
            wsgi,
            name,
            Request(
                "POST",
                path,
                {"X-API-Key": key},
                body=lambda body=body: json.dumps(body).encode(),
            ),
        )
        for name, (path, body) in queries.items()
    ]
    progress(f"[filter] {FILTER_ROUNDS} interleaved rounds of {len(variants)} queries")
    measured = _measure(variants, FILTER_ROUNDS, 2, "filter")
    for name, figures in measured.items():
        path, body = queries[name]
        _, response = wsgi.call(
            Wsgi.environ("POST", path, {"X-API-Key": key}, json.dumps(body).encode())
        )
        answer = json.loads(response)
        figures["path"], figures["body"] = path, body
        figures["rows"] = len(answer["runs"]) if "runs" in answer else answer.get("run_count")
        run_sql = [sql for sql in figures["sql"] if '"resources_run"' in sql]
        figures["plans"] = _explain(run_sql)
    return {
        "runs": total,
        "fill_seconds": fill_seconds,
        "table_rows": _table_sizes(),
        "variants": measured,
    }


PARTS = {
    "filter": run_filters,
    "api": api_overhead,
    "scale": permission_scale,
    "lists": console_lists,
    "ingest": batch_ingest,
    "http-key": http_key,
}
