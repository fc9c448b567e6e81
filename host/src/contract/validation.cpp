#include "contract/validation.hpp"
#include "core/json_depth.hpp"
#include "plugin/search_path.hpp"

#include "contract/browser_policy.hpp"
#include "contract/compiler.hpp"
#include "contract/file_kind.hpp"
#include "contract/role_config.hpp"
#include "contract/task_packs.hpp"
#include "core/json_locator.hpp"
#include "core/json_schema.hpp"
#include "core/json_simd.hpp"
#include "core/schema_catalog.hpp"
#include "plugin/registry.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace cp::contract {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Parsed {
  fs::path path;
  std::string display;
  std::string text;  // held while the file is checked, and after for a file others refer to
  json doc;          // likewise
  std::string schema;
  size_t index = 0;  // its place among all files: those in scope sorted, then those read for references
  bool parsed = false;
  bool in_scope = true;                // false: read only to resolve references
  bool browser_tasks_valid = false;    // a contract whose runtime_options.browser_tasks passed its schema
  bool schema_ok = false;              // parsed, its kind known and no schema diagnostic
  size_t own_diagnostics = 0;          // how many of its diagnostics its reading and schema check found
  std::optional<size_t> invalid_pack;  // a contract's pack, read for references only and invalid: its index
  std::exception_ptr error;            // what its cross-check threw, raised when the report reaches it
  std::vector<Diagnostic> diagnostics;
};

constexpr const char* kBrowserTasksPointer = "/runtime_options/browser_tasks";

// Contracts, packs and policies are small; a file above this is refused before it is read.
constexpr std::uintmax_t kMaxInputBytes = 16u << 20;

// The file's bytes, in one read where its size is known. On failure `why` says what the system answered (a
// symlink loop, a permission), for the file's diagnostic; or `why` stays empty and `size` is set when the
// file is larger than kMaxInputBytes, which is then not read.
bool read_file(const fs::path& p, std::string& out, std::string& why, std::uintmax_t& size) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int open_errno = errno;
    // The size is judged before the permission to read, as a stat of the path does.
    std::error_code ec;
    if (auto s = fs::file_size(p, ec); !ec && s > kMaxInputBytes) {
      size = s;
      return false;
    }
    why = std::strerror(open_errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      static_cast<std::uintmax_t>(st.st_size) > kMaxInputBytes) {
    size = static_cast<std::uintmax_t>(st.st_size);
    ::close(fd);
    return false;
  }
  out.clear();
  // One read for a file whose size is known; the loop goes on until the end in case it grew. The spare
  // capacity lets simdjson read the text in place.
  size_t want = st.st_size > 0 ? static_cast<size_t>(st.st_size) + 1 : 65536;
  out.reserve(want + core::kJsonSimdPadding);
  bool ok = true;
  for (;;) {
    size_t have = out.size();
    out.resize(have + want);
    ssize_t n = ::read(fd, out.data() + have, want);
    if (n < 0 && errno == EINTR) {
      out.resize(have);
      continue;
    }
    if (n <= 0) {
      out.resize(have);
      if (n < 0) {
        why = std::strerror(errno);
        ok = false;
      }
      break;
    }
    out.resize(have + static_cast<size_t>(n));
    want = 65536;
  }
  ::close(fd);
  return ok;
}

// Lexical, so thousands of files cost no syscalls: relative to the working directory when below it.
std::string display_path(const fs::path& p, const fs::path& cwd) {
  fs::path abs = (p.is_absolute() ? p : cwd / p).lexically_normal();
  fs::path rel = abs.lexically_relative(cwd);
  if (!rel.empty() && rel.native().rfind("..", 0) != 0) return rel.string();
  return p.string();
}

// display_path of many files, the folder's part worked out once per folder. A folder path with a "." or
// ".." part, or an empty one, is worked out for each file.
class DisplayPaths {
 public:
  explicit DisplayPaths(fs::path cwd) : cwd_(std::move(cwd)) {}

  std::string of(const fs::path& file) {
    const std::string& s = file.native();
    const size_t slash = s.rfind('/');
    if (slash == std::string::npos || slash == 0) return display_path(file, cwd_);
    const std::string_view dir(s.data(), slash), name(s.data() + slash + 1, s.size() - slash - 1);
    if (name.empty() || name == "." || name == ".." || !plain(dir)) return display_path(file, cwd_);
    auto it = dirs_.find(dir);
    if (it == dirs_.end()) {
      fs::path d(dir);
      fs::path rel = (d.is_absolute() ? d : cwd_ / d).lexically_normal().lexically_relative(cwd_);
      it = dirs_.emplace(std::string(dir), rel.empty() ? std::string() : rel.string()).first;
    }
    const std::string& rel = it->second;
    if (rel.empty()) return s;
    std::string out = rel == "." ? std::string(name) : rel + "/" + std::string(name);
    return out.rfind("..", 0) != 0 ? out : s;
  }

 private:
  static bool plain(std::string_view dir) {
    for (size_t i = 0; i <= dir.size();) {
      size_t j = std::min(dir.find('/', i), dir.size());
      std::string_view part = dir.substr(i, j - i);
      if ((part.empty() && i != 0) || part == "." || part == "..") return false;
      i = j + 1;
    }
    return true;
  }

  fs::path cwd_;
  std::map<std::string, std::string, std::less<>> dirs_;  // folder -> its display form ("" = as given)
};

// The canonical form of a file's path, resolving symlinks once per folder rather than once per file.
class CanonicalPaths {
 public:
  std::string of(const fs::path& file) {
    fs::path dir = file.parent_path();
    auto it = dirs_.find(dir.native());
    if (it == dirs_.end())
      it = dirs_.emplace(dir.native(), fs::weakly_canonical(dir.empty() ? "." : dir)).first;
    return (it->second / file.filename()).string();
  }

 private:
  std::unordered_map<std::string, fs::path> dirs_;
};

