#include "db/pg_connection.hpp"

#include <poll.h>
#include "db/libpq_api.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace cp::db {

namespace {

// Errors after which the same work may succeed on a fresh connection or a second try: the connection
// (class 08), the server shutting down or starting (57P01-57P03), a serialisation failure or deadlock.
bool transient_state(const std::string& s) {
  return s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03" || s == "40001" ||
         s == "40P01" || s == "55P03" || s == "25P03";
}

std::string trimmed(const char* msg) {
  std::string m = msg ? msg : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

}  // namespace

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

std::string redact_conninfo(const std::string& conninfo) {
  if (conninfo.empty()) return {};
  // Parsed by libpq itself, then shown as key=value without the password: no hand-written pattern can
  // miss a form libpq accepts. A string libpq cannot parse is not shown at all (its error would echo it).
  char* err = nullptr;
  PQconninfoOption* opts = pq().PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    if (err) pq().PQfreemem(err);
    return "(a malformed connection string)";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    const std::string key = o->keyword;
    if (key == "password" || key == "sslpassword") continue;
    if (!out.empty()) out += ' ';
    out += key + "=" + o->val;
  }
  pq().PQconninfoFree(opts);
  return out;
}

std::string iso_utc_sql(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char token[40];
  std::snprintf(token, sizeof token, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return token;
}

std::vector<std::string> conninfo_files(const std::string& conninfo) {
  std::vector<std::string> out;
  PQconninfoOption* opts = pq().PQconninfoParse(conninfo.c_str(), nullptr);
  if (!opts) return out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    const std::string key = o->keyword;
    if (o->val && *o->val &&
        (key == "passfile" || key == "sslkey" || key == "sslcert" || key == "sslrootcert" ||
         key == "sslcrl" || key == "sslcrldir"))
      out.emplace_back(o->val);
  }
  pq().PQconninfoFree(opts);
  return out;
}

namespace {

// The password a connection string carries (to scrub it from libpq's messages), or "".
std::string password_of(const std::string& conninfo) {
  PQconninfoOption* opts = pq().PQconninfoParse(conninfo.c_str(), nullptr);
  std::string pw;
  if (!opts) return pw;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (std::string(o->keyword) == "password" && o->val) pw = o->val;
  pq().PQconninfoFree(opts);
  return pw;
}

std::string scrubbed(std::string msg, const std::string& secret) {
  if (secret.size() < 2) return msg;
  for (size_t p; (p = msg.find(secret)) != std::string::npos;) msg.replace(p, secret.size(), "***");
  return msg;
}

}  // namespace

