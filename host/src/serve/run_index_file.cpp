#include "serve/run_index_file.hpp"

#include "core/json_depth.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <system_error>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'C', 'P', 'R', 'U', 'N', 'I', 'X', '1'};
constexpr uint32_t kVersion = 2;

struct Header {
  char magic[8];
  uint32_t version, row_size;
  uint64_t rows, arena, values, values_bytes, gate_names, gate_names_bytes, gate_store, stamp_bytes, orders;
  uint32_t crc, reserved;
};

// Appends to a file through a buffer, keeping the checksum of everything after the header.
class Writer {
 public:
  Writer(int fd, const fs::path& name) : fd_(fd), name_(name) { buf_.reserve(1 << 20); }
  void put(const void* p, size_t n) {
    if (n == 0) return;  // crc32_z of a null buffer would restart the checksum
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(p), n);
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      size_t take = std::min(n, (1u << 20) - buf_.size());
      buf_.append(c, take);
      c += take;
      n -= take;
      if (buf_.size() == (1u << 20)) flush();
    }
  }
  template <class T>
  void put_pod(const T& v) {
    put(&v, sizeof v);
  }
  void flush() {
    if (int err = store::write_all(fd_, buf_))
      throw std::system_error(err, std::generic_category(), name_.string());
    buf_.clear();
  }
  uint32_t crc() const { return static_cast<uint32_t>(crc_); }

 private:
  int fd_;
  const fs::path& name_;
  std::string buf_;
  uLong crc_ = crc32_z(0, nullptr, 0);
};

// Takes the file's sections in turn, from memory or straight from the file (so a large index is read once
// into its final arrays, never into a buffer first), keeping the checksum of what it took after the header.
// A take that would run past the end is refused.
class Reader {
 public:
  explicit Reader(std::string_view data) : mem_(data.data()), left_(data.size()) {}
  Reader(int fd, size_t size) : fd_(fd), left_(size), buf_(new char[kBuf]) {}

  bool take(void* out, size_t n) {
    if (n == 0) return true;  // out may be null (an empty section)
    if (n > left_) return false;
    char* to = static_cast<char*>(out);
    if (mem_) {
      std::memcpy(to, mem_, n);
      mem_ += n;
    } else if (!read_file(to, n)) {
      return false;
    }
    left_ -= n;
    if (checksum_) crc_ = crc32_z(crc_, reinterpret_cast<const Bytef*>(to), n);
    return true;
  }
  template <class T>
  bool take_pod(T& v) {
    return take(&v, sizeof v);
  }
  bool take_text(std::string& out, size_t n) {
    if (n > left_) return false;
    out.resize(n);
    return take(out.data(), n);
  }
  void start_checksum() { checksum_ = true; }
  uint32_t checksum() const { return static_cast<uint32_t>(crc_); }
  size_t left() const { return left_; }

 private:
  static constexpr size_t kBuf = 1 << 20;
  bool read_file(char* to, size_t n) {
    while (n > 0) {
      if (at_ == len_) {
        if (n >= kBuf) return read_all(to, n);  // a large section: straight into place
        ssize_t got = 0;
        do got = ::read(fd_, buf_.get(), kBuf);
        while (got < 0 && errno == EINTR);
        if (got <= 0) return false;
        at_ = 0;
        len_ = static_cast<size_t>(got);
      }
      const size_t k = std::min(n, len_ - at_);
      std::memcpy(to, buf_.get() + at_, k);
      at_ += k;
      to += k;
      n -= k;
    }
    return true;
  }
  bool read_all(char* to, size_t n) {
    while (n > 0) {
      ssize_t got = ::read(fd_, to, n);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      to += got;
      n -= static_cast<size_t>(got);
    }
    return true;
  }

  const char* mem_ = nullptr;
  int fd_ = -1;
  size_t left_;
  std::unique_ptr<char[]> buf_;
  size_t at_ = 0, len_ = 0;
  bool checksum_ = false;
  uLong crc_ = crc32_z(0, nullptr, 0);
};

