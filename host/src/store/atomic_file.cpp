#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <system_error>
#include <vector>

namespace cp::store {

namespace {
[[noreturn]] void fail(const std::string& what, const std::filesystem::path& p) {
  throw std::system_error(errno, std::generic_category(), what + " " + p.string());
}
}  // namespace

namespace {

// Reads the regular file open on `fd` (closing it), bounded by max_bytes.
FileRead read_open_file(int fd, uint64_t max_bytes) {
  FileRead r;
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return r;
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    r.status = FileRead::Status::too_large;
    return r;
  }
  r.bytes.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < r.bytes.size()) {
    ssize_t n = ::read(fd, r.bytes.data() + got, r.bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  r.bytes.resize(got);
  r.status = FileRead::Status::ok;
  return r;
}

}  // namespace

FileRead read_regular_file(const std::filesystem::path& p, uint64_t max_bytes) {
  return read_open_file(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), max_bytes);
}

FileRead read_regular_file_beneath(const std::filesystem::path& base, const std::filesystem::path& rel,
                                   uint64_t max_bytes) {
  // One component at a time from `base`, none of them followed if it is a link: a folder swapped for a
  // link between a check and this read leads nowhere.
  int dir = ::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0 || rel.empty() || rel.is_absolute()) {
    if (dir >= 0) ::close(dir);
    return {};
  }
  std::vector<std::string> parts;
  for (const auto& part : rel) parts.push_back(part.string());
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty() || part == "." || part == ".." || part.find('/') != std::string::npos) {
      ::close(dir);
      return {};
    }
    const bool last = i + 1 == parts.size();
    int next = ::openat(dir, part.c_str(),
                        last ? (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
                             : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    ::close(dir);
    if (next < 0) return {};
    if (last) return read_open_file(next, max_bytes);
    dir = next;
  }
  ::close(dir);
  return {};
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("open folder", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("fsync folder", dir);
}

int write_all(int fd, std::string_view data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

void write_atomic(const std::filesystem::path& target, std::string_view content) {
  std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
  std::filesystem::create_directories(dir);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::filesystem::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(rng()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("create", tmp);
  if (int e = write_all(fd, content)) {
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    fail("write", tmp);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    fail("fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail("rename onto", target);
  }
  fsync_dir(dir);
}

void write_json_atomic(const std::filesystem::path& target, const nlohmann::json& doc) {
  // Text a run controls (file names, command lines, agent output) may not be UTF-8: it is written with the
  // bad bytes replaced (U+FFFD) rather than throwing in the middle of a seal.
  write_atomic(target, json_file_text(doc));
}

std::string json_file_text(const nlohmann::json& doc) {
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace cp::store
