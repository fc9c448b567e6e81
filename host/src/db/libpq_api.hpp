// libpq, opened when the PostgreSQL store is first used rather than linked: linking it loads some twenty
// libraries (Kerberos, LDAP, GnuTLS, ...) into every cp-host process — each run, each plugin worker, each
// CLI command — and that costs about 4 ms of CPU per process start, for a store most processes never open.
// Only db/pg_connection.cpp includes this.
#pragma once

#include <libpq-fe.h>

namespace cp::db {

// The libpq functions cp-host calls, resolved from libpq.so.5.
struct LibPq {
  decltype(&::PQconninfoParse) PQconninfoParse;
  decltype(&::PQconninfoFree) PQconninfoFree;
  decltype(&::PQfreemem) PQfreemem;
  decltype(&::PQclear) PQclear;
  decltype(&::PQntuples) PQntuples;
  decltype(&::PQgetisnull) PQgetisnull;
  decltype(&::PQgetvalue) PQgetvalue;
  decltype(&::PQgetlength) PQgetlength;
  decltype(&::PQfinish) PQfinish;
  decltype(&::PQconnectdbParams) PQconnectdbParams;
  decltype(&::PQstatus) PQstatus;
  decltype(&::PQerrorMessage) PQerrorMessage;
  decltype(&::PQsetNoticeProcessor) PQsetNoticeProcessor;
  decltype(&::PQresultErrorField) PQresultErrorField;
  decltype(&::PQresultErrorMessage) PQresultErrorMessage;
  decltype(&::PQexecParams) PQexecParams;
  decltype(&::PQresultStatus) PQresultStatus;
  decltype(&::PQexec) PQexec;
  decltype(&::PQnotifies) PQnotifies;
  decltype(&::PQconsumeInput) PQconsumeInput;
  decltype(&::PQsocket) PQsocket;
};

// The library, opened and resolved on the first call (thread-safe); throws std::runtime_error saying what
// to install when libpq.so.5 or one of its functions cannot be found.
const LibPq& pq();

}  // namespace cp::db
