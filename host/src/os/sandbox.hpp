// The run sandbox: what every process a run starts may touch, enforced by the kernel. A policy says which
// folders a run may write (its worktree, a private temp dir, a scratch folder), which it may only read, and
// which it may not see at all (the runtime root with its bundles, queue and tokens; the user's repository
// apart from its .git). It is turned into a Landlock ruleset, a seccomp filter and resource limits in the
// parent, once per run; the child only applies them between fork and exec, with syscalls alone.
//
// Landlock grants rights and cannot subtract them, so "read everything but X" is built as its complement:
// every sibling of every folder on the way from / down to X is granted read, and X itself is left out.
// Symbolic links on that way are not granted (their targets are reached by their own, real path).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace cp::os {

struct SandboxPolicy {
  // false: the run starts processes unsandboxed. Only a pack's explicit choice on a kernel without
  // Landlock gets here, and the manifest records it.
  bool enabled = true;
  std::vector<std::filesystem::path> write_paths;   // read, write, create, remove, execute beneath
  std::vector<std::filesystem::path> read_paths;    // read and execute beneath, even inside a hidden one
  std::vector<std::filesystem::path> hidden_paths;  // no access at all (unless granted above)
  bool network = false;                             // false: no TCP bind/connect, no UDP or raw sockets
  std::vector<uint16_t> connect_ports;              // TCP ports still allowed to connect when !network
  // One process's exception when !network: it may bind a TCP port of the kernel's ephemeral range (a
  // browser's DevTools endpoint the host-side plugin connects to), and it never gets a network namespace
  // of its own, which would put that endpoint out of the plugin's reach. Connect rules are unchanged.
  bool ephemeral_listener = false;
  uint64_t max_file_bytes = 0;        // RLIMIT_FSIZE; 0 = the host's own limit
  uint64_t max_open_files = 0;        // RLIMIT_NOFILE; 0 = the host's own limit
  uint64_t max_processes = 0;         // RLIMIT_NPROC (not enforced for root); 0 = unchanged
  std::filesystem::path tmp_dir;      // the run's private TMPDIR (one of write_paths)
  std::filesystem::path scratch_dir;  // where a run may leave evidence (one of write_paths)

  nlohmann::json to_json() const;
  // Throws std::invalid_argument on a malformed document (it crosses to cp-plugin-worker as JSON).
  static SandboxPolicy from_json(const nlohmann::json& doc);
};

// What this kernel offers. CP_SANDBOX_SIMULATE_NO_LANDLOCK=1 in the environment makes Landlock look absent,
// so tests can check the fail-closed path on any kernel.
struct SandboxSupport {
  int landlock_abi = 0;  // 0 = no Landlock
  bool seccomp = false;
  std::string why_not;  // why landlock_abi is 0
  nlohmann::json to_json() const;
};
SandboxSupport probe_sandbox_support();

// A policy made ready for the child. Holds the ruleset fd (close-on-exec) and the compiled BPF program.
class PreparedSandbox {
 public:
  // Builds the ruleset and the filter. Returns null with `error` set when the kernel cannot enforce the
  // policy (no Landlock, a path that cannot be opened for a write grant, seccomp unavailable).
  static std::shared_ptr<const PreparedSandbox> prepare(const SandboxPolicy& policy, std::string& error);
  ~PreparedSandbox();
  PreparedSandbox(const PreparedSandbox&) = delete;
  PreparedSandbox& operator=(const PreparedSandbox&) = delete;

  // In the child, between fork and exec: rlimits, no_new_privs, Landlock, seccomp. Async-signal-safe (no
  // allocation, no locks). Returns 0, or the errno of the step that failed (the child must then not exec).
  int apply_in_child() const noexcept;

  const SandboxPolicy& policy() const { return policy_; }
  int landlock_abi() const { return abi_; }
  size_t rule_count() const { return rules_; }
  // What the manifest and `intake preview` show: ABI, rights, network, limits.
  nlohmann::json describe() const;

 private:
  PreparedSandbox() = default;
  SandboxPolicy policy_;
  int abi_ = 0;
  int ruleset_fd_ = -1;
  size_t rules_ = 0;
  bool own_netns_ = false;     // network denied, no port allowed, and the host may make a network namespace
  std::vector<uint64_t> bpf_;  // struct sock_filter is 8 bytes; kept as words to avoid the header here
};

}  // namespace cp::os
