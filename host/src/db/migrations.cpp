#include "db/migrations.hpp"

namespace cp::db {

namespace {

// Two migrators of one database take this lock in turn (an arbitrary constant: "cp-migr").
constexpr const char* kMigrateLock = "72401134010";

const std::vector<Migration> kMigrations = {
    {1, "queue operation log",
     R"sql(
CREATE TABLE cp_queue_ops (
  seq bigserial PRIMARY KEY,
  item_id text NOT NULL,
  op jsonb NOT NULL,
  txn text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  CHECK (op->>'item_id' = item_id)
);
CREATE INDEX cp_queue_ops_txn ON cp_queue_ops (txn);
CREATE INDEX cp_queue_ops_item ON cp_queue_ops (item_id);
CREATE TABLE cp_queue_history (
  seq bigint PRIMARY KEY,
  item_id text NOT NULL,
  op jsonb NOT NULL,
  recorded_at timestamptz NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cp_queue_meta (
  id int PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL
);
INSERT INTO cp_queue_meta VALUES (1, 1);
)sql"},
    {2, "worker registry",
     R"sql(
CREATE TABLE cp_workers (
  worker_id text PRIMARY KEY,
  host text NOT NULL,
  root text NOT NULL,
  pid int NOT NULL,
  scheduler boolean NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  stopped_at timestamptz,
  runs_held int NOT NULL DEFAULT 0,
  url text NOT NULL DEFAULT '',
  lease_ms int NOT NULL,
  incarnation text NOT NULL
);
)sql"},
    {3, "run index, events and sealed bundles; attempt fences",
     R"sql(
-- The fence of each item's current attempt, kept by the queue's own log: a claim opens it for the claiming
-- attempt and node, an end by a lost lease closes it. A run's writes (events, its seal) commit only while
-- the fence names their attempt, checked in the same transaction under a row lock.
CREATE TABLE cp_attempt_fences (
  item_id text PRIMARY KEY,
  attempt int NOT NULL,
  worker_id text NOT NULL,
  open boolean NOT NULL
);
-- The runs' change counter. A write takes the next value by updating this one row as its last statement, so
-- the row lock orders the writes' commits the way their values go: a reader that has seen change N has seen
-- every change below it (a sequence's values can commit out of order, and a reader following them would
-- skip one committed late).
CREATE TABLE cp_run_meta (
  id int PRIMARY KEY CHECK (id = 1),
  change bigint NOT NULL
);
INSERT INTO cp_run_meta VALUES (1, 0);
CREATE TABLE cp_runs (
  run_id text PRIMARY KEY,
  item_id text NOT NULL,
  attempt int NOT NULL,
  worker_id text NOT NULL,
  manifest text NOT NULL,
  events_count bigint NOT NULL DEFAULT 0,
  last_hash text NOT NULL DEFAULT '',
  sealed boolean NOT NULL DEFAULT false,
  fenced boolean NOT NULL DEFAULT false,
  bundle_bytes bigint NOT NULL DEFAULT 0,
  change bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cp_runs_change ON cp_runs (change);
CREATE INDEX cp_runs_item ON cp_runs (item_id);
CREATE TABLE cp_run_events (
  run_id text NOT NULL REFERENCES cp_runs ON DELETE CASCADE,
  seq bigint NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (run_id, seq)
);
-- A sealed bundle's files. A seal's chunks are uploaded staged, each in a short transaction of its own, and
-- made the run's in the one short transaction that checks the fence: no lock is held while bytes travel.
CREATE TABLE cp_run_files (
  run_id text NOT NULL REFERENCES cp_runs ON DELETE CASCADE,
  path text NOT NULL,
  chunk int NOT NULL,
  staged boolean NOT NULL,
  size bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (run_id, staged, path, chunk)
);
CREATE FUNCTION cp_fence_follows_queue() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  next_change bigint;
BEGIN
  -- The queue's writer holds the queue's lock while this waits for a run write's short hold on the fence
  -- row: bounded, so a writer that stalls there (paused mid-commit) fails this one operation, which is
  -- retried, rather than the whole queue.
  PERFORM set_config('lock_timeout', '3s', true);
  IF NEW.op->>'op' = 'claimed' THEN
    INSERT INTO cp_attempt_fences (item_id, attempt, worker_id, open)
      VALUES (NEW.item_id, (NEW.op->>'attempt')::int, coalesce(NEW.op->>'worker', ''), true)
      ON CONFLICT (item_id) DO UPDATE
        SET attempt = EXCLUDED.attempt, worker_id = EXCLUDED.worker_id, open = true;
    -- An earlier attempt's run that never got its seal stored will not now: it is cut off.
    IF EXISTS (SELECT 1 FROM cp_runs WHERE item_id = NEW.item_id AND attempt < (NEW.op->>'attempt')::int
               AND NOT sealed AND NOT fenced) THEN
      UPDATE cp_run_meta SET change = change + 1 WHERE id = 1 RETURNING change INTO next_change;
      UPDATE cp_runs SET fenced = true, change = next_change, updated_at = now()
        WHERE item_id = NEW.item_id AND attempt < (NEW.op->>'attempt')::int AND NOT sealed AND NOT fenced;
    END IF;
    -- What a cut-off run had staged for a seal it can no longer make.
    DELETE FROM cp_run_files f USING cp_runs r
      WHERE f.run_id = r.run_id AND f.staged AND r.item_id = NEW.item_id AND r.fenced;
  ELSIF NEW.op->>'op' = 'finished' AND (NEW.op->>'lease_lost')::boolean IS TRUE THEN
    UPDATE cp_attempt_fences SET open = false
      WHERE item_id = NEW.item_id AND attempt = (NEW.op->>'attempt')::int;
    IF EXISTS (SELECT 1 FROM cp_runs WHERE run_id = NEW.op->>'run_id' AND NOT sealed) THEN
      UPDATE cp_run_meta SET change = change + 1 WHERE id = 1 RETURNING change INTO next_change;
      UPDATE cp_runs SET fenced = true, change = next_change, updated_at = now()
        WHERE run_id = NEW.op->>'run_id' AND NOT sealed;
      DELETE FROM cp_run_files WHERE run_id = NEW.op->>'run_id' AND staged;
    END IF;
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER cp_fence_follows_queue AFTER INSERT ON cp_queue_ops
  FOR EACH ROW EXECUTE FUNCTION cp_fence_follows_queue();
)sql"},
};

const char* kCreateTable = R"sql(
CREATE TABLE IF NOT EXISTS cp_schema_migrations (
  version int PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql";

bool has_migrations_table(PgConnection& c) {
  return c.exec("SELECT to_regclass('cp_schema_migrations') IS NOT NULL").text(0, 0) == "t";
}

}  // namespace

const std::vector<Migration>& migrations() {
  return kMigrations;
}

int latest_schema_version() {
  return kMigrations.back().version;
}

SchemaStatus schema_status(PgConnection& c) {
  SchemaStatus s;
  s.latest = latest_schema_version();
  if (has_migrations_table(c)) {
    PgRows r = c.exec("SELECT version, " + iso_utc_sql("applied_at") +
                      " FROM cp_schema_migrations ORDER BY version");
    for (int i = 0; i < r.size(); ++i) {
      int v = static_cast<int>(r.integer(i, 0));
      s.applied_at.emplace_back(v, r.text(i, 1));
      if (v > s.version) s.version = v;
    }
  }
  for (const auto& m : kMigrations)
    if (m.version > s.version) s.pending.push_back(m);
  return s;
}

std::vector<Migration> migrate(PgConnection& c) {
  std::vector<Migration> applied;
  for (const auto& m : kMigrations) {
    Transaction t(c);
    c.exec("SELECT pg_advisory_xact_lock(" + std::string(kMigrateLock) + ")");
    // Under the lock too: two CREATE TABLE IF NOT EXISTS at once can still collide in the catalogue.
    c.exec(kCreateTable);
    // Decided under the lock: a migrator that waited sees what the other applied.
    if (c.exec("SELECT 1 FROM cp_schema_migrations WHERE version = $1", {std::to_string(m.version)}).size())
      continue;
    c.exec_script(m.sql);
    c.exec("INSERT INTO cp_schema_migrations (version, name) VALUES ($1, $2)",
           {std::to_string(m.version), std::string(m.name)});
    t.commit();
    applied.push_back(m);
  }
  return applied;
}

void require_current_schema(PgConnection& c) {
  SchemaStatus s = schema_status(c);
  if (s.version == s.latest) return;
  const std::string store = c.redacted().empty() ? "" : " --store '" + c.redacted() + "'";
  if (s.version > s.latest)
    throw SchemaMismatch("the database's schema is at version " + std::to_string(s.version) +
                         ", newer than this cp-host knows (" + std::to_string(s.latest) +
                         "): run a cp-host at least as new as the one that migrated it");
  throw SchemaMismatch("the database's schema is at version " + std::to_string(s.version) + " of " +
                       std::to_string(s.latest) + " (" + std::to_string(s.pending.size()) +
                       " migration(s) pending): run `cp-host db migrate" + store + "`");
}

}  // namespace cp::db
