// Capabilities of a run's processes. cp-host often runs as root; its children must not keep root's
// capabilities, which reach past every path rule (chown, immutable flags, raw devices, netlink
// administration, the clock, other users' terminals). Landlock does not cover those operations.
#pragma once

namespace cp::os {

// True when the calling process holds CAP_SYS_ADMIN (so it may give a child its own network namespace).
bool has_sys_admin();

// In the child, between fork and exec (async-signal-safe): locks root's exec privileges away
// (SECBIT_NOROOT), empties the bounding and ambient sets, then the effective, permitted and inheritable
// sets. Returns 0 or the errno of the step that failed. A process without CAP_SETPCAP (not root) has
// nothing to drop beyond its own sets, which are emptied all the same.
int drop_all_capabilities() noexcept;

}  // namespace cp::os
