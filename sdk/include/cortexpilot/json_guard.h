/*
 * cortexpilot/json_guard.h — a guard against hostile JSON nesting, for the host and for plugins.
 *
 * JSON nested 100,000 levels deep is valid, but most JSON libraries recurse once per level when they copy,
 * compare, print or validate it, and overflow the stack. Text that comes from outside (files, agent
 * streams, other processes) should be measured with cp_json_depth() before it is parsed, and refused
 * when deeper than the caller's limit. The host refuses anything deeper than CP_JSON_MAX_DEPTH.
 *
 * Pure C11, header-only (static inline): nothing to link. Thread-safe (no state). Not an ABI surface: it
 * never crosses the plugin boundary, so it may change between SDK versions without affecting plugins.
 */
#ifndef CORTEXPILOT_JSON_GUARD_H
#define CORTEXPILOT_JSON_GUARD_H

#include <stddef.h>

/* The deepest nesting cp-host accepts in any JSON it reads. Real contracts, verdicts and events stay
 * under 20. */
#define CP_JSON_MAX_DEPTH 256

/* The maximum nesting of arrays and objects in text[0..len) — strings and escapes are skipped — stopping as
 * soon as it exceeds `limit` (then returns limit + 1). Linear, no allocation; does not check validity. */
static inline size_t cp_json_depth(const char* text, size_t len, size_t limit) {
  size_t depth = 0, deepest = 0, i;
  int in_string = 0;
  for (i = 0; i < len; ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = 0;
      continue;
    }
    if (c == '"') {
      in_string = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return limit + 1;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

#endif /* CORTEXPILOT_JSON_GUARD_H */