std::string short_value(const json& v) {
  std::string s = v.dump();
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

std::string value_at(const json& doc, const std::string& pointer) {
  try {
    return short_value(doc.at(json::json_pointer(pointer)));
  } catch (...) {
    return "";
  }
}

void collect(const fs::path& p, std::vector<fs::path>& out, bool explicit_arg) {
  std::error_code ec;
  auto st = fs::status(p, ec);
  if (ec || !fs::exists(st)) throw UsageError(p.string() + ": no such file or directory");
  if (fs::is_regular_file(st)) {
    out.push_back(p);
    return;
  }
  if (!fs::is_directory(st)) {
    if (explicit_arg) throw UsageError(p.string() + ": not a regular file or directory");
    return;
  }
  for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    // The entry's name, read off its path's text: a folder holds thousands of files.
    const std::string& full = it->path().native();
    const std::string_view name = std::string_view(full).substr(full.rfind('/') + 1);
    // The error_code forms: an entry whose status cannot be read (a symlink loop, a dangling link) must not
    // end the whole validation. A .json one is kept, so reading it reports that file's own error.
    std::error_code entry_ec;
    bool dir = it->is_directory(entry_ec);
    if (dir && !name.empty() && name[0] == '.') {
      it.disable_recursion_pending();
      continue;
    }
    if (name.size() <= 5 || !name.ends_with(".json")) continue;  // its extension() is not ".json"
    bool regular = !entry_ec && it->is_regular_file(entry_ec);
    if (regular || entry_ec) out.push_back(it->path());
  }
}

// Whether the text of `p` has no empty element ("a//b", "a/"), so path_less can order it.
bool plain_path(const fs::path& p) {
  const std::string& s = p.native();
  return s.find("//") == std::string::npos && (s.size() <= 1 || s.back() != '/');
}

// std::filesystem::path's order — element by element, a relative path before an absolute one — on the
// text of plain paths, without splitting them: a separator sorts before any other character.
bool path_less(const fs::path& a, const fs::path& b) {
  const std::string& x = a.native();
  const std::string& y = b.native();
  const bool x_abs = !x.empty() && x[0] == '/', y_abs = !y.empty() && y[0] == '/';
  if (x_abs != y_abs) return y_abs;
  const size_t n = std::min(x.size(), y.size());
  for (size_t i = 0; i < n; ++i) {
    if (x[i] == y[i]) continue;
    if (x[i] == '/' || y[i] == '/') return x[i] == '/';
    return static_cast<unsigned char>(x[i]) < static_cast<unsigned char>(y[i]);
  }
  return x.size() < y.size();
}

// The browser runner's tasks have a schema of their own (browser_tasks.schema.json), which
// task_contract.schema.json does not reference (a schema stays readable alone, by any validator): they are
// checked here, their diagnostics pointing into the contract.
void browser_tasks(Parsed& f) {
  if (!f.doc.is_object() || !f.doc.contains("runtime_options") || !f.doc["runtime_options"].is_object())
    return;
  const json& ro = f.doc["runtime_options"];
  if (!ro.contains("browser_tasks") || !ro["browser_tasks"].is_object()) return;
  auto violations = core::schema("browser_tasks").validate(ro["browser_tasks"]);
  for (auto& v : violations) {
    Diagnostic d;
    d.file = f.display;
    d.pointer = kBrowserTasksPointer + v.pointer;
    d.line = core::line_of_pointer(f.text, d.pointer);
    d.rule = v.rule;
    d.message = v.message;
    d.value = v.rule == "required" ? "" : value_at(f.doc, d.pointer);
    d.expected = v.expected;
    d.schema = "browser_tasks";
    f.diagnostics.push_back(std::move(d));
  }
  f.browser_tasks_valid = violations.empty();
}

void parse_and_check(Parsed& f, const std::string& forced_schema) {
  std::uintmax_t size = 0;
  if (std::string why; !read_file(f.path, f.text, why, size)) {
    if (why.empty())
      f.diagnostics.push_back({f.display, 1, "", "io",
                               "file is " + std::to_string(size >> 20) + " MiB; refused unread (limit " +
                                   std::to_string(kMaxInputBytes >> 20) + " MiB)",
                               "", "a contract, pack or policy under 16 MiB", ""});
    else
      f.diagnostics.push_back(
          {f.display, 1, "", "io", "cannot read the file: " + why, "", "a readable file", ""});
    return;
  }
  // Most files are read by simdjson, which declines nesting deeper than kJsonSimdMaxDepth (less than
  // kMaxJsonDepth); the others are measured, then read by nlohmann, whose errors are the ones reported.
  static_assert(core::kJsonSimdMaxDepth < core::kMaxJsonDepth);
  const bool simd_read = core::parse_json_simd(f.text, f.doc);
  if (size_t depth = simd_read ? 0 : core::json_depth(f.text); depth > core::kMaxJsonDepth) {
    f.diagnostics.push_back(
        {f.display, 1, "", "json",
         "nested more than " + std::to_string(core::kMaxJsonDepth) + " levels deep (refused unparsed)", "",
         "at most " + std::to_string(core::kMaxJsonDepth) + " levels of arrays and objects", ""});
    return;
  }
  try {
    if (!simd_read) f.doc = json::parse(f.text);
    f.parsed = true;
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset; turn it into a line.
    size_t upto = std::min<size_t>(e.byte, f.text.size());
    int line = 1 + static_cast<int>(std::count(f.text.begin(), f.text.begin() + upto, '\n'));
    std::string what = e.what();
    auto pos = what.find("parse error");
    f.diagnostics.push_back({f.display, line, "", "json", pos == std::string::npos ? what : what.substr(pos),
                             "", "well-formed JSON (RFC 8259)", ""});
    return;
  } catch (const json::exception& e) {
    // Not a syntax error but a value nlohmann cannot hold, such as a number beyond a double (1e400). It
    // carries no offset; the token it quotes is looked up to find the line.
    std::string what = e.what();
    auto close = what.find("] ");
    std::string message = close == std::string::npos ? what : what.substr(close + 2);
    int line = 1;
    auto q1 = message.find('\'');
    auto q2 = q1 == std::string::npos ? q1 : message.find('\'', q1 + 1);
    if (q2 != std::string::npos && q2 > q1 + 1)
      if (auto at = f.text.find(message.substr(q1 + 1, q2 - q1 - 1)); at != std::string::npos)
        line = 1 + static_cast<int>(std::count(f.text.begin(), f.text.begin() + at, '\n'));
    f.diagnostics.push_back(
        {f.display, line, "", "json", message, "", "JSON whose numbers fit a 64-bit integer or double", ""});
    return;
  }
  f.schema = forced_schema.empty() ? detect_schema(f.path, f.doc) : forced_schema;
  if (f.schema.empty()) {
    f.diagnostics.push_back(
        {f.display, 1, "", "kind", "cannot tell which schema applies to this file", "",
         "a file under contracts/, packs/ or policies/, a policy file with a \"policy\" field, "
         "or pass --schema NAME",
         ""});
    return;
  }
  for (auto& v : core::schema(f.schema).validate(f.doc)) {
    Diagnostic d;
    d.file = f.display;
    d.line = core::line_of_pointer(f.text, v.pointer);
    d.pointer = v.pointer;
    d.rule = v.rule;
    d.message = v.message;
    d.value = v.rule == "required" ? "" : value_at(f.doc, v.pointer);
    d.expected = v.expected;
    d.schema = f.schema;
    f.diagnostics.push_back(std::move(d));
  }
  if (f.schema == "task_contract") browser_tasks(f);
  f.schema_ok = f.diagnostics.empty();
}

