// The Landlock kernel interface, declared here rather than taken from <linux/landlock.h>: Debian 12's
// header is from Linux 6.1 (ABI 2 era) and lacks the truncate, ioctl, network and scope rights that newer
// kernels offer. Every value below is stable kernel ABI; which of them a kernel understands is decided at
// run time from landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace cp::os::landlock {

// The syscall numbers are the same on every architecture (added after the syscall table was unified).
constexpr long kSysCreateRuleset = 444;
constexpr long kSysAddRule = 445;
constexpr long kSysRestrictSelf = 446;

constexpr uint32_t kCreateRulesetVersion = 1u << 0;

// Filesystem rights (ABI 1 unless noted).
constexpr uint64_t kFsExecute = 1ull << 0;
constexpr uint64_t kFsWriteFile = 1ull << 1;
constexpr uint64_t kFsReadFile = 1ull << 2;
constexpr uint64_t kFsReadDir = 1ull << 3;
constexpr uint64_t kFsRemoveDir = 1ull << 4;
constexpr uint64_t kFsRemoveFile = 1ull << 5;
constexpr uint64_t kFsMakeChar = 1ull << 6;
constexpr uint64_t kFsMakeDir = 1ull << 7;
constexpr uint64_t kFsMakeReg = 1ull << 8;
constexpr uint64_t kFsMakeSock = 1ull << 9;
constexpr uint64_t kFsMakeFifo = 1ull << 10;
constexpr uint64_t kFsMakeBlock = 1ull << 11;
constexpr uint64_t kFsMakeSym = 1ull << 12;
constexpr uint64_t kFsRefer = 1ull << 13;     // ABI 2: link or rename across directories
constexpr uint64_t kFsTruncate = 1ull << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ull << 15;  // ABI 5

// Network rights (ABI 4): TCP bind and connect, by port.
constexpr uint64_t kNetBindTcp = 1ull << 0;
constexpr uint64_t kNetConnectTcp = 1ull << 1;

// Scopes (ABI 6): no connecting to abstract UNIX sockets, no signals, outside the sandbox's own domain.
constexpr uint64_t kScopeAbstractUnixSocket = 1ull << 0;
constexpr uint64_t kScopeSignal = 1ull << 1;

constexpr int kRulePathBeneath = 1;
constexpr int kRuleNetPort = 2;

// The full attribute as of ABI 6; older kernels are passed a shorter prefix of it (the size argument).
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;  // ABI 4
  uint64_t scoped = 0;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

// Every filesystem right a kernel of this ABI version can handle.
constexpr uint64_t fs_rights_for_abi(int abi) {
  uint64_t r = (kFsMakeSym << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) r |= kFsRefer;
  if (abi >= 3) r |= kFsTruncate;
  if (abi >= 5) r |= kFsIoctlDev;
  return r;
}

// The running kernel's Landlock ABI version; 0 when Landlock is absent or disabled.
inline int abi_version() {
  long v = ::syscall(kSysCreateRuleset, nullptr, 0, kCreateRulesetVersion);
  return v > 0 ? static_cast<int>(v) : 0;
}

}  // namespace cp::os::landlock
