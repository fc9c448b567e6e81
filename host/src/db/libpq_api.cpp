#include "db/libpq_api.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace cp::db {

namespace {

template <class F>
void resolve(void* lib, F& into, const char* name) {
  into = reinterpret_cast<F>(::dlsym(lib, name));
  if (!into)
    throw std::runtime_error(std::string("libpq.so.5 has no ") + name +
                             "; install a libpq of PostgreSQL 10 or later (apt-get install libpq5)");
}

LibPq open_libpq() {
  // Never closed: connections live as long as the process.
  void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = ::dlerror();
    throw std::runtime_error(std::string("the PostgreSQL store needs libpq, which cannot be loaded (") +
                             (why ? why : "libpq.so.5") + "); install it: apt-get install libpq5");
  }
  LibPq p{};
#define CP_RESOLVE(f) resolve(lib, p.f, #f)
  CP_RESOLVE(PQconninfoParse);
  CP_RESOLVE(PQconninfoFree);
  CP_RESOLVE(PQfreemem);
  CP_RESOLVE(PQclear);
  CP_RESOLVE(PQntuples);
  CP_RESOLVE(PQgetisnull);
  CP_RESOLVE(PQgetvalue);
  CP_RESOLVE(PQgetlength);
  CP_RESOLVE(PQfinish);
  CP_RESOLVE(PQconnectdbParams);
  CP_RESOLVE(PQstatus);
  CP_RESOLVE(PQerrorMessage);
  CP_RESOLVE(PQsetNoticeProcessor);
  CP_RESOLVE(PQresultErrorField);
  CP_RESOLVE(PQresultErrorMessage);
  CP_RESOLVE(PQexecParams);
  CP_RESOLVE(PQresultStatus);
  CP_RESOLVE(PQexec);
  CP_RESOLVE(PQnotifies);
  CP_RESOLVE(PQconsumeInput);
  CP_RESOLVE(PQsocket);
#undef CP_RESOLVE
  return p;
}

}  // namespace

const LibPq& pq() {
  static const LibPq p = open_libpq();  // a failed open throws, and the next call tries again
  return p;
}

}  // namespace cp::db