// What other files may refer to, gathered from every parsed document (in scope or not).
struct References {
  std::map<std::string, std::string> packs;  // pack_id -> file
  std::set<std::string> forbidden_actions;
  bool have_forbidden_policy = false;
  std::set<std::string> roles;
  bool have_role_registry = false;
  std::map<std::string, const json*> pack_docs;  // pack_id -> the pack, for a contract's network
  // The operator's browser policy, <root>/policies/browser_policy.json: null when there is none.
  const Parsed* browser_policy = nullptr;
  // The role config runs are compiled with, <root>/policies/role_config.json: null when there is none.
  const Parsed* role_config = nullptr;
};

class CrossChecker {
 public:
  CrossChecker(const References& refs, const plugin::Registry* registry, fs::path root)
      : refs_(refs), registry_(registry), root_(std::move(root)) {}

  void check(Parsed& f) {
    if (!f.parsed || !f.doc.is_object()) return;
    if (f.schema == "task_contract")
      contract(f);
    else if (f.schema == "pack")
      pack(f);
    else if (f.schema == "plugin_config")
      plugin_policy(f);
    else if (f.schema == "role_registry")
      roles(f);
    else if (f.schema == "role_config")
      role_config(f);
    else if (f.schema == "task_pack")
      task_pack(f);
  }

 private:
  void add(Parsed& f, const std::string& pointer, const std::string& rule, const std::string& message,
           const std::string& expected) {
    f.diagnostics.push_back({f.display, core::line_of_pointer(f.text, pointer), pointer, rule, message,
                             value_at(f.doc, pointer), expected, f.schema});
  }

