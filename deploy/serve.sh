#!/usr/bin/env bash
# `make serve`: the production configuration on this machine — gunicorn workers serving the app
# and its static files (whitenoise), PostgreSQL as the database, Redis as the shared cache (rate
# limits, authorization versions). Every setting can be overridden from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/accesscontrol}"
export CACHE_URL="${CACHE_URL:-redis://127.0.0.1:6379/0}"
export DEBUG=0
# Plain HTTP on loopback here; behind a TLS-terminating load balancer set HTTPS=1 and
# TRUSTED_PROXY_COUNT=1 (see docs/deploy.md).
export HTTPS="${HTTPS:-0}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
export STATIC_MANIFEST=1
export DATABASE_CONN_MAX_AGE="${DATABASE_CONN_MAX_AGE:-60}"
BIND="${BIND:-127.0.0.1:8000}"
WORKERS="${WEB_CONCURRENCY:-$(( $(nproc) * 2 + 1 ))}"

# A secret key that survives restarts (sessions stay valid), kept out of the repository.
if [ -z "${SECRET_KEY:-}" ]; then
    if [ ! -s .secret_key ]; then
        (umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(64))" > .secret_key)
    fi
    SECRET_KEY="$(cat .secret_key)"
    export SECRET_KEY
fi

# The database, if this PostgreSQL does not have it yet.
db_name="${DATABASE_URL##*/}"; db_name="${db_name%%\?*}"
server_url="${DATABASE_URL%/*}/postgres"
if ! psql "$server_url" -qAt -c "SELECT 1 FROM pg_database WHERE datname = '$db_name'" | grep -q 1; then
    echo "Creating database $db_name"
    psql "$server_url" -q -c "CREATE DATABASE \"$db_name\""
fi

.venv/bin/python manage.py check --deploy --fail-level ERROR
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
if [ "${SEED_DEMO:-0}" = "1" ]; then
    .venv/bin/python manage.py seed_demo
fi
if [ "$(.venv/bin/python manage.py shell -c 'from accesscontrol.organizations.models import Organization; print(Organization.objects.exists())' 2>/dev/null | tail -n 1)" != "True" ]; then
    echo
    echo "The database has no organization yet. Create the first one (and its admin) with:"
    echo "  DATABASE_URL=$DATABASE_URL SECRET_KEY=... DEBUG=0 .venv/bin/python manage.py create_organization --name Acme --admin-email you@example.com"
    echo "or start with the demo data: SEED_DEMO=1 make serve"
    echo
fi

echo "Serving on http://$BIND with $WORKERS gunicorn workers (Ctrl+C stops)"
# Logging (with key redaction), request recycling and timeouts: deploy/gunicorn.conf.py.
exec .venv/bin/gunicorn accesscontrol.wsgi:application --config deploy/gunicorn.conf.py \
    --bind "$BIND" --workers "$WORKERS"