// A run id read back names a folder under runs/ and goes into JSON answers: it must be one a listing of that
// folder could give (store::list_runs takes only valid run ids).
bool safe_name(std::string_view id) {
  return store::valid_run_id(id);
}

// A gate id read back is a key of JSON answers: bytes that are not UTF-8 could not be written out.
bool utf8_text(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

std::optional<IndexImage> parse(Reader& in, std::string& why);

}  // namespace

uint64_t manifest_stamp(const fs::path& manifest) {
  struct stat st {};
  // A link is no manifest the host wrote, and its target's changes would not show in lstat: 0, re-read
  // always.
  if (::lstat(manifest.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  const uint64_t parts[] = {
      static_cast<uint64_t>(st.st_ino),         static_cast<uint64_t>(st.st_size),
      static_cast<uint64_t>(st.st_mtim.tv_sec), static_cast<uint64_t>(st.st_mtim.tv_nsec),
      static_cast<uint64_t>(st.st_ctim.tv_sec), static_cast<uint64_t>(st.st_ctim.tv_nsec),
      static_cast<uint64_t>(st.st_mode)};
  // FNV-1a over the parts: a change of any of them changes the stamp (a collision only delays a re-read
  // until the next change), and 0 stays free for "no manifest".
  uint64_t h = 1469598103934665603ull;
  for (uint64_t p : parts)
    for (int i = 0; i < 8; ++i) {
      h ^= (p >> (8 * i)) & 0xFF;
      h *= 1099511628211ull;
    }
  return h == 0 ? 1 : h;
}

void save_run_index(const fs::path& file, const RunTable& table, const std::string& runs_stamp,
                    const std::vector<uint32_t>& order, const std::vector<uint32_t>& by_last) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  // The index folder is the host's: a link in its place would send the file elsewhere.
  struct stat dir {};
  if (::lstat(file.parent_path().c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode))
    throw std::runtime_error(file.parent_path().string() +
                             " is not a folder (a link or a file is not followed)");
  // A fresh temporary file, never one found in place (a link, a FIFO, a hard link to another file).
  const fs::path tmp = file.string() + ".tmp";
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
    throw std::system_error(errno, std::generic_category(), tmp.string());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), tmp.string());
  try {
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.row_size = sizeof(RunTable::Row);
    for (const auto& r : table.rows()) h.rows += (r.flags & RunTable::kDead) ? 0 : 1;
    h.gate_names = table.gate_names().size();
    h.stamp_bytes = runs_stamp.size();
    // Saved rows are renumbered (dead ones are left out), oldest first when the catalogue's order is given:
    // a start then walks the rows in memory order, and so do the newest-first pages.
    const bool orders = order.size() == h.rows && by_last.size() == h.rows;
    std::vector<uint32_t> renumbered(table.rows().size(), 0xFFFFFFFFu);
    std::vector<uint32_t> written;
    written.reserve(h.rows);
    if (orders) {
      for (uint32_t r : order)
        if (r < renumbered.size() && renumbered[r] == 0xFFFFFFFFu &&
            !(table.rows()[r].flags & RunTable::kDead)) {
          renumbered[r] = static_cast<uint32_t>(written.size());
          written.push_back(r);
        }
    }
    if (written.size() != h.rows) {  // no order, or one that is not every live row once: row order
      written.clear();
      std::fill(renumbered.begin(), renumbered.end(), 0xFFFFFFFFu);
      for (uint32_t r = 0; r < table.rows().size(); ++r)
        if (!(table.rows()[r].flags & RunTable::kDead)) {
          renumbered[r] = static_cast<uint32_t>(written.size());
          written.push_back(r);
        }
    }
    h.orders = orders ? 2 : 0;
    // Only what the saved rows use is saved: the values, gate results and run ids of runs removed since the
    // table was built (retention, a reindex of a changed root) are left behind, so the file and the next
    // start's table do not grow with churn.
    std::vector<RunTable::Row> out_rows;
    out_rows.reserve(written.size());
    std::string arena;
    std::vector<uint32_t> value_map(table.values().size(), 0);
    std::vector<uint32_t> kept_values;
    std::vector<RunTable::GateResult> gates;
    auto keep_value = [&](uint32_t& code) {
      if (code == RunTable::kAbsent || code == RunTable::kNumber || code >= value_map.size()) return;
      if (value_map[code] == 0) {
        kept_values.push_back(code);
        value_map[code] = static_cast<uint32_t>(kept_values.size());
      }
      code = value_map[code];
    };
    for (uint32_t r : written) {
      RunTable::Row row = table.rows()[r];
      row.id = static_cast<uint32_t>(arena.size());
      arena.append(table.run_id(r));
      keep_value(row.status);
      for (auto& c : row.code) keep_value(c);
      const uint32_t first = static_cast<uint32_t>(gates.size());
      for (uint32_t g = row.gates; g < row.gates + row.ngates && g < table.gate_store().size(); ++g) {
        RunTable::GateResult res = table.gate_store()[g];
        keep_value(res.verdict);
        gates.push_back(res);
      }
      row.gates = first;
      out_rows.push_back(row);
    }
    h.arena = arena.size();
    h.values = kept_values.size() + 1;
    h.gate_store = gates.size();
    Writer w(fd, tmp);
    std::string zero(sizeof h, '\0');
    if (int err = store::write_all(fd, zero))
      throw std::system_error(err, std::generic_category(), tmp.string());
    w.put(out_rows.data(), out_rows.size() * sizeof(RunTable::Row));
    w.put(arena.data(), arena.size());
    for (uint32_t c : kept_values) {
      const auto& v = table.values()[c];
      auto n = static_cast<uint32_t>(v.dump.size());
      w.put_pod(n);
      w.put(v.dump.data(), n);
      h.values_bytes += 4 + n;
    }
    for (const auto& g : table.gate_names()) {
      auto n = static_cast<uint32_t>(g.size());
      w.put_pod(n);
      w.put(g.data(), n);
      h.gate_names_bytes += 4 + n;
    }
    w.put(gates.data(), gates.size() * sizeof(RunTable::GateResult));
    if (orders)
      for (const auto* o : {&order, &by_last})
        for (uint32_t r : *o) w.put_pod(r < renumbered.size() ? renumbered[r] : 0xFFFFFFFFu);
    w.put(runs_stamp.data(), runs_stamp.size());
    w.flush();
    h.crc = w.crc();
    if (::pwrite(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || ::fdatasync(fd) != 0)
      throw std::system_error(errno, std::generic_category(), tmp.string());
  } catch (...) {
    ::close(fd);
    fs::remove(tmp, ec);
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    fs::remove(tmp, ec);
    throw std::system_error(err, std::generic_category(), file.string());
  }
  store::fsync_dir(file.parent_path());
}