  void forbidden_ids(Parsed& f, const json& list, const std::string& base) {
    if (!list.is_array() || !refs_.have_forbidden_policy) return;
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_string()) continue;
      std::string id = list[i].get<std::string>();
      if (!refs_.forbidden_actions.count(id))
        add(f, base + "/" + std::to_string(i), "xref:forbidden_action",
            "forbidden action '" + id + "' is not defined in policies/forbidden_actions.json",
            "an id from policies/forbidden_actions.json, or add the action there");
    }
  }

  void role(Parsed& f, const std::string& pointer) {
    if (!refs_.have_role_registry) return;
    const json* v = nullptr;
    try {
      v = &f.doc.at(json::json_pointer(pointer));
    } catch (...) {
      return;
    }
    if (v->is_string() && !refs_.roles.count(v->get<std::string>()))
      add(f, pointer, "xref:role",
          "role '" + v->get<std::string>() + "' is not in policies/role_registry.json",
          "one of the registered roles");
  }

  const plugin::PluginInfo* plugin_of_kind(Parsed& f, const std::string& pointer, const std::string& id,
                                           plugin::Kind kind) {
    if (!registry_) return nullptr;
    const plugin::PluginInfo* p = registry_->find(id);
    std::string k(plugin::kind_name(kind));
    if (!p) {
      std::string known;
      for (const auto& q : registry_->plugins())
        if (q.kind == kind) known += (known.empty() ? "" : ", ") + q.id;
      add(f, pointer, "xref:plugin", "no " + k + " plugin '" + id + "' is loaded",
          known.empty() ? "a loaded " + k + " plugin" : "one of: " + known);
      return nullptr;
    }
    if (p->kind != kind) {
      add(f, pointer, "xref:plugin",
          "plugin '" + id + "' is a " + std::string(plugin::kind_name(p->kind)) + ", not a " + k,
          "a " + k + " plugin");
      return nullptr;
    }
    return p;
  }

  void plugin_config(Parsed& f, const std::string& pointer, const plugin::PluginInfo& p, const json& config) {
    core::JsonSchema s = core::JsonSchema::compile(json::parse(p.config_schema));
    for (const auto& v : s.validate(config)) {
      std::string ptr = pointer + v.pointer;
      add(f, ptr, "plugin_config:" + v.rule, "config of plugin '" + p.id + "': " + v.message,
          v.expected.empty() ? "what the plugin's config schema allows (cp-host plugins inspect " + p.id + ")"
                             : v.expected);
    }
  }

  void contract(Parsed& f) {
    const json& d = f.doc;
    if (d.contains("runtime_options") && d["runtime_options"].is_object()) {
      const json& ro = d["runtime_options"];
      if (ro.contains("pack") && ro["pack"].is_string()) {
        std::string pack = ro["pack"].get<std::string>();
        if (!refs_.packs.count(pack)) {
          std::string known;
          for (const auto& [id, file] : refs_.packs) known += (known.empty() ? "" : ", ") + id;
          add(f, "/runtime_options/pack", "xref:pack", "pack '" + pack + "' does not exist",
              known.empty() ? "a pack_id defined under packs/" : "one of: " + known);
        }
      }
      if (ro.contains("runner") && ro["runner"].is_string())
        plugin_of_kind(f, "/runtime_options/runner", ro["runner"].get<std::string>(), plugin::Kind::runner);
    }
    if (d.contains("forbidden_actions")) forbidden_ids(f, d["forbidden_actions"], "/forbidden_actions");
    if (f.browser_tasks_valid) browser(f);
    role(f, "/owner_agent/role");
    role(f, "/assigned_agent/role");
    assigned_role_config(f);
  }

  // What the root's role config says of the contract's assigned role: the runner must be one the role may
  // use, and the role's prompt must be readable (the run compiles it in). An invalid role config refuses
  // the contract: which runners the role may use cannot be told.
  void assigned_role_config(Parsed& f) {
    const Parsed* rc = refs_.role_config;
    if (!rc) return;
    const json& d = f.doc;
    if (!d.contains("assigned_agent") || !d["assigned_agent"].is_object() ||
        !d["assigned_agent"].contains("role") || !d["assigned_agent"]["role"].is_string())
      return;
    const std::string role = d["assigned_agent"]["role"].get<std::string>();
    if (!rc->schema_ok) {
      std::string first =
          rc->diagnostics.empty() ? std::string("not readable") : describe(rc->diagnostics.front());
      add(f, "/assigned_agent/role", "xref:role_config",
          "the role config " + rc->display + " is invalid (" + first + "), so whether role '" + role +
              "' may use this contract's runner cannot be judged",
          "a role config that passes `cp-host validate " + rc->display + "`");
      return;
    }
    const json* ro =
        d.contains("runtime_options") && d["runtime_options"].is_object() ? &d["runtime_options"] : nullptr;
    if (ro && ro->contains("runner") && (*ro)["runner"].is_string()) {
      const std::string runner = (*ro)["runner"].get<std::string>();
      if (const auto& allowed = role_entry(*rc, role).allowed_runners;
          allowed && std::find(allowed->begin(), allowed->end(), runner) == allowed->end()) {
        std::string list;
        for (const auto& a : *allowed) list += (list.empty() ? "" : ", ") + a;
        add(f, "/runtime_options/runner", "xref:allowed_runners",
            "runner '" + runner + "' may not be used by role '" + role + "' (/assigned_agent/role): " +
                kRoleConfigPath + " /roles/" + role + "/allowed_runners is [" + list + "]",
            (list.empty() ? std::string("no runner (the role may use none)") : "one of: " + list) +
                "; or assign the task to a role that may use '" + runner + "', or add '" + runner +
                "' to /roles/" + role + "/allowed_runners of " + kRoleConfigPath);
      }
    }
    if (const auto& prompt_ref = role_entry(*rc, role).prompt_ref) {
      const std::string& ref = *prompt_ref;
      auto cached = prompt_problems_.find(ref);
      if (cached == prompt_problems_.end()) {
        std::string why;
        (void)read_role_prompt(role_config_root(rc->path, root_), ref, why);
        cached = prompt_problems_.emplace(ref, why).first;
      }
      if (!cached->second.empty())
        add(f, "/assigned_agent/role", "xref:prompt_ref",
            "the prompt of role '" + role + "' cannot be used: " + cached->second,
            "a UTF-8 file of at most 64 KiB at " + ref + ", or another prompt_ref in /roles/" + role +
                " of " + kRoleConfigPath);
    }
  }

  // What the role config says of a role, read from it once per role rather than once per contract.
  struct RoleEntry {
    std::optional<std::vector<std::string>> allowed_runners;
    std::optional<std::string> prompt_ref;
  };
  const RoleEntry& role_entry(const Parsed& rc, const std::string& role) {
    auto it = role_entries_.find(role);
    if (it != role_entries_.end()) return it->second;
    RoleEntry e;
    e.allowed_runners = allowed_runners_of(rc.doc, role);
    if (json entry = role_config_entry(rc.doc, role);
        entry.is_object() && entry.contains("prompt_ref") && entry["prompt_ref"].is_string())
      e.prompt_ref = entry["prompt_ref"].get<std::string>();
    return role_entries_.emplace(role, std::move(e)).first->second;
  }

  // The problems of `other` a check of `f` goes by: all of them when `other` is checked before `f` in the
  // report's order (or is `f`), else those its reading and schema check found. Files are checked out of
  // that order (references first, the rest in parallel); the verdict must not depend on which came first.
  static size_t problems_seen(const Parsed& other, const Parsed& f) {
    return &other == &f || (other.in_scope && other.index < f.index) ? other.diagnostics.size()
                                                                     : other.own_diagnostics;
  }

  // A contract's browser policy may only narrow the operator's, and without network only loopback origins
  // can be reached (contract/browser_policy.hpp).
  void browser(Parsed& f) {
    const json& d = f.doc;
    const Parsed* op = refs_.browser_policy;
    const size_t op_problems = op ? problems_seen(*op, f) : 0;
    if (op && (!op->parsed || op_problems > 0)) {
      std::string first = op_problems == 0 ? std::string("not readable") : op->diagnostics.front().message;
      add(f, kBrowserTasksPointer, "xref:browser_policy",
          "the operator's browser policy " + op->display + " is invalid (" + first +
              "), so what this contract's browser tasks may reach cannot be judged",
          "a policy that passes `cp-host validate " + op->display + "`");
      return;
    }
    const json& ro = d["runtime_options"];
    std::string pack_id = !ro.contains("pack")     ? std::string(kDefaultPack)
                          : ro["pack"].is_string() ? ro["pack"].get<std::string>()
                                                   : std::string();
    auto pack = refs_.pack_docs.find(pack_id);
    // An unknown pack is reported on its own; without it the network the run gets cannot be told.
    bool network = pack == refs_.pack_docs.end() || network_allowed(d, *pack->second);
    for (const auto& issue :
         check_browser_tasks(d["runtime_options"]["browser_tasks"], op ? &op->doc : nullptr, network))
      add(f, issue.pointer, "xref:browser_policy", issue.message, issue.expected);
  }

  void pack(Parsed& f) {
    const json& d = f.doc;
    if (d.contains("pack_id") && d["pack_id"].is_string()) {
      auto it = refs_.packs.find(d["pack_id"].get<std::string>());
      if (it != refs_.packs.end() && it->second != f.path.string())
        add(f, "/pack_id", "xref:duplicate",
            "pack_id '" + it->first + "' is also defined in " + display_path(it->second, fs::current_path()),
            "a pack_id unique across packs/");
    }
    if (d.contains("defaults") && d["defaults"].is_object() && d["defaults"].contains("forbidden_actions"))
      forbidden_ids(f, d["defaults"]["forbidden_actions"], "/defaults/forbidden_actions");
    if (!d.contains("gates") || !d["gates"].is_array()) return;
    for (size_t i = 0; i < d["gates"].size(); ++i) {
      const json& g = d["gates"][i];
      if (!g.is_object() || !g.contains("plugin") || !g["plugin"].is_string()) continue;
      std::string base = "/gates/" + std::to_string(i);
      const auto* p = plugin_of_kind(f, base + "/plugin", g["plugin"].get<std::string>(), plugin::Kind::gate);
      if (p && g.contains("config")) plugin_config(f, base + "/config", *p, g["config"]);
    }
  }

  void plugin_policy(Parsed& f) {
    if (!registry_ || !f.doc.contains("plugins") || !f.doc["plugins"].is_object()) return;
    for (auto it = f.doc["plugins"].begin(); it != f.doc["plugins"].end(); ++it) {
      std::string esc;
      for (char c : it.key())
        esc += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
      std::string base = "/plugins/" + esc;
      const plugin::PluginInfo* p = registry_->find(it.key());
      if (!p) {
        // A plugin switched off by the same policy is not loaded; that is not an error.
        if (it.value().is_object() && it.value().value("enabled", true) == false) continue;
        bool refused = false;
        for (const auto& r : registry_->refusals())
          if (r.id == it.key()) {
            add(f, base, "xref:plugin", "plugin '" + it.key() + "' was refused: " + r.reason,
                "a loadable plugin");
            refused = true;
          }
        if (!refused)
          add(f, base, "xref:plugin", "no plugin '" + it.key() + "' is loaded", "the id of a loaded plugin");
        continue;
      }
      if (it.value().is_object() && it.value().contains("config"))
        plugin_config(f, base + "/config", *p, it.value()["config"]);
    }
  }

  // A task pack: what its schema cannot say (task_packs.hpp: its name is its folder's, its templates name
  // declared fields, its patterns compile, its defaults fit), and the runners, packs and roles its steps name
  // where they are not templated.
  void task_pack(Parsed& f) {
    if (!f.schema_ok) return;  // its shape is wrong already; the schema's diagnostics say where
    const fs::path dir = f.path.parent_path();
    std::string folder = f.path.filename() == kTaskPackFile && dir.parent_path().filename() == "tasks"
                             ? dir.filename().string()
                             : std::string();
    for (const auto& p : check_task_pack(f.doc, folder)) add(f, p.pointer, p.rule, p.message, p.expected);
    const json& steps = f.doc["chain"]["steps"];
    auto literal = [](const json& s, const char* k) {
      return s.contains(k) && s[k].is_string() && s[k].get<std::string>().find("{{") == std::string::npos;
    };
    auto check_work = [&](const json& s, const std::string& at) {
      if (literal(s, "runner"))
        plugin_of_kind(f, at + "/runner", s["runner"].get<std::string>(), plugin::Kind::runner);
      if (literal(s, "pack") && !refs_.packs.count(s["pack"].get<std::string>())) {
        std::string known;
        for (const auto& [id, file] : refs_.packs) known += (known.empty() ? "" : ", ") + id;
        add(f, at + "/pack", "xref:pack", "pack '" + s["pack"].get<std::string>() + "' does not exist",
            known.empty() ? "a pack_id defined under packs/" : "one of: " + known);
      }
    };
    for (size_t i = 0; i < steps.size(); ++i) {
      const json& s = steps[i];
      if (!s.is_object()) continue;
      const std::string at = "/chain/steps/" + std::to_string(i);
      check_work(s, at);
      for (const char* k : {"role", "from_role", "to_role"})
        if (literal(s, k)) role(f, at + "/" + k);
      if (s.contains("reviewers") && s["reviewers"].is_array())
        for (size_t j = 0; j < s["reviewers"].size(); ++j)
          if (s["reviewers"][j].is_object())
            check_work(s["reviewers"][j], at + "/reviewers/" + std::to_string(j));
    }
  }

  // What a role's agent is told and runs on lives in the role config alone: the registry's old fields
  // for it are refused rather than read beside it (two places would disagree).
  void roles(Parsed& f) {
    if (!f.doc.contains("roles") || !f.doc["roles"].is_array()) return;
    for (size_t i = 0; i < f.doc["roles"].size(); ++i) {
      const json& r = f.doc["roles"][i];
      if (!r.is_object()) continue;
      std::string name =
          r.contains("role") && r["role"].is_string() ? r["role"].get<std::string>() : std::string("<ROLE>");
      for (const char* moved : {"allowed_runners", "prompt_ref"})
        if (r.contains(moved))
          add(f, "/roles/" + std::to_string(i) + "/" + moved, "xref:moved",
              std::string(moved) + " of a role is no longer read from the role registry; it moved to " +
                  kRoleConfigPath,
              "remove it here and set /roles/" + name + "/" + moved + " in " + kRoleConfigPath);
    }
  }

  // A role config: its roles registered, its prompts readable beneath its project root, its runners loaded,
  // and each role's runtime runner one it may use.
  void role_config(Parsed& f) {
    if (!f.doc.contains("roles") || !f.doc["roles"].is_object()) return;
    const fs::path base = role_config_root(f.path, root_);
    for (const auto& [role, entry] : f.doc["roles"].items()) {
      std::string at = "/roles/" + role;
      if (refs_.have_role_registry && !refs_.roles.count(role))
        add(f, at, "xref:role", "role '" + role + "' is not in policies/role_registry.json",
            "a registered role, or add '" + role + "' to policies/role_registry.json");
      if (!entry.is_object()) continue;
      if (entry.contains("prompt_ref") && entry["prompt_ref"].is_string()) {
        std::string why;
        if (!read_role_prompt(base, entry["prompt_ref"].get<std::string>(), why))
          add(f, at + "/prompt_ref", "xref:prompt_ref", why,
              "a UTF-8 file of at most 64 KiB under policies/ (no symbolic link on the way)");
      }
      std::optional<std::vector<std::string>> allowed;
      if (entry.contains("allowed_runners") && entry["allowed_runners"].is_array()) {
        allowed.emplace();
        for (size_t j = 0; j < entry["allowed_runners"].size(); ++j) {
          const json& r = entry["allowed_runners"][j];
          if (!r.is_string()) continue;
          allowed->push_back(r.get<std::string>());
          plugin_of_kind(f, at + "/allowed_runners/" + std::to_string(j), r.get<std::string>(),
                         plugin::Kind::runner);
        }
      }
      if (entry.contains("runtime") && entry["runtime"].is_object() && entry["runtime"].contains("runner") &&
          entry["runtime"]["runner"].is_string()) {
        std::string runner = entry["runtime"]["runner"].get<std::string>();
        plugin_of_kind(f, at + "/runtime/runner", runner, plugin::Kind::runner);
        if (allowed && std::find(allowed->begin(), allowed->end(), runner) == allowed->end())
          add(f, at + "/runtime/runner", "xref:allowed_runners",
              "the role's own runner '" + runner + "' is not among its allowed_runners",
              "a runner listed in " + at + "/allowed_runners, or add '" + runner + "' there");
      }
    }
  }

  const References& refs_;
  const plugin::Registry* registry_;
  fs::path root_;
  std::map<std::string, std::string> prompt_problems_;          // prompt_ref -> why unusable ("" = fine)
  std::map<std::string, RoleEntry, std::less<>> role_entries_;  // of the root's role config
};

