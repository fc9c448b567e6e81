#include "queue/queue_store.hpp"
#include "queue/queue_backend.hpp"

#include "core/json_depth.hpp"
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace cp::queue {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxLine = 1 << 20;  // an operation is small; a longer line is damage, not data

struct FdLock {
  int fd = -1;
  ~FdLock() {
    if (fd >= 0) ::close(fd);  // closing releases the flock
  }
};

}  // namespace

void QueueStore::wait_for_others(std::chrono::milliseconds timeout) {
  std::this_thread::sleep_for(timeout);
}

QueueStore::QueueStore(fs::path runtime_dir)
    : dir_(std::move(runtime_dir)), path_(dir_ / "queue.jsonl"), lock_path_(dir_ / "queue.lock") {
  fs::create_directories(dir_);
}

QueueStore::~QueueStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<Problem> QueueStore::problems() const {
  std::vector<Problem> all = bad_lines_;
  all.insert(all.end(), state_.problems().begin(), state_.problems().end());
  return all;
}

int QueueStore::lock_exclusive() {
  int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + lock_path_.string());
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    throw std::system_error(err, std::generic_category(), "lock " + lock_path_.string());
  }
  return fd;
}

void QueueStore::reopen() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path_.string());
  struct stat st {};
  ::fstat(fd_, &st);
  inode_ = st.st_ino;
  offset_ = 0;
  line_no_ = 0;
  ++generation_;
  state_.clear();
  bad_lines_.clear();
  raw_.clear();
}

bool QueueStore::read_new(bool may_repair) {
  struct stat by_path {};
  if (fd_ < 0 || ::stat(path_.c_str(), &by_path) != 0 || by_path.st_ino != inode_) reopen();
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw std::system_error(errno, std::generic_category(), "stat " + path_.string());
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size <= offset_) return false;
  std::string buf(size - offset_, '\0');
  ssize_t got = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(offset_));
  if (got < 0) throw std::system_error(errno, std::generic_category(), "read " + path_.string());
  buf.resize(static_cast<size_t>(got));
  bool changed = false;
  size_t pos = 0;
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;  // an append in progress, or a torn tail
    std::string line = buf.substr(pos, nl - pos);
    offset_ += nl - pos + 1;
    pos = nl + 1;
    ++line_no_;
    ++generation_;
    if (line.empty()) continue;
    if (line.size() > kMaxLine || !core::json_depth_ok(line)) {
      bad_lines_.push_back({line_no_, "line too long or nested too deep"});
      continue;
    }
    std::string problem;
    std::optional<json> op = parse_op(line, problem);
    if (!op) {
      bad_lines_.push_back({line_no_, problem});
      continue;
    }
    if (state_.apply(*op, line_no_)) changed = true;
    raw_.emplace_back((*op)["item_id"].get<std::string>(), std::move(line));
  }
  if (may_repair && pos < buf.size()) {
    // We hold the writers' lock, so nobody is mid-append: this tail is a writer that died mid-line.
    if (::ftruncate(fd_, static_cast<off_t>(offset_)) != 0)
      throw std::system_error(errno, std::generic_category(), "truncate torn tail of " + path_.string());
    ::fdatasync(fd_);
    ++generation_;
    bad_lines_.push_back(
        {line_no_ + 1, "torn last line cut off (" + std::to_string(buf.size() - pos) + " bytes)"});
  }
  return changed;
}

bool QueueStore::refresh() {
  return read_new(false);
}

std::vector<json> QueueStore::transact(const Decide& decide) {
  FdLock lock{lock_exclusive()};
  read_new(true);
  std::vector<json> ops = decide(state_);
  if (ops.empty()) return ops;
  std::string out;
  for (auto& op : ops) {
    strip_nul(op);
    if (std::string p = op_schema_problem(op); !p.empty())
      throw std::invalid_argument("queue operation does not fit queue_item.schema.json: " + p + ": " +
                                  op.dump());
    out += op.dump() + "\n";
  }
  // Apply to a copy first: an operation that does not fit is refused before anything is written.
  QueueState probe = state_;
  for (const auto& op : ops)
    if (!probe.apply(op))
      throw std::logic_error("queue operation does not fit: " + probe.problems().back().message);
  if (::lseek(fd_, 0, SEEK_END) < 0 || static_cast<uint64_t>(::lseek(fd_, 0, SEEK_CUR)) != offset_)
    throw std::runtime_error(path_.string() + " changed under the lock");
  if (int err = store::write_all(fd_, out))
    throw std::system_error(err, std::generic_category(), "append to " + path_.string());
  if (::fdatasync(fd_) != 0)
    throw std::system_error(errno, std::generic_category(), "fdatasync " + path_.string());
  ++generation_;
  for (const auto& op : ops) {
    state_.apply(op, ++line_no_);
    raw_.emplace_back(op["item_id"].get<std::string>(), op.dump());
  }
  offset_ += out.size();
  return ops;
}

size_t QueueStore::compact(int64_t keep_terminal_ms) {
  FdLock lock{lock_exclusive()};
  read_new(true);
  std::set<std::string> keep = kept_by_compaction(state_, keep_terminal_ms, now_ms());
  size_t dropped = 0;
  std::string out;
  for (const auto& [id, line] : raw_) {
    if (keep.count(id))
      out += line + "\n";
    else
      ++dropped;
  }
  if (dropped == 0) return 0;
  fs::path hist = dir_ / "queue-history";
  fs::create_directories(hist);
  std::string stamp = new_item_id().substr(2);
  fs::path archived = hist / ("queue-" + stamp + ".jsonl");
  // The full log first (a hard link: same bytes, no copy), then the short log over queue.jsonl.
  if (::link(path_.c_str(), archived.c_str()) != 0)
    throw std::system_error(errno, std::generic_category(), "link " + archived.string());
  store::fsync_dir(hist);
  store::write_atomic(path_, out);
  reopen();
  read_new(false);
  return dropped;
}

}  // namespace cp::queue
