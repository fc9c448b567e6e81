#include "os/sandbox.hpp"

#include "os/landlock_abi.hpp"
#include "os/privileges.hpp"
#include "os/seccomp_filter.hpp"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>

namespace cp::os {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kReadRights = landlock::kFsExecute | landlock::kFsReadFile | landlock::kFsReadDir;
// The rights Landlock accepts on a rule whose object is a file rather than a folder.
constexpr uint64_t kFileRights = landlock::kFsExecute | landlock::kFsWriteFile | landlock::kFsReadFile |
                                 landlock::kFsTruncate | landlock::kFsIoctlDev;

// Device files every program expects to open; the rest of /dev (disks, memory) stays out of reach, since
// a run may hold root's uid and a raw disk would bypass every path rule. No terminals either: a terminal
// of someone else's (cp-host's own, when it runs interactively) would take typed input from the run.
constexpr const char* kDevices[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"};

std::vector<std::string> strings(const std::vector<fs::path>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(p.string());
  return out;
}

std::vector<fs::path> paths_of(const json& doc, const char* key) {
  std::vector<fs::path> out;
  if (!doc.contains(key)) return out;
  if (!doc[key].is_array()) throw std::invalid_argument(std::string("sandbox /") + key + " is not an array");
  for (const auto& p : doc[key]) {
    if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>()[0] != '/')
      throw std::invalid_argument(std::string("sandbox /") + key + " holds a non-absolute path");
    out.emplace_back(p.get<std::string>());
  }
  return out;
}

// a is b or one of b's ancestors, component by component (so /tmp/a is not an ancestor of /tmp/ab).
bool covers(const fs::path& a, const fs::path& b) {
  auto ai = a.begin(), bi = b.begin();
  for (; ai != a.end(); ++ai, ++bi) {
    if (ai->empty()) continue;  // a trailing separator
    if (bi == b.end() || *ai != *bi) return false;
  }
  return true;
}

// The path as the kernel will see it: symlinks in the existing part resolved, the rest kept as written.
fs::path real_path(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

class RulesetBuilder {
 public:
  RulesetBuilder(int fd, uint64_t handled) : fd_(fd), handled_(handled) {}

  // Grants `rights` beneath `path`. A missing path is skipped unless `must`; a file gets the file subset.
  bool grant(const fs::path& path, uint64_t rights, bool must, std::string& error) {
    int pfd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
    if (pfd < 0) {
      if (must) error = "cannot open " + path.string() + " for a sandbox rule: " + std::strerror(errno);
      return !must;
    }
    struct stat st {};
    if (::fstat(pfd, &st) == 0 && !S_ISDIR(st.st_mode)) rights &= kFileRights;
    landlock::PathBeneathAttr attr{rights & handled_, pfd};
    long rc =
        attr.allowed_access ? ::syscall(landlock::kSysAddRule, fd_, landlock::kRulePathBeneath, &attr, 0) : 0;
    int err = errno;
    ::close(pfd);
    if (rc != 0) {
      if (must) error = "landlock_add_rule " + path.string() + ": " + std::strerror(err);
      return !must;
    }
    ++count_;
    return true;
  }

  // Read access to everything except the hidden paths (and what lies beneath them).
  void grant_read_except(const std::vector<fs::path>& hidden, std::string& error) {
    std::set<fs::path> seen;
    for (const auto& h : hidden) {
      fs::path anc;
      for (const auto& part : h) {
        anc = anc.empty() ? part : anc / part;
        if (anc == h) break;
        if (!seen.insert(anc).second) continue;
        bool inside_hidden = false;
        for (const auto& other : hidden) inside_hidden = inside_hidden || covers(other, anc);
        if (inside_hidden) continue;
        std::error_code ec;
        for (fs::directory_iterator it(anc, ec), end; !ec && it != end; it.increment(ec)) {
          const fs::path child = it->path();
          bool on_the_way = false;
          for (const auto& other : hidden) on_the_way = on_the_way || covers(child, other);
          if (on_the_way) continue;
          std::error_code sec;
          if (fs::is_symlink(it->symlink_status(sec))) continue;
          grant(child, kReadRights, false, error);
        }
      }
    }
  }

  size_t count() const { return count_; }

 private:
  int fd_;
  uint64_t handled_;
  size_t count_ = 0;
};

bool simulate_no_landlock() {
  const char* v = std::getenv("CP_SANDBOX_SIMULATE_NO_LANDLOCK");
  return v && *v && std::string(v) != "0";
}

}  // namespace

json SandboxPolicy::to_json() const {
  json j{{"enabled", enabled},
         {"write", strings(write_paths)},
         {"read", strings(read_paths)},
         {"hidden", strings(hidden_paths)},
         {"network", network ? "allow" : "deny"},
         {"connect_ports", connect_ports},
         {"ephemeral_listener", ephemeral_listener},
         {"max_file_bytes", max_file_bytes},
         {"max_open_files", max_open_files},
         {"max_processes", max_processes},
         {"tmp_dir", tmp_dir.string()},
         {"scratch_dir", scratch_dir.string()}};
  return j;
}

SandboxPolicy SandboxPolicy::from_json(const json& doc) {
  if (!doc.is_object()) throw std::invalid_argument("sandbox policy is not an object");
  SandboxPolicy p;
  try {
    p.enabled = doc.value("enabled", true);
    p.write_paths = paths_of(doc, "write");
    p.read_paths = paths_of(doc, "read");
    p.hidden_paths = paths_of(doc, "hidden");
    p.network = doc.value("network", "deny") == "allow";
    p.connect_ports = doc.value("connect_ports", std::vector<uint16_t>{});
    p.ephemeral_listener = doc.value("ephemeral_listener", false);
    p.max_file_bytes = doc.value("max_file_bytes", uint64_t{0});
    p.max_open_files = doc.value("max_open_files", uint64_t{0});
    p.max_processes = doc.value("max_processes", uint64_t{0});
    p.tmp_dir = doc.value("tmp_dir", "");
    p.scratch_dir = doc.value("scratch_dir", "");
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("sandbox policy: ") + e.what());
  }
  return p;
}