void gather_references(const Parsed& f, References& refs) {
  if (!f.parsed || !f.doc.is_object()) return;
  const json& d = f.doc;
  if (f.schema == "pack" && d.contains("pack_id") && d["pack_id"].is_string()) {
    refs.packs.emplace(d["pack_id"].get<std::string>(), f.path.string());
    if (f.diagnostics.empty()) refs.pack_docs.emplace(d["pack_id"].get<std::string>(), &f.doc);
  }
  if (f.schema == "forbidden_actions" && d.contains("actions") && d["actions"].is_array()) {
    refs.have_forbidden_policy = true;
    for (const auto& a : d["actions"])
      if (a.is_object() && a.contains("id") && a["id"].is_string())
        refs.forbidden_actions.insert(a["id"].get<std::string>());
  }
  if (f.schema == "role_registry" && d.contains("roles") && d["roles"].is_array()) {
    refs.have_role_registry = true;
    for (const auto& r : d["roles"])
      if (r.is_object() && r.contains("role") && r["role"].is_string())
        refs.roles.insert(r["role"].get<std::string>());
  }
}

// Whether other files may refer to this one: a pack (by its pack_id), the forbidden actions, the roles.
bool gives_references(const Parsed& f) {
  return f.parsed && f.doc.is_object() &&
         (f.schema == "pack" || f.schema == "forbidden_actions" || f.schema == "role_registry");
}

