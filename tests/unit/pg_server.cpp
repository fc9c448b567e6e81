#include "unit/pg_server.hpp"
#include "unit/test_support.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <random>
#include <stdexcept>

namespace cp::test {

namespace fs = std::filesystem;

namespace {

const char* kBin = "/usr/lib/postgresql/15/bin";

// The folder of this build tree's server: CP_TEST_PG_DIR, else one under /tmp named for the build tree
// (the release and the sanitizer builds each get theirs), short enough for a unix socket's path.
fs::path server_dir() {
  if (const char* d = std::getenv("CP_TEST_PG_DIR"); d && *d) return d;
  size_t h = std::hash<std::string>{}(fs::current_path().string());
#ifdef CP_TEST_BUILD_DIR
  h = std::hash<std::string>{}(CP_TEST_BUILD_DIR);
#endif
  char name[64];
  std::snprintf(name, sizeof name, "cp-test-pg-%u-%08zx", static_cast<unsigned>(::getuid()), h & 0xffffffff);
  return fs::temp_directory_path() / name;
}

bool root() {
  return ::geteuid() == 0;
}

// A server command, run as the postgres user when we are root.
Ran as_server(const std::string& line) {
  if (!root()) return sh(line);
  return run({"runuser", "-u", "postgres", "--", "/bin/sh", "-c", line});
}

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

struct FileLock {
  int fd;
  explicit FileLock(const fs::path& p) : fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + p.string());
  }
  ~FileLock() { ::close(fd); }
};

}  // namespace

PgServer::PgServer(fs::path dir, bool owned) : dir_(std::move(dir)), owned_(owned) {}

PgServer::~PgServer() {
  if (!owned_) return;
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::remove(dir_.string() + ".lock", ec);
}

std::unique_ptr<PgServer> PgServer::own(const fs::path& dir) {
  std::unique_ptr<PgServer> s(new PgServer(dir, true));
  s->ensure_running();
  return s;
}

PgServer& PgServer::shared() {
  static PgServer* server = [] {
    auto* s = new PgServer(server_dir());
    s->ensure_running();
    return s;
  }();
  return *server;
}

void PgServer::ensure_running() {
  FileLock lock(dir_.string() + ".lock");
  // A name in /tmp that someone else made (a link to elsewhere) is refused rather than followed.
  if (fs::is_symlink(dir_)) throw std::runtime_error(dir_.string() + " is a symbolic link: refusing it");
  fs::path data = dir_ / "data";
  if (!fs::exists(data / "PG_VERSION")) {
    fs::remove_all(dir_);
    fs::create_directory(dir_);
    fs::permissions(dir_, fs::perms::owner_all);  // the socket's folder: nobody else may even look
    if (root()) {
      Ran c = run({"chown", "postgres:postgres", dir_.string()});
      if (c.exit_code != 0) throw std::runtime_error("chown " + dir_.string() + ": " + c.err);
    }
    Ran init = as_server(std::string(kBin) + "/initdb -D " + quoted(data) +
                         " -U postgres -A trust -E UTF8 --no-sync >" + quoted(dir_ / "initdb.log") + " 2>&1");
    if (init.exit_code != 0)
      throw std::runtime_error("initdb failed (is postgresql-15 installed? scripts/bootstrap.sh): " +
                               read_file(dir_ / "initdb.log") + init.err);
  }
  if (as_server(std::string(kBin) + "/pg_ctl status -D " + quoted(data) + " >/dev/null 2>&1").exit_code == 0)
    return;
  start();
}

void PgServer::start() {
  // Only the socket in our folder; no fsync (a test server's data dies with the machine anyway).
  std::string opts =
      "-k " + dir_.string() +
      " -c listen_addresses= -c unix_socket_permissions=0700 -c fsync=off -c full_page_writes=off"
      " -c max_connections=300";
  Ran r = as_server(std::string(kBin) + "/pg_ctl start -w -t 60 -D " + quoted(dir_ / "data") + " -l " +
                    quoted(dir_ / "server.log") + " -o \"" + opts + "\" >/dev/null 2>&1");
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl start failed: " + read_file(dir_ / "server.log"));
}

void PgServer::stop() {
  as_server(std::string(kBin) + "/pg_ctl stop -w -m fast -D " + quoted(dir_ / "data") + " >/dev/null 2>&1");
}

void PgServer::restart() {
  stop();
  start();
}

void PgServer::stop_shared() {
  PgServer s(server_dir());
  if (fs::exists(s.dir_ / "data" / "PG_VERSION")) s.stop();
}

std::string PgServer::conninfo(const std::string& db) const {
  return "host=" + dir_.string() + " user=postgres dbname=" + db;
}

std::string PgServer::fresh_database() {
  static std::mt19937_64 rng{std::random_device{}()};
  char name[32];
  std::snprintf(name, sizeof name, "t_%d_%012llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  Ran r = run({std::string(kBin) + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo("postgres"),
               "-c", std::string("CREATE DATABASE ") + name});
  if (r.exit_code != 0) throw std::runtime_error("CREATE DATABASE failed: " + r.out + r.err);
  return conninfo(name);
}

}  // namespace cp::test
