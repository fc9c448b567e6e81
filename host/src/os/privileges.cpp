#include "os/privileges.hpp"

#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace cp::os {

namespace {

bool capget_effective(__u32 (&eff)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  eff[0] = data[0].effective;
  eff[1] = data[1].effective;
  return true;
}

}  // namespace

bool has_sys_admin() {
  __u32 eff[2]{};
  return capget_effective(eff) && (eff[CAP_SYS_ADMIN / 32] & (1u << (CAP_SYS_ADMIN % 32))) != 0;
}

int drop_all_capabilities() noexcept {
  __u32 eff[2]{};
  bool setpcap = capget_effective(eff) && (eff[CAP_SETPCAP / 32] & (1u << (CAP_SETPCAP % 32))) != 0;
  if (setpcap) {
    // uid 0 gets the bounding set again at every exec unless NOROOT says otherwise; lock that in.
    unsigned bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                    SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                    SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return errno;
    for (int cap = 0; cap <= 63; ++cap)
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return errno;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capset, &hdr, data) != 0) return errno;
  return 0;
}

}  // namespace cp::os
