// The seccomp half of the run sandbox: system calls no run needs and that would let it leave the
// Landlock domain, reach the kernel's attack surface or other processes, refused with EPERM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cp::os {

// Compiles the filter into classic BPF (struct sock_filter, 8 bytes each, returned as 64-bit words).
//  - always refused: ptrace, process_vm_*, mount and the new mount API, pivot_root, chroot, keyctl,
//    add_key, request_key, bpf, kexec_*, *_module, unshare, setns, clone with CLONE_NEW* flags, io_uring_*
//    (which bypasses Landlock on older ABIs), perf_event_open, userfaultfd, open_by_handle_at,
//    name_to_handle_at, swapon/swapoff, reboot, acct, quotactl, fanotify_init, the clock and host name
//    setters; clone3 answers ENOSYS, so libc falls back to clone, whose flags a filter can see;
//  - prlimit64, setpriority, ioprio_set and sched_set* on any process but the caller;
//  - ioctls TIOCSTI, TIOCLINUX, FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR, FIFREEZE, FITHAW;
//  - chmod/fchmod/fchmodat adding set-user-id or set-group-id bits (fchmodat2 answers ENOSYS);
//  - socket families other than unix, inet, inet6 and netlink;
//  - when `network` is false: every socket of the inet families other than plain TCP (UDP, raw, MPTCP),
//    and, when Landlock cannot govern TCP (`landlock_abi` < 4), TCP sockets too.
// Returns an empty vector with `error` set when libseccomp fails.
std::vector<uint64_t> build_seccomp_filter(bool network, int landlock_abi, std::string& error);

}  // namespace cp::os
