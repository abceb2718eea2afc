-- pagos-worker's two database roles (docs/deploy/migrations.md#two-database-roles):
--   :migrador  owns the schema. `pagos-worker migrate` (the migration Job) connects as it, and
--              only it: PAGOS_DATABASE_URL from the Secret's `migration-database-url`.
--   :app       reads and writes rows, nothing more (no DDL, no TRUNCATE): the worker, relay and API
--              pods and the operators' commands (the Secret's `database-url`).
-- Run by an administrator (a superuser, or the managed service's admin role, which may create
-- roles), connected to the service's database. Safe to run again: it creates what is missing and
-- grants again. Tested: tests/integration/test_roles_postgres.py.
--
--   psql "postgresql://ADMIN@HOST:5432/pagos?sslmode=verify-full" -X \
--     -v base=pagos -v migrador=pagos_migrador -v app=pagos_app -f deploy/postgres/roles.sql
--
-- Then give each role its password, from your secret manager (never written in a file):
--   psql ... -c '\password pagos_migrador'   and   psql ... -c '\password pagos_app'
--
-- One transaction: a statement that fails (ON_ERROR_STOP) leaves everything as it was.
\set ON_ERROR_STOP on
BEGIN;

-- The roles, if missing. They log in; nothing else is theirs by default.
SELECT format('CREATE ROLE %I LOGIN', :'migrador')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'migrador') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec

-- The database: only the roles granted here connect (grant CONNECT by name to anything else that
-- must: monitoring, backups). TEMPORARY for the runtime: the reconciliation loads Stripe's lists
-- into temporary tables with COPY (adapters/postgres/conciliacion.py).
REVOKE ALL ON DATABASE :"base" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"base" TO :"migrador";
GRANT CONNECT, TEMPORARY ON DATABASE :"base" TO :"app";

-- The schema: the migration role creates in it, and so owns what it creates; no one else creates.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"migrador";
GRANT USAGE ON SCHEMA public TO :"app";

-- What follows is the owner's to grant: done as the migration role (the administrator must be able
-- to SET ROLE to it; a superuser can, and the role's creator is made a member here, unless it is
-- a member already, or is that role: an installation whose one role stays the migration role).
SELECT format('GRANT %I TO CURRENT_USER', :'migrador')
 WHERE NOT pg_has_role(current_user, :'migrador', 'MEMBER') \gexec
SET ROLE :"migrador";

-- The migrations' bookkeeping, made now (as Alembic would on the first `migrate`) so that the
-- runtime reads it (the start-up schema check) and never writes it.
CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Rows, never the schema: on every table and sequence there is, and (default privileges) on every
-- one the migration role creates from now on, so a later release's new table is granted the moment
-- its migration creates it. Sequences: the identity columns' (conciliaciones, diferencias).
-- Only on what the migration role owns: an installation handing its tables over to it runs this
-- script, then REASSIGN OWNED BY, then this script again (docs/deploy/kubernetes.md).
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', tablename, :'app')
  FROM pg_tables
 WHERE schemaname = 'public' AND tableowner = :'migrador' AND tablename <> 'alembic_version' \gexec
SELECT format('GRANT USAGE, SELECT ON SEQUENCE %I TO %I', sequencename, :'app')
  FROM pg_sequences WHERE schemaname = 'public' AND sequenceowner = :'migrador' \gexec
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";
SELECT format('GRANT SELECT ON alembic_version TO %I', :'app'),
       format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM %I', :'app')
  FROM pg_tables
 WHERE schemaname = 'public' AND tablename = 'alembic_version' AND tableowner = :'migrador' \gexec

RESET ROLE;
COMMIT;
-- Advisory locks (the scheduled reconciliation's, `migrate`'s), LISTEN/NOTIFY (the relays' wake-up)
-- and temporary tables need nothing more: PostgreSQL grants the first two to every role.