std::optional<IndexImage> load_run_index(const fs::path& file, std::string& why) {
  // O_NONBLOCK: a FIFO in place of the file must not hold the start; reads of a regular file ignore it.
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    why = errno == ENOENT ? "missing" : std::string("cannot be opened: ") + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    why = "not a regular file";
    return std::nullopt;
  }
  std::optional<IndexImage> image;
  try {
    Reader in(fd, static_cast<size_t>(st.st_size));
    image = parse(in, why);
  } catch (const std::bad_alloc&) {  // counts that fit a huge (sparse) file but not this machine's memory
    why = "too large to load";
    image.reset();
  }
  ::close(fd);
  return image;
}

std::string reseal_run_index(std::string data) {
  Header h{};
  if (data.size() < sizeof h) return data;
  std::memcpy(&h, data.data(), sizeof h);
  h.crc = static_cast<uint32_t>(crc32_z(crc32_z(0, nullptr, 0),
                                        reinterpret_cast<const Bytef*>(data.data()) + sizeof h,
                                        data.size() - sizeof h));
  std::memcpy(data.data(), &h, sizeof h);
  return data;
}

std::optional<IndexImage> parse_run_index(std::string_view bytes, std::string& why) {
  Reader in(bytes);
  return parse(in, why);
}

namespace {

std::optional<IndexImage> parse_sections(Reader& in, const Header& h, std::string& why);

// The sections' sizes, from the header, add up to the bytes after it. Each count is first bounded by the
// bytes it needs, so nothing overflows and a forged count cannot ask for more memory than the file holds.
bool sections_fit(const Header& h, uint64_t body) {
  if (h.rows > body / sizeof(RunTable::Row) || h.rows >= 0xFFFFFFFFu || h.arena > body || h.values == 0 ||
      h.values > body / 4 + 1 || h.values_bytes > body || h.gate_names > body / 4 ||
      h.gate_names_bytes > body || h.gate_store > body / sizeof(RunTable::GateResult) ||
      h.stamp_bytes > body || (h.orders != 0 && h.orders != 2))
    return false;
  const uint64_t need = h.rows * sizeof(RunTable::Row) + h.arena + h.values_bytes + h.gate_names_bytes +
                        h.gate_store * sizeof(RunTable::GateResult) + h.orders * h.rows * 4 + h.stamp_bytes;
  return need == body;
}

// The header, then the sections. A file of another format, or whose sections do not add up to its size, is
// refused before anything else is read (a large or sparse file costs nothing); one whose checksum does not
// match is reported as such, whatever else is wrong with it (a flipped byte shows as a code out of range
// first).
std::optional<IndexImage> parse(Reader& in, std::string& why) {
  Header h{};
  if (!in.take_pod(h)) {
    why = "shorter than its header";
    return std::nullopt;
  }
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.version != kVersion) {
    why = "not an index of this version";
    return std::nullopt;
  }
  if (h.row_size != sizeof(RunTable::Row)) {
    why = "written by a build with another row layout";
    return std::nullopt;
  }
  if (!sections_fit(h, in.left())) {
    why = "its sections do not add up to its size (a torn or changed file)";
    return std::nullopt;
  }
  in.start_checksum();
  auto image = parse_sections(in, h, why);
  if (image) return image;
  char scratch[4096];
  while (in.left() > 0)
    if (!in.take(scratch, std::min(sizeof scratch, in.left()))) return std::nullopt;
  if (in.checksum() != h.crc && why.find("checksum") == std::string::npos)
    why = "its checksum does not match (a torn or changed file)";
  return std::nullopt;
}

