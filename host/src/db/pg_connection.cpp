#include "db/pg_connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cstdlib>
#include <cstring>
#include <regex>

namespace cp::db {

namespace {

// Errors after which the same work may succeed on a fresh connection or a second try: the connection
// (class 08), the server shutting down or starting (57P01-57P03), a serialisation failure or deadlock.
bool transient_state(const std::string& s) {
  return s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03" || s == "40001" ||
         s == "40P01";
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
  // postgres://user:secret@host -> postgres://user:***@host; password=secret -> password=***
  static const std::regex uri(R"(^(postgres(?:ql)?://[^:/@]*):[^@]*@)");
  static const std::regex kv(R"((password\s*=\s*)('[^']*'|\S+))");
  std::string s = std::regex_replace(conninfo, uri, "$1:***@");
  return std::regex_replace(s, kv, "$1***");
}

PgRows::PgRows(pg_result* r) : r_(r) {}
PgRows::PgRows(PgRows&& o) noexcept : r_(o.r_) {
  o.r_ = nullptr;
}
PgRows& PgRows::operator=(PgRows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
PgRows::~PgRows() {
  if (r_) PQclear(r_);
}
int PgRows::size() const {
  return r_ ? PQntuples(r_) : 0;
}
bool PgRows::null(int row, int col) const {
  return !r_ || PQgetisnull(r_, row, col);
}
std::string PgRows::text(int row, int col) const {
  if (null(row, col)) return {};
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t PgRows::integer(int row, int col) const {
  return null(row, col) ? 0 : std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}

PgConnection::PgConnection(std::string conninfo)
    : conninfo_(std::move(conninfo)), redacted_(redact_conninfo(conninfo_)) {
  open();
}

PgConnection::~PgConnection() {
  if (c_) PQfinish(c_);
}

void PgConnection::open() {
  if (c_) PQfinish(c_);
  c_ = PQconnectdb(conninfo_.c_str());
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    std::string why = c_ ? trimmed(PQerrorMessage(c_)) : "out of memory";
    throw DbError(
        "cannot connect to PostgreSQL (" + (redacted_.empty() ? "PG* variables" : redacted_) + "): " + why,
        true);
  }
  // Notices ("relation already exists, skipping") are not errors; keep them off the console.
  PQsetNoticeProcessor(
      c_, [](void*, const char*) {}, nullptr);
  for (const auto& ch : channels_) exec("LISTEN " + ch);
}

void PgConnection::reconnect() {
  open();
}

bool PgConnection::broken() const {
  return !c_ || PQstatus(c_) != CONNECTION_OK;
}

void PgConnection::fail(const std::string& what, pg_result* r) {
  std::string state =
      r && PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
  std::string msg = r ? trimmed(PQresultErrorMessage(r)) : "";
  if (msg.empty()) msg = trimmed(PQerrorMessage(c_));
  if (r) PQclear(r);
  bool transient = broken() || transient_state(state);
  throw DbError(what + ": " + msg, transient, state);
}

PgRows PgConnection::exec(const std::string& sql, const std::vector<Param>& params) {
  if (broken()) throw DbError("PostgreSQL connection is down", true);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  pg_result* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                              nullptr, nullptr, 0);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string head = sql.substr(0, sql.find_first_of("\n("));
    fail("statement failed (" + head + ")", r);
  }
  return PgRows(r);
}

void PgConnection::exec_script(const std::string& sql) {
  if (broken()) throw DbError("PostgreSQL connection is down", true);
  pg_result* r = PQexec(c_, sql.c_str());
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail("script failed", r);
  PQclear(r);
}

void PgConnection::listen(const std::string& channel) {
  exec("LISTEN " + channel);
  channels_.push_back(channel);
}

bool PgConnection::wait_notification(std::chrono::milliseconds timeout) {
  auto drain = [&] {
    bool any = false;
    while (PGnotify* n = PQnotifies(c_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (broken()) return false;
  if (PQconsumeInput(c_) == 0) return false;
  if (drain()) return true;
  pollfd p{PQsocket(c_), POLLIN, 0};
  if (p.fd < 0) return false;
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return false;
  if (PQconsumeInput(c_) == 0) return false;
  return drain();
}

Transaction::Transaction(PgConnection& c) : c_(c) {
  c_.exec("BEGIN");
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
