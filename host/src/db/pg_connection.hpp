// One connection to PostgreSQL (libpq behind this header): parameterised statements, transactions, and
// LISTEN/NOTIFY. The store names a database by a connection string ("postgres://user@host/db",
// "host=/run/pg dbname=cp") or, when the string is empty, by libpq's PG* environment variables.
//
// A connection is used by one thread at a time (its owner serialises). Errors are DbError; `transient()`
// says whether the connection itself failed (the server went away, a restart), so that the caller may
// reconnect and try again, as opposed to a statement the server refused.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct pg_conn;
struct pg_result;

namespace cp::db {

class DbError : public std::runtime_error {
 public:
  DbError(const std::string& what, bool transient, std::string sqlstate = {})
      : std::runtime_error(what), transient_(transient), sqlstate_(std::move(sqlstate)) {}
  bool transient() const { return transient_; }
  // "40001", "23505"; "config" for a connection string libpq cannot parse; empty when none.
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  bool transient_;
  std::string sqlstate_;
};

// A statement's rows, as text (NULL is std::nullopt).
class PgRows {
 public:
  PgRows() = default;
  explicit PgRows(pg_result* r);
  PgRows(PgRows&& o) noexcept;
  PgRows& operator=(PgRows&& o) noexcept;
  PgRows(const PgRows&) = delete;
  PgRows& operator=(const PgRows&) = delete;
  ~PgRows();

  int size() const;
  bool null(int row, int col) const;
  std::string text(int row, int col) const;  // "" for NULL
  int64_t integer(int row, int col) const;   // 0 for NULL

 private:
  pg_result* r_ = nullptr;
};

using Param = std::optional<std::string>;

class PgConnection {
 public:
  // Connects; DbError (transient) when the server cannot be reached, with libpq's reason.
  explicit PgConnection(std::string conninfo);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one statement with text parameters ($1, $2, ...). DbError when it fails.
  PgRows exec(const std::string& sql, const std::vector<Param>& params = {});

  // Runs several statements without parameters (a migration's script). DbError when one fails.
  void exec_script(const std::string& sql);

  // Drops the connection and opens it again (after a transient error). DbError when that fails.
  void reconnect();
  bool broken() const;  // the connection is known to be down

  // LISTEN on `channel` (a plain identifier); re-issued after every reconnect.
  void listen(const std::string& channel);
  // Waits up to `timeout` for a notification on a channel listened to. True when one (or more) arrived;
  // they are consumed. False on timeout or when the connection failed (broken() says which).
  bool wait_notification(std::chrono::milliseconds timeout);

  // The connection string with any password removed: what errors and logs may show.
  const std::string& redacted() const { return redacted_; }

 private:
  void open();
  [[noreturn]] void fail(const std::string& what, pg_result* r);

  std::string conninfo_, redacted_;
  pg_conn* c_ = nullptr;
  std::vector<std::string> channels_;
};

// A text[] parameter in PostgreSQL's array literal form: {"a","b \"c\""}.
std::string text_array(const std::vector<std::string>& items);

// The files a connection string names (passfile, sslkey, sslcert, sslrootcert, sslcrl, sslcrldir), as
// libpq parses it; empty for a string it cannot parse.
std::vector<std::string> conninfo_files(const std::string& conninfo);

// SQL text that renders timestamptz `column` as ISO-8601 UTC ("2026-12-02T10:00:00Z"), the host's time form.
std::string iso_utc_sql(const std::string& column);

// 128 random bits as 32 hex digits: the mark a write leaves on its rows, a process's incarnation.
std::string random_token();

// `conninfo` without its password (URI or key=value form).
std::string redact_conninfo(const std::string& conninfo);

// BEGIN ... COMMIT around a scope: rolled back unless commit() was called. Never throws from the
// destructor (a rollback on a broken connection is moot).
class Transaction {
 public:
  explicit Transaction(PgConnection& c);
  ~Transaction();
  void commit();

 private:
  PgConnection& c_;
  bool done_ = false;
};

}  // namespace cp::db