json SandboxSupport::to_json() const {
  json j{{"landlock_abi", landlock_abi}, {"seccomp", seccomp}};
  if (!why_not.empty()) j["why_not"] = why_not;
  return j;
}

SandboxSupport probe_sandbox_support() {
  SandboxSupport s;
  if (simulate_no_landlock()) {
    s.why_not = "Landlock reported absent (CP_SANDBOX_SIMULATE_NO_LANDLOCK is set)";
  } else {
    s.landlock_abi = landlock::abi_version();
    if (s.landlock_abi == 0)
      s.why_not = errno == EOPNOTSUPP ? "Landlock is built into this kernel but disabled at boot (lsm=)"
                                      : "this kernel has no Landlock";
  }
  s.seccomp = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  return s;
}

std::shared_ptr<const PreparedSandbox> PreparedSandbox::prepare(const SandboxPolicy& policy,
                                                                std::string& error) {
  std::shared_ptr<PreparedSandbox> sb(new PreparedSandbox());
  sb->policy_ = policy;
  if (!policy.enabled) return sb;  // limits only; the caller recorded the choice
  SandboxSupport support = probe_sandbox_support();
  if (support.landlock_abi == 0) {
    error = support.why_not;
    return nullptr;
  }
  if (!support.seccomp) {
    error = "this kernel has no seccomp filter support";
    return nullptr;
  }
  sb->abi_ = support.landlock_abi;
  landlock::RulesetAttr attr;
  attr.handled_access_fs = landlock::fs_rights_for_abi(sb->abi_);
  size_t attr_size = sizeof(uint64_t);
  if (sb->abi_ >= 4) {
    attr.handled_access_net = policy.network ? 0 : (landlock::kNetBindTcp | landlock::kNetConnectTcp);
    attr_size = 2 * sizeof(uint64_t);
  }
  if (sb->abi_ >= 6) {
    attr.scoped = landlock::kScopeAbstractUnixSocket | landlock::kScopeSignal;
    attr_size = sizeof(attr);
  }
  long fd = ::syscall(landlock::kSysCreateRuleset, &attr, attr_size, 0);
  if (fd < 0) {
    error = std::string("landlock_create_ruleset: ") + std::strerror(errno);
    return nullptr;
  }
  sb->ruleset_fd_ = static_cast<int>(fd);
  RulesetBuilder rules(sb->ruleset_fd_, attr.handled_access_fs);

  std::vector<fs::path> hidden{"/dev"};
  for (const auto& h : policy.hidden_paths) hidden.push_back(real_path(h));
  rules.grant_read_except(hidden, error);
  for (const char* dev : kDevices)
    rules.grant(dev, kReadRights | landlock::kFsWriteFile | landlock::kFsTruncate | landlock::kFsIoctlDev,
                false, error);
  for (const auto& r : policy.read_paths) rules.grant(real_path(r), kReadRights, false, error);
  // No device nodes in writable folders: with root's capabilities a run could make one for a raw disk.
  const uint64_t write_rights = attr.handled_access_fs & ~(landlock::kFsMakeChar | landlock::kFsMakeBlock);
  for (const auto& w : policy.write_paths)
    if (!rules.grant(real_path(w), write_rights, true, error)) return nullptr;
  if (!policy.network && policy.ephemeral_listener && sb->abi_ < 4) {
    error = "this kernel's Landlock (ABI " + std::to_string(sb->abi_) +
            ") cannot filter TCP ports, so a process that must listen on loopback cannot run with the "
            "network denied; use a kernel with Landlock ABI 4 or later (Linux 6.7+)";
    return nullptr;
  }
  if (sb->abi_ >= 4 && !policy.network && policy.ephemeral_listener) {
    // Landlock reads a bind rule for port 0 as "any port of the ephemeral range, picked by the kernel".
    landlock::NetPortAttr net{landlock::kNetBindTcp, 0};
    if (::syscall(landlock::kSysAddRule, sb->ruleset_fd_, landlock::kRuleNetPort, &net, 0) != 0) {
      error = std::string("landlock_add_rule bind port 0: ") + std::strerror(errno);
      return nullptr;
    }
  }
  if (sb->abi_ >= 4 && !policy.network) {
    for (uint16_t port : policy.connect_ports) {
      landlock::NetPortAttr net{landlock::kNetConnectTcp, port};
      if (::syscall(landlock::kSysAddRule, sb->ruleset_fd_, landlock::kRuleNetPort, &net, 0) != 0) {
        error = "landlock_add_rule port " + std::to_string(port) + ": " + std::strerror(errno);
        return nullptr;
      }
    }
  }
  sb->rules_ = rules.count();
  sb->own_netns_ =
      !policy.network && policy.connect_ports.empty() && !policy.ephemeral_listener && has_sys_admin();
  sb->bpf_ = build_seccomp_filter(policy.network, sb->abi_, error);
  if (sb->bpf_.empty()) return nullptr;
  error.clear();
  return sb;
}

