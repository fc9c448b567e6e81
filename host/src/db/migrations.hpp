// The database's schema, in numbered migrations. `cp-host db migrate` applies the ones a database lacks,
// each in its own transaction under an advisory lock (two migrators never interleave), and records it in
// cp_schema_migrations; applying them again changes nothing. serve and every other client refuse a
// database whose schema is not exactly this build's, with the command that fixes it.
#pragma once

#include "db/pg_connection.hpp"

#include <string>
#include <vector>

namespace cp::db {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

// Every migration this build knows, oldest first; versions are 1, 2, ... without gaps.
const std::vector<Migration>& migrations();
int latest_schema_version();

struct SchemaStatus {
  int version = 0;  // the newest migration applied; 0: none (an empty database)
  int latest = 0;   // latest_schema_version()
  std::vector<Migration> pending;
  std::vector<std::pair<int, std::string>> applied_at;  // version -> when (ISO-8601 UTC)
};

SchemaStatus schema_status(PgConnection& c);

// Applies what is pending; returns what it applied (empty: the schema was current).
std::vector<Migration> migrate(PgConnection& c);

// Refused schemas: older (pending migrations) or newer (a later cp-host migrated it).
class SchemaMismatch : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws SchemaMismatch unless the database is at exactly latest_schema_version(); the message names the
// command to run (`cp-host db migrate --store ...`).
void require_current_schema(PgConnection& c);

}  // namespace cp::db