// Read, parsed and checked against its schema; whatever that throws becomes the file's diagnostic (an
// exception escaping a worker would end the process with no report for any file).
void read_and_check(Parsed& f, const std::string& forced_schema) {
  try {
    parse_and_check(f, f.in_scope ? forced_schema : std::string());
  } catch (const std::exception& e) {
    f.parsed = false;
    f.diagnostics.push_back(
        {f.display, 1, "", "internal", std::string("cannot check the file: ") + e.what(), "", "", f.schema});
  }
  f.own_diagnostics = f.diagnostics.size();
}

// A contract is only as good as its pack. When the pack is not among the files checked (the usual case for
// `run`, `queue submit`, `intake preview` and the API, which validate one contract), it is checked as well
// (`invalid_packs`: pack_id -> index of such a pack that is invalid): a pack naming a gate that is not loaded
// would otherwise fail only after the whole run.
void check_contract_pack(Parsed& p, const std::map<std::string, size_t>& invalid_packs,
                         const std::vector<Parsed>& parsed) {
  if (invalid_packs.empty() || !p.parsed || p.schema != "task_contract" || !p.doc.is_object()) return;
  // The pack a run would get: runtime_options.pack, the default pack when runtime_options or its pack is
  // absent, none when runtime_options is not an object or its pack not a string.
  const json* ro = nullptr;
  const json* named = nullptr;  // runtime_options.pack
  if (auto it = p.doc.find("runtime_options"); it != p.doc.end()) {
    ro = &*it;
    if (auto pack = ro->is_object() ? ro->find("pack") : ro->end(); pack != ro->end()) named = &*pack;
  }
  std::string pack_id;
  if (!ro || (ro->is_object() && !named))
    pack_id = kDefaultPack;
  else if (named && named->is_string())
    pack_id = named->get<std::string>();
  else
    return;
  auto at = invalid_packs.find(pack_id);
  if (at == invalid_packs.end()) return;
  const Parsed& pack = parsed[at->second];
  if (pack.error) {
    p.error = pack.error;
    return;
  }
  const Diagnostic& first = pack.diagnostics.front();
  std::string where = first.file + ":" + std::to_string(first.line) + " " +
                      (first.pointer.empty() ? std::string("(document)") : first.pointer);
  std::string ptr = named ? "/runtime_options/pack" : "/runtime_options";
  p.diagnostics.push_back(
      {p.display, core::line_of_pointer(p.text, ptr), ptr, "xref:pack",
       "pack '" + at->first + "' (" + pack.display + ") is invalid, " +
           std::to_string(pack.diagnostics.size()) + " error(s); first at " + where + ": " + first.message,
       value_at(p.doc, ptr),
       first.expected.empty() ? "a pack that passes `cp-host validate " + pack.display + "`" : first.expected,
       p.schema});
  p.invalid_pack = at->second;
}

