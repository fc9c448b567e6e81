// A real PostgreSQL for the tests: Debian's postgresql-15 (initdb + pg_ctl) in a folder under /tmp, on a
// unix socket in that folder and no TCP port. One server serves every test process of a build tree: the
// first test that needs it starts it (under an flock, so parallel tests start it once) and ctest's cleanup
// fixture `pg.stop` stops it. initdb refuses root, so as root the server runs as the `postgres` user the
// package creates (runuser), in a folder that user owns. A test that cannot get a server fails: none skips.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace cp::test {

class PgServer {
 public:
  // The build tree's server, started if it is not running. Throws std::runtime_error with initdb's or
  // pg_ctl's output when it cannot start.
  static PgServer& shared();

  // A server of one test's own in `dir` (a test that restarts or stops it must not disturb the others),
  // stopped when the object dies.
  static std::unique_ptr<PgServer> own(const std::filesystem::path& dir);
  ~PgServer();

  // A new, empty database of its own for one test: its connection string.
  std::string fresh_database();
  // The connection string of database `db`.
  std::string conninfo(const std::string& db) const;

  // pg_ctl stop -m fast / start, as an operator restarting the server would. restart() does both.
  void stop();
  void start();
  void restart();

  const std::filesystem::path& dir() const { return dir_; }

  // Stops the server of the build tree if one runs (ctest's pg.stop).
  static void stop_shared();

 private:
  explicit PgServer(std::filesystem::path dir, bool owned = false);
  void ensure_running();

  std::filesystem::path dir_;
  bool owned_ = false;
};

}  // namespace cp::test
