#include "intake/intake_store.hpp"

#include "core/json_depth.hpp"
#include "core/runtime_paths.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"
#include "store/event_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace cp::intake {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxIntakeLogBytes = 64u << 20;

// An exclusive flock on intake/<id>/.lock for as long as it lives; threads of one process queue on a mutex
// first (an flock is per open file description, not per thread).
class SessionLock {
 public:
  explicit SessionLock(const fs::path& dir) : guard_(mu()) {
    fd_ = ::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0)
      throw std::runtime_error("cannot open " + (dir / ".lock").string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX) != 0) {
      int e = errno;
      ::close(fd_);
      throw std::runtime_error("cannot lock " + (dir / ".lock").string() + ": " + std::strerror(e));
    }
  }
  ~SessionLock() { ::close(fd_); }
  SessionLock(const SessionLock&) = delete;
  SessionLock& operator=(const SessionLock&) = delete;

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> guard_;
  int fd_ = -1;
};

// The log's events, each parsed; nullopt when the log is missing, a link or does not verify.
std::optional<std::vector<json>> read_log(const fs::path& log) {
  auto check = store::verify_event_log(log);
  if (!check.ok && !check.torn_tail) return std::nullopt;
  auto r = store::read_regular_file(log, kMaxIntakeLogBytes);
  if (r.status != store::FileRead::Status::ok) return std::nullopt;
  std::vector<json> out;
  size_t start = 0;
  for (uint64_t n = 0; n < check.events && start < r.bytes.size(); ++n) {
    size_t end = r.bytes.find('\n', start);
    if (end == std::string::npos) break;
    json ev = json::parse(r.bytes.substr(start, end - start), nullptr, false);
    if (ev.is_discarded()) return std::nullopt;
    out.push_back(std::move(ev));
    start = end + 1;
  }
  return out;
}

// A session's folder: a real folder, never a link to one elsewhere.
bool real_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(dir, ec));
}

// session.json if it matches the log's last event, else that event's copy of the session.
std::optional<json> current_session(const fs::path& dir) {
  if (!real_dir(dir)) return std::nullopt;
  auto events = read_log(dir / "events.jsonl");
  if (!events || events->empty()) return std::nullopt;
  // The log is the truth and its last event carries the whole session: session.json is a copy for people
  // and tools, never read back (an edited copy with the right event_seq would otherwise be believed).
  const json& last = events->back();
  const json& p = last["payload"];
  if (!p.is_object() || !p.contains("session") || !p["session"].is_object()) return std::nullopt;
  return p["session"];
}

}  // namespace

std::string new_intake_id() {
  return store::new_run_id("intake");
}

bool valid_intake_id(const std::string& id) {
  return id.rfind("intake-", 0) == 0 && store::valid_run_id(id);
}

IntakeStore::IntakeStore(fs::path root) : root_(std::move(root)) {}

fs::path IntakeStore::dir_of(const std::string& id) const {
  return core::intake_dir(root_) / id;
}

json IntakeStore::create(json session, IntakeEvent first) {
  const std::string id = session.value("intake_id", "");
  if (!valid_intake_id(id)) throw std::runtime_error("'" + id + "' is not an intake id");
  fs::path dir = dir_of(id);
  fs::create_directories(dir.parent_path());
  std::error_code ec;
  if (!fs::create_directory(dir, ec) || ec)
    throw std::runtime_error("cannot make " + dir.string() + (ec ? ": " + ec.message() : ": it exists"));
  SessionLock lock(dir);
  store::EventLog log(dir / "events.jsonl", id);
  session["event_seq"] = log.count() + 1;
  first.payload["session"] = session;
  log.append(first.type, std::move(first.payload));
  store::write_json_atomic(dir / "session.json", session);
  return session;
}

std::optional<json> IntakeStore::update(const std::string& id,
                                        const std::function<std::optional<IntakeEvent>(json&)>& change) {
  if (!valid_intake_id(id)) return std::nullopt;
  fs::path dir = dir_of(id);
  if (!real_dir(dir)) return std::nullopt;
  SessionLock lock(dir);
  auto session = current_session(dir);
  if (!session) throw std::runtime_error("intake " + id + ": its event log is missing or does not verify");
  json next = *session;
  auto ev = change(next);
  if (!ev) return session;
  store::EventLog log(dir / "events.jsonl", id);
  next["event_seq"] = log.count() + 1;
  ev->payload["session"] = next;
  log.append(ev->type, std::move(ev->payload));
  store::write_json_atomic(dir / "session.json", next);
  return next;
}

std::optional<json> IntakeStore::load(const std::string& id) const {
  if (!valid_intake_id(id)) return std::nullopt;
  return current_session(dir_of(id));
}

std::vector<json> IntakeStore::list() const {
  std::vector<json> out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(core::intake_dir(root_), ec)) {
    std::string name = d.path().filename().string();
    if (!valid_intake_id(name) || !d.is_directory(ec) || d.is_symlink(ec)) continue;
    if (auto s = current_session(d.path())) out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return std::make_pair(a.value("created_at", ""), a.value("intake_id", "")) >
           std::make_pair(b.value("created_at", ""), b.value("intake_id", ""));
  });
  return out;
}

std::optional<json> IntakeStore::events(const std::string& id) const {
  if (!valid_intake_id(id) || !real_dir(dir_of(id))) return std::nullopt;
  auto events = read_log(dir_of(id) / "events.jsonl");
  if (!events) return std::nullopt;
  return json(*events);
}

}  // namespace cp::intake