// A file in scope checked against the others; what that throws is raised when the report reaches the file,
// as if files were checked one by one in the report's order.
void cross_check(Parsed& f, CrossChecker& checker, const std::map<std::string, size_t>& invalid_packs,
                 const std::vector<Parsed>& parsed) {
  try {
    checker.check(f);
    check_contract_pack(f, invalid_packs, parsed);
  } catch (...) {
    f.error = std::current_exception();
  }
}

// Runs `work` on `jobs` threads, this one among them, and waits for them all.
template <class Work>
void on_threads(unsigned jobs, const Work& work) {
  std::vector<std::thread> pool;
  for (unsigned j = 1; j < jobs; ++j) pool.emplace_back([&work] { work(); });
  work();
  for (auto& t : pool) t.join();
}

// Whether a folder on `file`'s path is named `name`, read off the text of the path.
bool under_folder(const fs::path& file, std::string_view name) {
  std::string_view s = file.native();
  s = s.substr(0, std::min(s.rfind('/'), s.size()));
  for (size_t i = 0; i < s.size();) {
    size_t j = std::min(s.find('/', i), s.size());
    if (s.substr(i, j - i) == name) return true;
    i = j + 1;
  }
  return false;
}

}  // namespace

// Files are checked in two rounds. First those others may refer to — the packs and policies, in scope or read
// for references only — whose documents are kept; their references gathered, they are cross-checked. Then
// every other file, in parallel, each read, parsed, checked and cross-checked in one go and its document
// dropped at once, so memory stays flat however many contracts there are. A file of the second round that
// turns out to be a pack or a policy others refer to (found by its content, away from packs/ and policies/)
// sends every file through the first round instead. The report is then put together in the files' order.
ValidationReport validate(const ValidateOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  if (!options.forced_schema.empty()) {
    auto names = core::schema_names();
    if (std::find(names.begin(), names.end(), options.forced_schema) == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      throw UsageError("unknown schema '" + options.forced_schema + "'; known: " + all);
    }
  }

  std::vector<fs::path> files;
  if (options.paths.empty()) {
    for (const char* d : {"contracts", "packs", "policies"})
      if (fs::is_directory(options.root / d)) collect(options.root / d, files, false);
    if (files.empty())
      throw UsageError("nothing to validate: no contracts/, packs/ or policies/ under " +
                       options.root.string() + " (pass files or folders, or --root DIR)");
  } else {
    for (const auto& p : options.paths) collect(p, files, true);
  }
  // Sorted as paths are; thousands of paths compare much faster as text.
  if (std::all_of(files.begin(), files.end(), plain_path)) {
    std::sort(files.begin(), files.end(), path_less);
    files.erase(std::unique(files.begin(), files.end(),
                            [](const fs::path& a, const fs::path& b) { return a.native() == b.native(); }),
                files.end());
  } else {
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
  }

  // Files only read to resolve references: packs and policies of the root that are not being validated. A
  // file's canonical form keeps its name, so only files named like one of those are compared.
  std::vector<fs::path> root_files;
  for (const char* d : {"packs", "policies"})
    if (fs::path dir = options.root / d; fs::is_directory(dir)) collect(dir, root_files, false);
  std::set<std::string> root_names;
  for (const auto& f : root_files) root_names.insert(f.filename().string());
  CanonicalPaths canonical;
  std::set<std::string> in_scope;
  for (const auto& f : files)
    if (root_names.count(f.filename().string())) in_scope.insert(canonical.of(f));
  std::vector<fs::path> extra;
  for (auto& f : root_files)
    if (!in_scope.count(canonical.of(f))) extra.push_back(f);

  DisplayPaths display(fs::current_path());
  std::vector<Parsed> parsed(files.size() + extra.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    Parsed& p = parsed[i];
    p.index = i;
    p.in_scope = i < files.size();
    p.path = p.in_scope ? std::move(files[i]) : std::move(extra[i - files.size()]);
    p.display = display.of(p.path);
  }

  // The operator's browser policy is the root's file, the one the compiler reads; nothing else counts. So is
  // the role config: the root's file, the one runs are compiled with.
  struct RootFile {
    std::string canonical;  // empty: the root has none
    std::string name;
    bool is(CanonicalPaths& c, const Parsed& p) const {
      return !canonical.empty() && p.path.filename() == name && c.of(p.path) == canonical;
    }
  };
  RootFile browser_policy_file, role_config_path;
  if (fs::path bp = options.root / "policies" / "browser_policy.json"; fs::exists(bp))
    browser_policy_file = {canonical.of(bp), bp.filename().string()};
  if (fs::path rc = role_config_file(options.root); fs::exists(rc))
    role_config_path = {canonical.of(rc), rc.filename().string()};

  std::optional<plugin::Registry> registry;
  if (options.check_plugins && !options.registry) {
    if (!options.plugins_dir || !plugin::any_folder_exists(*options.plugins_dir))
      throw UsageError("plugin directory " +
                       (options.plugins_dir ? options.plugins_dir->string() : std::string("?")) +
                       " not found: pass --plugins DIR to check plugin references, or --no-plugin-checks");
    registry.emplace();
    plugin::PluginPolicy policy;
    fs::path policy_file = options.root / "policies" / "plugins.json";
    try {
      if (fs::exists(policy_file)) policy = plugin::PluginPolicy::load(policy_file);
    } catch (const std::exception&) {
      // The policy file's own diagnostics come from its schema check; load plugins with defaults.
    }
    plugin::load_search_path(*registry, *options.plugins_dir, policy);
  }
  const plugin::Registry* plugins = !options.check_plugins ? nullptr
                                    : options.registry     ? options.registry
                                    : registry             ? &*registry
                                                           : nullptr;

  // The first round: files read for references, files in packs/ or policies/, the root's browser policy and
  // role config, and every file when a schema that gives references is forced on them.
  const bool forced_references = options.forced_schema == "pack" ||
                                 options.forced_schema == "forbidden_actions" ||
                                 options.forced_schema == "role_registry";
  std::vector<size_t> first, rest;
  for (const auto& p : parsed) {
    bool early = !p.in_scope || forced_references || under_folder(p.path, "packs") ||
                 under_folder(p.path, "policies") || browser_policy_file.is(canonical, p) ||
                 role_config_path.is(canonical, p);
    (early ? first : rest).push_back(p.index);
  }

  const unsigned jobs = options.jobs ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  // Pulls indices of `which` until none is left or `stop` is set; `check` is called with each file.
  auto run = [&](const std::vector<size_t>& which, const auto& check, const std::atomic<bool>* stop) {
    std::atomic<size_t> next{0};
    on_threads(std::min<size_t>(jobs, std::max<size_t>(1, which.size())), [&] {
      auto each = check();  // this thread's own state
      for (size_t k; (!stop || !stop->load()) && (k = next.fetch_add(1)) < which.size();)
        each(parsed[which[k]]);
    });
  };

  References refs;
  std::map<std::string, size_t> invalid_packs;  // pack_id -> index of a pack read for references, invalid
  for (;;) {
    run(
        first, [&] { return [&](Parsed& f) { read_and_check(f, options.forced_schema); }; }, nullptr);
    refs = References{};
    for (size_t i : first) {
      const Parsed& p = parsed[i];
      gather_references(p, refs);
      if (browser_policy_file.is(canonical, p)) refs.browser_policy = &p;
      if (role_config_path.is(canonical, p)) refs.role_config = &p;
    }
    CrossChecker checker(refs, plugins, options.root);
    // The packs contracts may name that are not checked themselves: checked ahead, once, in full.
    std::map<std::string, size_t> out_of_scope;  // path -> index into parsed
    for (size_t i : first)
      if (!parsed[i].in_scope) out_of_scope.emplace(parsed[i].path.string(), i);
    invalid_packs.clear();
    std::set<size_t> packs_checked;
    for (const auto& [id, file] : refs.packs)
      if (auto at = out_of_scope.find(file); at != out_of_scope.end()) {
        Parsed& pack = parsed[at->second];
        if (packs_checked.insert(at->second).second) {
          try {
            checker.check(pack);
          } catch (...) {
            pack.error = std::current_exception();
          }
        }
        if (pack.error || !pack.diagnostics.empty()) invalid_packs.emplace(id, at->second);
      }
    for (size_t i : first)
      if (parsed[i].in_scope) cross_check(parsed[i], checker, invalid_packs, parsed);

    std::atomic<bool> late{false};
    run(
        rest,
        [&] {
          // Each thread reads every file into the same buffer: no allocation per file for its text.
          return [&, own = CrossChecker(refs, plugins, options.root),
                  buffer = std::string()](Parsed& f) mutable {
            f.text.swap(buffer);
            read_and_check(f, options.forced_schema);
            if (gives_references(f)) {
              late = true;
              return;
            }
            cross_check(f, own, invalid_packs, parsed);
            buffer.swap(f.text);
            f.doc = json();
          };
        },
        &late);
    if (!late) break;
    // A pack or a policy others refer to was found in the second round: every file goes through the first.
    for (auto& p : parsed) {
      Parsed fresh;
      fresh.path = p.path;
      fresh.display = p.display;
      fresh.index = p.index;
      fresh.in_scope = p.in_scope;
      p = std::move(fresh);
    }
    first.clear();
    rest.clear();
    for (const auto& p : parsed) first.push_back(p.index);
  }

  std::set<size_t> packs_reported;
  ValidationReport report;
  for (auto& p : parsed) {
    if (!p.in_scope) continue;
    if (p.error) std::rethrow_exception(p.error);
    if (p.invalid_pack && packs_reported.insert(*p.invalid_pack).second) {
      const Parsed& pack = parsed[*p.invalid_pack];
      report.diagnostics.insert(report.diagnostics.end(), pack.diagnostics.begin(), pack.diagnostics.end());
    }
    // A chain's own problems are its file's; those of the contracts it names are theirs (reported once,
    // below, when those files are checked too).
    if (options.check_chain && options.forced_schema.empty() && p.schema_ok && p.schema == "task_chain") {
      const std::string as_given = p.path.string();
      for (auto& d : options.check_chain(p.path, plugins)) {
        if (d.file == as_given) d.file = p.display;
        (d.file == p.display ? p.diagnostics : report.diagnostics).push_back(std::move(d));
      }
    }
    ++report.files_checked;
    if (!p.diagnostics.empty()) ++report.files_invalid;
    for (auto& d : p.diagnostics) report.diagnostics.push_back(std::move(d));
  }
  std::stable_sort(report.diagnostics.begin(), report.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return a.file != b.file ? a.file < b.file : a.line < b.line;
                   });
  // A chain's check also checks its steps' contracts, which may be among the files checked: each problem
  // is said once.
  std::set<std::tuple<std::string, int, std::string, std::string, std::string>> said;
  std::erase_if(report.diagnostics, [&](const Diagnostic& d) {
    return !said.emplace(d.file, d.line, d.pointer, d.rule, d.message).second;
  });
  report.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return report;
}

std::string diagnostic_line(const Diagnostic& d) {
  return d.file + ":" + std::to_string(d.line) + ": error [" + d.rule + "] " + describe(d);
}

nlohmann::json diagnostic_json(const Diagnostic& d) {
  return {{"file", d.file},         {"line", d.line},       {"pointer", d.pointer},
          {"rule", d.rule},         {"message", d.message}, {"value", d.value},
          {"expected", d.expected}, {"schema", d.schema},   {"text", describe(d)}};
}

nlohmann::json diagnostics_json(const std::vector<Diagnostic>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : list) out.push_back(diagnostic_json(d));
  return out;
}

std::string describe(const Diagnostic& d) {
  std::string s = (d.pointer.empty() ? std::string("(document)") : d.pointer) + ": " + d.message;
  if (!d.value.empty()) s += " (value: " + d.value + ")";
  if (!d.expected.empty()) s += "; expected: " + d.expected;
  return s;
}

}  // namespace cp::contract
