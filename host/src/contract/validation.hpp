// `cp-host validate`: checks contracts, packs, policies and plugin configs against their schemas and
// against each other (a contract's pack exists, a pack's gates are loaded plugins, configs fit their
// plugin's schema).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::contract {

struct Diagnostic {
  std::string file;  // as given or found, relative when under the current directory
  int line = 1;
  std::string pointer;  // JSON pointer ("" = whole document)
  std::string rule;     // schema keyword, "json" (syntax), "xref:<what>" (cross-reference), "io"
  std::string message;
  std::string value;     // the offending value, JSON, at most ~200 characters; empty when absent
  std::string expected;  // what would be accepted, when it can be said
  std::string schema;    // which schema applied
};

struct ValidateOptions {
  std::vector<std::filesystem::path> paths;  // files or folders; empty = contracts/ packs/ policies/ of root
  std::filesystem::path root = ".";          // where packs/ and policies/ are looked up for references
  std::optional<std::filesystem::path> plugins_dir;  // plugin .so folder for plugin references
  bool check_plugins = true;                         // false: skip references to plugins
  // Already-loaded plugins to check references against; when null and check_plugins, plugins_dir is loaded.
  const plugin::Registry* registry = nullptr;
  std::string forced_schema;  // apply this schema to every file
  unsigned jobs = 0;          // 0 = one per core
  // A task chain's own checks beyond its schema (its step order: depends_on, cycles, parallel groups; its
  // steps' contracts), which live in the chain layer above this one: called for every chain file checked
  // whose schema passed (not with forced_schema), with the plugins references are checked against (null
  // when not checked). What it returns is reported with the file's other problems. Unset: chains get their
  // schema check only.
  std::function<std::vector<Diagnostic>(const std::filesystem::path& file, const plugin::Registry* plugins)>
      check_chain;
};

struct ValidationReport {
  size_t files_checked = 0;
  size_t files_invalid = 0;
  std::vector<Diagnostic> diagnostics;  // sorted by file, then line
  std::chrono::milliseconds duration{0};
  bool ok() const { return diagnostics.empty(); }
};

// A problem with the request itself (a path that does not exist, an unknown schema): exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

ValidationReport validate(const ValidateOptions& options);

// "<pointer>: <message> (value: ...); expected: ..." — one diagnostic as a sentence, without the file.
std::string describe(const Diagnostic& d);
// The line every command prints for a diagnostic: "FILE:LINE: error [RULE] <describe(d)>".
std::string diagnostic_line(const Diagnostic& d);
// One diagnostic as the API answers it: {file, line, pointer, rule, message, value, expected, schema, text},
// text being describe(d). Callers that speak of a request body rewrite file and pointer after.
nlohmann::json diagnostic_json(const Diagnostic& d);
// Every diagnostic of `list`, in order, as diagnostic_json gives each.
nlohmann::json diagnostics_json(const std::vector<Diagnostic>& list);

}  // namespace cp::contract