PreparedSandbox::~PreparedSandbox() {
  if (ruleset_fd_ >= 0) ::close(ruleset_fd_);
}

int PreparedSandbox::apply_in_child() const noexcept {
  // Limits only ever go down: a process already held lower (cp-plugin-worker is) keeps its own limit.
  auto limit = [](int resource, uint64_t value) {
    if (value == 0) return 0;
    struct rlimit cur {};
    if (::getrlimit(resource, &cur) != 0) return errno;
    rlim_t v = static_cast<rlim_t>(value);
    if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < v) v = cur.rlim_max;
    struct rlimit rl {
      v, v
    };
    return ::setrlimit(resource, &rl) == 0 ? 0 : errno;
  };
  if (int e = limit(RLIMIT_FSIZE, policy_.max_file_bytes)) return e;
  if (int e = limit(RLIMIT_NOFILE, policy_.max_open_files)) return e;
  if (int e = limit(RLIMIT_NPROC, policy_.max_processes)) return e;
  if (!policy_.enabled) return 0;
  // A run denied the network with no port to reach gets a network namespace of its own: no interface but
  // a loopback that is down, and none of the host's abstract sockets or netlink state.
  if (own_netns_ && ::unshare(CLONE_NEWNET) != 0) return errno;
  if (int e = drop_all_capabilities()) return e;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (::syscall(landlock::kSysRestrictSelf, ruleset_fd_, 0) != 0) return errno;
  struct sock_fprog prog {
    static_cast<unsigned short>(bpf_.size()),
        reinterpret_cast<struct sock_filter*>(const_cast<uint64_t*>(bpf_.data()))
  };
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errno;
  return 0;
}

json PreparedSandbox::describe() const {
  json d{{"kind", policy_.enabled ? "landlock+seccomp" : "none"}};
  if (policy_.enabled) {
    d["landlock_abi"] = abi_;
    d["rules"] = rules_;
    d["scoped"] = abi_ >= 6 ? json::array({"abstract_unix_socket", "signal"}) : json::array();
    d["network_enforced_by"] = policy_.network ? "none (network allowed)"
                               : own_netns_    ? "own network namespace + landlock + seccomp"
                               : abi_ >= 4     ? "landlock tcp ports + seccomp"
                                               : "seccomp (no inet sockets)";
    d["capabilities"] = "none";
  }
  json p = policy_.to_json();
  for (auto it = p.begin(); it != p.end(); ++it) d[it.key()] = it.value();
  return d;
}

}  // namespace cp::os
