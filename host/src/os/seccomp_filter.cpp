#include "os/seccomp_filter.hpp"

#include <netinet/in.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sched.h>

#include <cerrno>
#include <cstring>

namespace cp::os {

namespace {

constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                                     CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP |
                                     0x00000080 /* CLONE_NEWTIME */;

// One argument comparison, every field set (libseccomp's SCMP_A* macros leave datum_b to the compiler).
scmp_arg_cmp arg(unsigned index, scmp_compare op, uint64_t a, uint64_t b = 0) {
  scmp_arg_cmp c{};
  c.arg = index;
  c.op = op;
  c.datum_a = a;
  c.datum_b = b;
  return c;
}

struct Ctx {
  scmp_filter_ctx ctx = nullptr;
  ~Ctx() {
    if (ctx) seccomp_release(ctx);
  }
};

}  // namespace

std::vector<uint64_t> build_seccomp_filter(bool network, int landlock_abi, std::string& error) {
  Ctx c;
  c.ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!c.ctx) {
    error = "seccomp_init failed";
    return {};
  }
  // The child sets no_new_privs itself, before Landlock; libseccomp must not do it again or differently.
  seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0);
  int rc = 0;
  auto deny = [&](const char* name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not a syscall on this architecture
    if (rc == 0) rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  };
  for (const char* name : {"ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "mount",
                           "umount",
                           "umount2",
                           "pivot_root",
                           "chroot",
                           "move_mount",
                           "open_tree",
                           "fsopen",
                           "fsconfig",
                           "fsmount",
                           "fspick",
                           "mount_setattr",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "bpf",
                           "kexec_load",
                           "kexec_file_load",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "unshare",
                           "setns",
                           "io_uring_setup",
                           "io_uring_enter",
                           "io_uring_register",
                           "perf_event_open",
                           "userfaultfd",
                           "open_by_handle_at",
                           "name_to_handle_at",
                           "swapon",
                           "swapoff",
                           "reboot",
                           "acct",
                           "quotactl",
                           "quotactl_fd",
                           "lookup_dcookie",
                           "iopl",
                           "ioperm",
                           "syslog",
                           "fanotify_init",
                           "sethostname",
                           "setdomainname",
                           "settimeofday",
                           "clock_settime",
                           "clock_adjtime",
                           "vhangup"})
    deny(name);
  // Calls that reach other processes by pid: allowed on the caller itself (pid or who 0), refused on any
  // other. cp-host shares the uid, so without this a run could set the host's file size limit to 0.
  auto deny_unless_self = [&](const char* name, unsigned index) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR || rc != 0) return;
    rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, arg(index, SCMP_CMP_NE, 0));
  };
  deny_unless_self("prlimit64", 0);
  deny_unless_self("setpriority", 1);
  deny_unless_self("ioprio_set", 1);
  for (const char* name : {"sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr"})
    deny_unless_self(name, 0);
  // ioctls that act beyond the file they are called on: typing into a terminal, immutable and project
  // flags, freezing a filesystem. The request is compared on its low 32 bits (callers sign-extend it).
  for (uint64_t req :
       {0x5412ull /* TIOCSTI */, 0x541cull /* TIOCLINUX */, 0x40086602ull /* FS_IOC_SETFLAGS */,
        0x401c5820ull /* FS_IOC_FSSETXATTR */, 0xc0045877ull /* FIFREEZE */, 0xc0045878ull /* FITHAW */})
    if (rc == 0)
      rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                            arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffull, req));
  // No set-user-id or set-group-id bits: a run owning a file as root must not plant a privileged program.
  struct ModeArg {
    const char* name;
    unsigned arg;
  };
  for (ModeArg m : {ModeArg{"chmod", 1}, ModeArg{"fchmod", 1}, ModeArg{"fchmodat", 2}})
    for (uint64_t bit : {04000ull, 02000ull}) {
      int nr = seccomp_syscall_resolve_name(m.name);
      if (nr != __NR_SCMP_ERROR && rc == 0)
        rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, arg(m.arg, SCMP_CMP_MASKED_EQ, bit, bit));
    }
    // fchmodat2 (Linux 6.6) is newer than this libseccomp: refuse it whole, so libc falls back to fchmodat.
#if defined(__x86_64__)
  if (rc == 0) rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(ENOSYS), 452, 0);
#endif
  // Socket families: local, inet and netlink only (no packet, XDP, vsock, bluetooth, ...).
  for (uint64_t family = 0; family <= 16 && rc == 0; ++family)
    if (family != AF_UNIX && family != AF_INET && family != AF_INET6 && family != AF_NETLINK)
      rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                            arg(0, SCMP_CMP_EQ, family));
  if (rc == 0)
    rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                          arg(0, SCMP_CMP_GT, static_cast<uint64_t>(AF_NETLINK)));
  // clone3 passes its flags in memory a filter cannot read: refuse it as "not implemented" so that libc
  // uses clone, whose flags are an argument.
  if (rc == 0) rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  for (uint64_t bit = 1; bit != 0 && rc == 0; bit <<= 1)
    if (kNamespaceFlags & bit)
      rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                            arg(0, SCMP_CMP_MASKED_EQ, bit, bit));
  if (!network) {
    for (int family : {AF_INET, AF_INET6}) {
      if (landlock_abi < 4) {
        if (rc == 0)
          rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                                arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(family)));
        continue;
      }
      // TCP stays for Landlock to judge by port; every other socket type of the family is refused. The
      // type argument carries SOCK_NONBLOCK/SOCK_CLOEXEC above its low four bits.
      for (int type : {SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET, SOCK_DCCP, SOCK_PACKET})
        if (rc == 0)
          rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2,
                                arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(family)),
                                arg(1, SCMP_CMP_MASKED_EQ, 0xf, static_cast<uint64_t>(type)));
    }
    // Landlock judges TCP alone: a stream socket of another inet protocol (MPTCP is 262) is refused.
    for (int family : {AF_INET, AF_INET6}) {
      if (rc == 0)
        rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2,
                              arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(family)),
                              arg(2, SCMP_CMP_GT, static_cast<uint64_t>(IPPROTO_TCP)));
      for (uint64_t proto = 1; proto < IPPROTO_TCP && rc == 0; ++proto)
        rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2,
                              arg(0, SCMP_CMP_EQ, static_cast<uint64_t>(family)), arg(2, SCMP_CMP_EQ, proto));
    }
  }
  if (rc != 0) {
    error = std::string("seccomp rule: ") + std::strerror(-rc);
    return {};
  }
  // libseccomp writes the program to a file descriptor; a memfd keeps it off the disk.
  int fd = ::memfd_create("cp-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    error = std::string("memfd_create: ") + std::strerror(errno);
    return {};
  }
  rc = seccomp_export_bpf(c.ctx, fd);
  std::vector<uint64_t> words;
  if (rc == 0) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size > 0 && size % 8 == 0) {
      words.resize(static_cast<size_t>(size) / 8);
      if (::pread(fd, words.data(), static_cast<size_t>(size), 0) != size) words.clear();
    }
  }
  ::close(fd);
  if (words.empty()) error = "cannot export the seccomp program";
  return words;
}

}  // namespace cp::os