std::optional<IndexImage> parse_sections(Reader& in, const Header& h, std::string& why) {
  std::vector<RunTable::Row> rows(h.rows);
  std::string arena;
  if (!in.take(rows.data(), rows.size() * sizeof(RunTable::Row)) || !in.take_text(arena, h.arena)) {
    why = "a section is cut short";
    return std::nullopt;
  }
  std::vector<RunTable::Value> values(h.values);
  for (size_t c = 1; c < values.size(); ++c) {
    uint32_t n = 0;
    if (!in.take_pod(n) || !in.take_text(values[c].dump, n)) {
      why = "a value is cut short";
      return std::nullopt;
    }
    // Nested deeper than any manifest may be, a value could not be written out again without running out of
    // stack: such a value is refused as a manifest would be (core::read_json_file).
    json v = core::json_depth_ok(values[c].dump) ? json::parse(values[c].dump, nullptr, false)
                                                 : json(json::value_t::discarded);
    if (v.is_discarded()) {
      why = "value " + std::to_string(c) + " is not JSON, or is nested deeper than a manifest may be";
      return std::nullopt;
    }
    if (v.is_string()) {
      values[c].is_string = true;
      values[c].str = v.get<std::string>();
    }
  }
  std::vector<std::string> gate_names(h.gate_names);
  for (auto& g : gate_names) {
    uint32_t n = 0;
    if (!in.take_pod(n) || !in.take_text(g, n)) {
      why = "a gate id is cut short";
      return std::nullopt;
    }
    if (!utf8_text(g)) {
      why = "a gate id is not UTF-8 text";
      return std::nullopt;
    }
  }
  std::vector<RunTable::GateResult> gates(h.gate_store);
  IndexImage image;
  if (h.orders) {
    image.order.resize(h.rows);
    image.by_last.resize(h.rows);
  }
  if (!in.take(gates.data(), gates.size() * sizeof(RunTable::GateResult)) ||
      !in.take(image.order.data(), image.order.size() * 4) ||
      !in.take(image.by_last.data(), image.by_last.size() * 4) ||
      !in.take_text(image.runs_stamp, h.stamp_bytes) || in.left() != 0) {
    why = "the sections do not add up to the file";
    return std::nullopt;
  }
  // Nothing read is trusted before the checksum of all of it matches.
  if (in.checksum() != h.crc) {
    why = "its checksum does not match (a torn or changed file)";
    return std::nullopt;
  }
  auto bad_code = [&](uint32_t c) { return c >= values.size(); };
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    const std::string where = "row " + std::to_string(i);
    if (r.flags & ~(RunTable::kChain | RunTable::kLive | RunTable::kFinal)) {
      why = where + " has unknown flags";
      return std::nullopt;
    }
    if (r.id_len == 0 || r.id > arena.size() || r.id_len > arena.size() - r.id || r.gates > gates.size() ||
        r.ngates > gates.size() - r.gates) {
      why = where + " points past its section";
      return std::nullopt;
    }
    std::string_view id(arena.data() + r.id, r.id_len);
    if (!safe_name(id)) {
      why = where + " has an unsafe run id";
      return std::nullopt;
    }
    if (bad_code(r.status) || r.status == 0 || !values[r.status].is_string) {
      why = where + " has no status";
      return std::nullopt;
    }
    for (int f = 0; f < RunTable::kFieldCount; ++f) {
      const bool numeric = f == RunTable::created_at || f == RunTable::finished_at ||
                           f == RunTable::sealed_at || f == RunTable::duration_ms;
      if (r.code[f] == RunTable::kNumber ? !numeric : bad_code(r.code[f])) {
        why = where + " has an unknown value";
        return std::nullopt;
      }
      // A time held as a number is given back as text: it must be one core::iso_from_ms can write.
      if (r.code[f] == RunTable::kNumber && f != RunTable::duration_ms) {
        int slot = f == RunTable::created_at ? 0 : f == RunTable::finished_at ? 1 : 2;
        if (r.num[slot] < 0 || r.num[slot] > 253402300799999LL) {
          why = where + " has a time out of range";
          return std::nullopt;
        }
      }
    }
    for (uint32_t g = r.gates; g < r.gates + r.ngates; ++g)
      if (gates[g].gate >= gate_names.size() || bad_code(gates[g].verdict)) {
        why = where + " has an unknown gate result";
        return std::nullopt;
      }
  }
  if (!image.table.adopt(std::move(rows), std::move(arena), std::move(values), std::move(gate_names),
                         std::move(gates))) {
    why = "a run id, a value or a gate id is repeated";
    return std::nullopt;
  }
  // Each order must name every row once; whether it is in order is the catalogue's to check.
  for (const auto* o : {&image.order, &image.by_last}) {
    std::vector<bool> seen(o->size());
    for (uint32_t r : *o) {
      if (r >= seen.size() || seen[r]) {
        image.order.clear();
        image.by_last.clear();
        break;
      }
      seen[r] = true;
    }
  }
  return image;
}

}  // namespace

}  // namespace cp::serve