PgRows::PgRows(pg_result* r) : r_(r) {}
PgRows::PgRows(PgRows&& o) noexcept : r_(o.r_) {
  o.r_ = nullptr;
}
PgRows& PgRows::operator=(PgRows&& o) noexcept {
  if (this != &o) {
    if (r_) pq().PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
PgRows::~PgRows() {
  if (r_) pq().PQclear(r_);
}
int PgRows::size() const {
  return r_ ? pq().PQntuples(r_) : 0;
}
bool PgRows::null(int row, int col) const {
  return !r_ || pq().PQgetisnull(r_, row, col);
}
std::string PgRows::text(int row, int col) const {
  if (null(row, col)) return {};
  return std::string(pq().PQgetvalue(r_, row, col), static_cast<size_t>(pq().PQgetlength(r_, row, col)));
}
int64_t PgRows::integer(int row, int col) const {
  return null(row, col) ? 0 : std::strtoll(pq().PQgetvalue(r_, row, col), nullptr, 10);
}

PgConnection::PgConnection(std::string conninfo)
    : conninfo_(std::move(conninfo)), redacted_(redact_conninfo(conninfo_)) {
  open();
}

PgConnection::~PgConnection() {
  if (c_) pq().PQfinish(c_);
}

void PgConnection::open() {
  if (c_) pq().PQfinish(c_);
  c_ = nullptr;
  if (!conninfo_.empty()) {
    char* err = nullptr;
    PQconninfoOption* parsed = pq().PQconninfoParse(conninfo_.c_str(), &err);
    if (!parsed) {
      if (err) pq().PQfreemem(err);
      throw DbError(
          "the store's connection string is malformed: give postgres://USER[:PASSWORD]@HOST[:PORT]/DB "
          "or libpq's key=value form (percent-encode special characters in a URI)",
          false, "config");
    }
    pq().PQconninfoFree(parsed);
  }
  // Defaults first, the caller's string last: what it says wins. A host that stops answering is noticed
  // within a minute rather than TCP's two hours, so no lock is held for ever by a dead peer.
  const char* keys[] = {
      "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
      "dbname",          nullptr};
  const char* values[] = {"10", "1", "10", "5", "3", conninfo_.c_str(), nullptr};
  c_ = pq().PQconnectdbParams(keys, values, 1);
  if (!c_ || pq().PQstatus(c_) != CONNECTION_OK) {
    std::string why =
        c_ ? scrubbed(trimmed(pq().PQerrorMessage(c_)), password_of(conninfo_)) : "out of memory";
    // A constructor that throws runs no destructor: the failed connection is let go here.
    if (c_) pq().PQfinish(c_);
    c_ = nullptr;
    throw DbError(
        "cannot connect to PostgreSQL (" + (redacted_.empty() ? "PG* variables" : redacted_) + "): " + why,
        true);
  }
  // Notices ("relation already exists, skipping") are not errors; keep them off the console.
  pq().PQsetNoticeProcessor(
      c_, [](void*, const char*) {}, nullptr);
  // A lock or an idle transaction never waits for ever: the retry logic above decides what comes next.
  exec("SET lock_timeout = '30s'");
  exec("SET idle_in_transaction_session_timeout = '60s'");
  for (const auto& ch : channels_) exec("LISTEN " + ch);
}

void PgConnection::reconnect() {
  open();
}

bool PgConnection::broken() const {
  return !c_ || pq().PQstatus(c_) != CONNECTION_OK;
}

void PgConnection::fail(const std::string& what, pg_result* r) {
  std::string state =
      r && pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) ? pq().PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
  std::string msg = r ? trimmed(pq().PQresultErrorMessage(r)) : "";
  if (msg.empty()) msg = trimmed(pq().PQerrorMessage(c_));
  if (r) pq().PQclear(r);
  // An error the server did not classify (no SQLSTATE) came from the connection itself: libpq reports some
  // losses that way while the status still reads OK.
  bool transient = broken() || state.empty() || transient_state(state);
  throw DbError(what + ": " + msg, transient, state);
}

PgRows PgConnection::exec(const std::string& sql, const std::vector<Param>& params) {
  if (broken()) throw DbError("PostgreSQL connection is down", true);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  pg_result* r = pq().PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                   nullptr, nullptr, 0);
  ExecStatusType st = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string head = sql.substr(0, sql.find_first_of("\n("));
    fail("statement failed (" + head + ")", r);
  }
  return PgRows(r);
}

void PgConnection::exec_script(const std::string& sql) {
  if (broken()) throw DbError("PostgreSQL connection is down", true);
  pg_result* r = pq().PQexec(c_, sql.c_str());
  ExecStatusType st = r ? pq().PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail("script failed", r);
  pq().PQclear(r);
}

void PgConnection::listen(const std::string& channel) {
  exec("LISTEN " + channel);
  channels_.push_back(channel);
}

bool PgConnection::wait_notification(std::chrono::milliseconds timeout) {
  auto drain = [&] {
    bool any = false;
    while (PGnotify* n = pq().PQnotifies(c_)) {
      any = true;
      pq().PQfreemem(n);
    }
    return any;
  };
  if (broken()) return false;
  if (pq().PQconsumeInput(c_) == 0) return false;
  if (drain()) return true;
  pollfd p{pq().PQsocket(c_), POLLIN, 0};
  if (p.fd < 0) return false;
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return false;
  if (pq().PQconsumeInput(c_) == 0) return false;
  return drain();
}

Transaction::Transaction(PgConnection& c) : c_(c) {
  // Read committed whatever the server's default: each statement sees what committed before it, so a
  // writer that waited for the queue's lock reads what the previous holder wrote.
  c_.exec("BEGIN ISOLATION LEVEL READ COMMITTED");
}

Transaction::~Transaction() {
  if (done_ || c_.broken()) return;
  try {
    c_.exec("ROLLBACK");
  } catch (...) {
  }
}

void Transaction::commit() {
  done_ = true;
  c_.exec("COMMIT");
}

}  // namespace cp::db
