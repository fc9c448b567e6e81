#include "control/role_config_service.hpp"
#include "core/ascii.hpp"

#include "contract/role_config.hpp"
#include "control/run_origin.hpp"
#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "core/json_schema.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "log/log_lanes.hpp"
#include "plugin/registry.hpp"
#include "store/atomic_file.hpp"
#include "store/host_events.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <regex>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using RoleConfigOutcome = RoleConfigResult::Outcome;

namespace {

// A config file is a few KiB; one past this is refused unread.
constexpr uint64_t kMaxConfigBytes = 1u << 20;

struct ConfigFile {
  bool exists = false;
  bool readable = false;  // exists, a regular file within the limit, a JSON object
  std::string bytes;
  std::string sha256;  // of bytes, "" when it does not exist
  json doc;            // the object when readable
  std::string problem;
};

ConfigFile read_config(const fs::path& root) {
  ConfigFile c;
  fs::path file = contract::role_config_file(root);
  std::error_code ec;
  auto st = fs::symlink_status(file, ec);
  if (ec || !fs::exists(st)) return c;
  c.exists = true;
  store::FileRead r = store::read_regular_file(file, kMaxConfigBytes);
  if (r.status == store::FileRead::Status::too_large) {
    c.problem = "it is larger than 1 MiB";
    return c;
  }
  if (r.status != store::FileRead::Status::ok) {
    c.problem = "it is not a regular file (a symbolic link, a folder, a FIFO) or cannot be read";
    return c;
  }
  c.bytes = std::move(r.bytes);
  c.sha256 = core::sha256_hex(c.bytes);
  if (!core::json_depth_ok(c.bytes)) {
    c.problem = "it is nested too deeply";
    return c;
  }
  c.doc = json::parse(c.bytes, nullptr, false);
  if (c.doc.is_discarded() || !c.doc.is_object()) {
    c.doc = nullptr;
    c.problem = "it is not a JSON object";
    return c;
  }
  c.readable = true;
  return c;
}

json registry_roles(const fs::path& root) {
  json reg = core::read_json_file(root / "policies" / "role_registry.json");
  if (!reg.is_object() || !reg.contains("roles") || !reg["roles"].is_array()) return json::array();
  return reg["roles"];
}

json registry_entry(const fs::path& root, const std::string& role) {
  for (const auto& r : registry_roles(root))
    if (r.is_object() && r.value("role", "") == role) return r;
  return nullptr;
}

json file_state(const ConfigFile& c) {
  json s{{"path", contract::kRoleConfigPath}, {"exists", c.exists}};
  if (!c.exists) return s;
  s["sha256"] = c.sha256;
  json problems = json::array();
  if (!c.readable) {
    problems.push_back({{"pointer", ""}, {"message", c.problem}});
  } else {
    for (const auto& v : core::schema("role_config").validate(c.doc)) {
      if (problems.size() >= 20) break;
      problems.push_back({{"pointer", v.pointer}, {"message", v.message}});
    }
  }
  s["valid"] = problems.empty();
  s["problems"] = problems;
  return s;
}

json prompt_state(const fs::path& root, const json& entry, bool with_text) {
  if (!entry.is_object() || !entry.contains("prompt_ref") || !entry["prompt_ref"].is_string()) return nullptr;
  std::string ref = entry["prompt_ref"].get<std::string>();
  std::string why;
  auto p = contract::read_role_prompt(root, ref, why);
  if (!p) return {{"prompt_ref", ref}, {"error", why}};
  json out{{"prompt_ref", ref}, {"sha256", p->sha256}, {"bytes", p->text.size()}};
  if (with_text) out["text"] = p->text;
  return out;
}

json view_of(const fs::path& root, const std::string& role, const json& reg, const ConfigFile& cf,
             bool with_text) {
  json entry = cf.readable ? contract::role_config_entry(cf.doc, role) : json();
  json out{{"role", role}, {"registered", reg.is_object()}};
  if (reg.is_object()) {
    out["description"] = reg.value("description", "");
    out["can_approve"] = reg.value("can_approve", false);
  }
  out["config"] = entry;
  auto allowed = cf.readable ? contract::allowed_runners_of(cf.doc, role) : std::nullopt;
  out["allowed_runners"] = allowed ? json(*allowed) : json(nullptr);
  out["runtime"] = entry.is_object() && entry.contains("runtime") ? entry["runtime"] : json(nullptr);
  out["prompt"] = prompt_state(root, entry, with_text);
  return out;
}

bool prompts_dir_ref(const std::string& ref) {
  static const std::regex re("^policies/roles/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}\\.md$");
  return std::regex_match(ref, re);
}

// Everything a preview finds, and what an apply then writes.
struct Plan {
  RoleConfigResult result;
  json new_doc;
  bool write_prompt = false;
  std::string prompt_ref;
};

void problem(Plan& p, std::string pointer, std::string rule, std::string message, std::string expected) {
  p.result.problems.push_back({std::move(pointer), std::move(rule), std::move(message), std::move(expected)});
}

Plan plan_change(const fs::path& root, const plugin::Registry* registry, const std::string& role,
                 const RoleChange& change) {
  Plan p;
  RoleConfigResult& r = p.result;
  if (!valid_role_name(role)) {
    r.outcome = RoleConfigOutcome::invalid;
    r.message = "'" + role + "' is not a role name ([A-Z][A-Z_]*, at most 64 characters)";
    return p;
  }
  if (!registry_entry(root, role).is_object()) {
    r.outcome = RoleConfigOutcome::not_found;
    r.message = "role '" + role + "' is not in policies/role_registry.json; register it there first";
    return p;
  }
  ConfigFile cf = read_config(root);
  if (cf.exists && !cf.readable) {
    r.outcome = RoleConfigOutcome::conflict;
    r.message = std::string(contract::kRoleConfigPath) + " cannot be changed: " + cf.problem +
                "; fix the file by hand (cp-host validate says where)";
    return p;
  }
  r.config_sha256_before = cf.sha256;
  if (!change.base_sha256.empty() && change.base_sha256 != cf.sha256) {
    r.outcome = RoleConfigOutcome::conflict;
    r.message = std::string(contract::kRoleConfigPath) + " changed since it was read: its sha256 is " +
                (cf.exists ? cf.sha256 : std::string("(no file)")) + ", not the base_sha256 " +
                change.base_sha256 + "; read it again (GET the role's config) and redo the change";
    return p;
  }
  r.current = cf.readable ? contract::role_config_entry(cf.doc, role) : json();
  r.proposed = change.config;
  if (change.prompt && r.proposed.is_object() && !r.proposed.contains("prompt_ref"))
    r.proposed["prompt_ref"] = std::string(contract::kRolePromptsDir) + core::ascii_lower(role) + ".md";

  p.new_doc =
      cf.readable ? cf.doc : json{{"policy", "role_config"}, {"version", 1}, {"roles", json::object()}};
  if (!p.new_doc.contains("roles") || !p.new_doc["roles"].is_object()) p.new_doc["roles"] = json::object();
  p.new_doc["roles"][role] = r.proposed;

  // The schema first, over the whole file as it would be: this role's problems point into the request.
  const std::string mine = "/roles/" + role;
  for (const auto& v : core::schema("role_config").validate(p.new_doc)) {
    bool ours =
        v.pointer.rfind(mine, 0) == 0 && (v.pointer.size() == mine.size() || v.pointer[mine.size()] == '/');
    if (ours)
      problem(p, "/config" + v.pointer.substr(mine.size()), v.rule, v.message, v.expected);
    else
      problem(p, v.pointer, v.rule,
              "the rest of " + std::string(contract::kRoleConfigPath) + " is invalid at " +
                  (v.pointer.empty() ? std::string("(document)") : v.pointer) + ": " + v.message,
              "fix the file by hand first (cp-host validate " + std::string(contract::kRoleConfigPath) + ")");
  }
  if (!r.problems.empty()) {
    r.outcome = RoleConfigOutcome::invalid;
    r.message = "the role's config is invalid: " + std::to_string(r.problems.size()) + " problem(s)";
    return p;
  }

  // The prompt: a text given is written under policies/roles/ (a file of this role's own); else the file
  // the entry names must already be readable.
  const json& e = r.proposed;
  std::string ref = e.contains("prompt_ref") ? e["prompt_ref"].get<std::string>() : "";
  std::string current_ref = r.current.is_object() ? r.current.value("prompt_ref", "") : "";
  json prompt{{"prompt_ref", ref.empty() ? json(nullptr) : json(ref)}, {"written", false}};
  std::string current_sha, proposed_sha;
  if (!current_ref.empty()) {
    std::string why;
    if (auto cur = contract::read_role_prompt(root, current_ref, why)) current_sha = cur->sha256;
  }
  if (change.prompt) {
    const std::string& text = *change.prompt;
    if (text.size() > contract::kMaxRolePromptBytes) {
      r.outcome = RoleConfigOutcome::too_large;
      r.message = "the prompt is " + std::to_string(text.size()) + " bytes; at most " +
                  std::to_string(contract::kMaxRolePromptBytes) + " are taken";
      r.problems.push_back(
          {"/prompt", "maxLength", r.message,
           "a prompt of at most " + std::to_string(contract::kMaxRolePromptBytes) + " bytes"});
      return p;
    }
    if (std::string why = contract::prompt_text_problem(text); !why.empty())
      problem(p, "/prompt", "xref:prompt", "the prompt is refused: " + why, "UTF-8 text without NUL bytes");
    if (!prompts_dir_ref(ref))
      problem(
          p, "/config/prompt_ref", "xref:prompt_ref",
          "a prompt sent with the change is written to prompt_ref, which must then be a .md file directly "
          "under " +
              std::string(contract::kRolePromptsDir) + " (it is '" + ref + "')",
          std::string(contract::kRolePromptsDir) + core::ascii_lower(role) + ".md");
    for (const auto& [other, oe] : p.new_doc["roles"].items())
      if (other != role && oe.is_object() && oe.value("prompt_ref", "") == ref)
        problem(p, "/config/prompt_ref", "xref:prompt_ref",
                "role '" + other + "' uses " + ref + " too; writing it would change that role's prompt",
                "a file of this role's own, e.g. " + std::string(contract::kRolePromptsDir) +
                    core::ascii_lower(role) + ".md");
    proposed_sha = core::sha256_hex(text);
    std::string why, on_disk;
    if (auto cur = contract::read_role_prompt(root, ref, why)) on_disk = cur->sha256;
    p.write_prompt = on_disk != proposed_sha;
    p.prompt_ref = ref;
    prompt["bytes"] = text.size();
  } else if (!ref.empty()) {
    std::string why;
    if (auto cur = contract::read_role_prompt(root, ref, why)) {
      proposed_sha = cur->sha256;
      prompt["bytes"] = cur->text.size();
    } else {
      problem(p, "/config/prompt_ref", "xref:prompt_ref", why,
              "an existing UTF-8 file under policies/ of at most 64 KiB, or send its text as \"prompt\"");
    }
  }
  prompt["current_prompt_ref"] = current_ref.empty() ? json(nullptr) : json(current_ref);
  prompt["current_sha256"] = current_sha.empty() ? json(nullptr) : json(current_sha);
  prompt["proposed_sha256"] = proposed_sha.empty() ? json(nullptr) : json(proposed_sha);
  prompt["changed"] = current_sha != proposed_sha || current_ref != ref;
  r.prompt = prompt;

  // The runners must be loaded runner plugins, and the role's own runner one it may use.
  std::optional<std::vector<std::string>> allowed;
  if (e.contains("allowed_runners")) {
    allowed.emplace();
    for (size_t j = 0; j < e["allowed_runners"].size(); ++j) {
      std::string id = e["allowed_runners"][j].get<std::string>();
      allowed->push_back(id);
      const plugin::PluginInfo* pi = registry ? registry->find(id) : nullptr;
      if (registry && (!pi || pi->kind != plugin::Kind::runner))
        problem(p, "/config/allowed_runners/" + std::to_string(j), "xref:plugin",
                "no runner plugin '" + id + "' is loaded", "the id of a loaded runner (GET /api/agents)");
    }
  }
  if (e.contains("runtime")) {
    std::string runner = e["runtime"]["runner"].get<std::string>();
    const plugin::PluginInfo* pi = registry ? registry->find(runner) : nullptr;
    if (registry && (!pi || pi->kind != plugin::Kind::runner))
      problem(p, "/config/runtime/runner", "xref:plugin", "no runner plugin '" + runner + "' is loaded",
              "the id of a loaded runner (GET /api/agents)");
    if (allowed && std::find(allowed->begin(), allowed->end(), runner) == allowed->end())
      problem(p, "/config/runtime/runner", "xref:allowed_runners",
              "the role's own runner '" + runner + "' is not among its allowed_runners",
              "a runner listed in /config/allowed_runners, or add '" + runner + "' there");
  }
  r.changes = json::diff(r.current.is_object() ? r.current : json::object(), r.proposed);
  if (!r.problems.empty()) {
    r.outcome = RoleConfigOutcome::invalid;
    r.message = "the role's config is invalid: " + std::to_string(r.problems.size()) + " problem(s)";
    return p;
  }
  r.outcome = RoleConfigOutcome::previewed;
  r.message = r.changes.empty() && !prompt["changed"].get<bool>()
                  ? "no change: the role's config and prompt are already these"
                  : "valid; applying it changes " + std::to_string(r.changes.size()) + " field(s)" +
                        (prompt["changed"].get<bool>() ? " and the prompt" : "") + " for the next runs";
  return p;
}

// An exclusive lock on the role config's lock file for the life of the object: serve's threads and any
// CLI apply on the same root take turns.
class ConfigLock {
 public:
  explicit ConfigLock(const fs::path& root) {
    static std::mutex in_process;
    guard_ = std::unique_lock<std::mutex>(in_process);
    fs::path lock = core::role_config_lock(root);
    fs::create_directories(lock.parent_path());
    fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + lock.string() + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX) != 0) {
      int e = errno;
      ::close(fd_);
      throw std::runtime_error("cannot lock " + lock.string() + ": " + std::strerror(e));
    }
  }
  ~ConfigLock() { ::close(fd_); }
  ConfigLock(const ConfigLock&) = delete;
  ConfigLock& operator=(const ConfigLock&) = delete;

 private:
  std::unique_lock<std::mutex> guard_;
  int fd_ = -1;
};

// A real folder (not a link) at `dir`, made when missing.
bool real_folder(const fs::path& dir, bool make) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (!make || errno != ENOENT || ::mkdir(dir.c_str(), 0755) != 0) return false;
    if (::lstat(dir.c_str(), &st) != 0) return false;
  }
  return S_ISDIR(st.st_mode);
}

// What a file held before it was replaced, to put back when the audit event cannot be written.
struct Previous {
  fs::path file;
  bool existed = false;
  std::string bytes;
  void restore() const {
    try {
      if (existed)
        store::write_atomic(file, bytes);
      else
        fs::remove(file);
    } catch (const std::exception& e) {
      log::error("role config: cannot restore " + file.string() + ": " + e.what());
    }
  }
};

std::optional<Previous> previous_of(const fs::path& file, std::string& why) {
  Previous prev;
  prev.file = file;
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) return prev;
  if (!S_ISREG(st.st_mode)) {
    why = file.string() + " is not a regular file (a symbolic link or a folder); it is left alone";
    return std::nullopt;
  }
  store::FileRead r = store::read_regular_file(file, kMaxConfigBytes);
  if (r.status != store::FileRead::Status::ok) {
    why = file.string() + " cannot be read to keep a copy";
    return std::nullopt;
  }
  prev.existed = true;
  prev.bytes = std::move(r.bytes);
  return prev;
}

}  // namespace

bool valid_role_name(const std::string& role) {
  static const std::regex re("^[A-Z][A-Z_]{0,63}$");
  return std::regex_match(role, re);
}

std::optional<json> role_view(const fs::path& root, const std::string& role, bool with_text) {
  if (!valid_role_name(role)) return std::nullopt;
  ConfigFile cf = read_config(root);
  json reg = registry_entry(root, role);
  json entry = cf.readable ? contract::role_config_entry(cf.doc, role) : json();
  if (!reg.is_object() && !entry.is_object()) return std::nullopt;
  json out = view_of(root, role, reg, cf, with_text);
  out["role_config"] = file_state(cf);
  return out;
}

json roles_overview(const fs::path& root) {
  ConfigFile cf = read_config(root);
  json roles = json::array();
  std::vector<std::string> seen;
  for (const auto& r : registry_roles(root)) {
    if (!r.is_object() || !r.contains("role") || !r["role"].is_string()) continue;
    std::string name = r["role"].get<std::string>();
    seen.push_back(name);
    roles.push_back(view_of(root, name, r, cf, false));
  }
  if (cf.readable && cf.doc.contains("roles") && cf.doc["roles"].is_object())
    for (const auto& [name, entry] : cf.doc["roles"].items())
      if (std::find(seen.begin(), seen.end(), name) == seen.end())
        roles.push_back(view_of(root, name, nullptr, cf, false));
  return {{"roles", roles}, {"role_config", file_state(cf)}};
}

std::optional<RoleChange> parse_role_change(const json& body, std::vector<RoleConfigProblem>& problems) {
  if (!body.is_object()) {
    problems.push_back({"", "type", "the body must be a JSON object",
                        "{\"config\": {...}, \"prompt\"?, \"base_sha256\"?, \"reason\"?}"});
    return std::nullopt;
  }
  RoleChange c;
  for (const auto& [k, v] : body.items()) {
    if (k == "config") {
      if (v.is_object())
        c.config = v;
      else
        problems.push_back({"/config", "type", "config must be an object: the role's whole new entry",
                            "{\"prompt_ref\"?, \"runtime\"?, \"allowed_runners\"?}"});
    } else if (k == "prompt") {
      if (v.is_string())
        c.prompt = v.get<std::string>();
      else
        problems.push_back({"/prompt", "type", "prompt must be a string (the prompt's text)", "a string"});
    } else if (k == "base_sha256") {
      static const std::regex hex("^[0-9a-f]{64}$");
      if (v.is_string() && std::regex_match(v.get<std::string>(), hex))
        c.base_sha256 = v.get<std::string>();
      else
        problems.push_back({"/base_sha256", "pattern", "base_sha256 must be 64 lower-case hex digits",
                            "the role_config.sha256 a GET of the role's config returned"});
    } else if (k == "reason") {
      if (v.is_string() && v.get_ref<const std::string&>().size() <= 2000)
        c.reason = v.get<std::string>();
      else
        problems.push_back(
            {"/reason", "type", "reason must be a string of at most 2000 characters", "a string"});
    } else {
      problems.push_back({"/" + k, "additionalProperties", "unknown field '" + k + "'",
                          "config, prompt, base_sha256, reason"});
    }
  }
  if (!body.contains("config"))
    problems.push_back({"/config", "required", "config is required: the role's whole new entry",
                        "{\"prompt_ref\"?, \"runtime\"?, \"allowed_runners\"?}"});
  if (!problems.empty()) return std::nullopt;
  return c;
}

RoleConfigResult preview_role_config(const fs::path& root, const plugin::Registry* registry,
                                     const std::string& role, const RoleChange& change) {
  return plan_change(root, registry, role, change).result;
}

RoleConfigResult apply_role_config(const fs::path& root, const plugin::Registry* registry,
                                   const std::string& role, const RoleChange& change, const Actor& actor) {
  RoleConfigResult out;
  if (std::string why = refusal_from_run(actor); !why.empty()) {
    out.outcome = RoleConfigOutcome::from_run;
    out.message = why;
    return out;
  }
  try {
    ConfigLock lock(root);
    Plan p = plan_change(root, registry, role, change);
    RoleConfigResult& r = p.result;
    if (r.outcome != RoleConfigOutcome::previewed) return r;
    if (r.changes.empty() && !r.prompt.value("changed", false) && !p.write_prompt) {
      r.outcome = RoleConfigOutcome::unchanged;
      r.config_sha256_after = r.config_sha256_before;
      return r;
    }
    const fs::path config_file = contract::role_config_file(root);
    std::string why;
    auto prev_config = previous_of(config_file, why);
    std::optional<Previous> prev_prompt;
    if (prev_config && p.write_prompt) {
      if (!real_folder(root / "policies", false) || !real_folder(root / "policies" / "roles", true))
        why = "policies/ and policies/roles/ must be folders (not symbolic links)";
      else
        prev_prompt = previous_of(root / p.prompt_ref, why);
    }
    if (!prev_config || (p.write_prompt && !prev_prompt)) {
      r.outcome = RoleConfigOutcome::conflict;
      r.message = "cannot apply safely: " + why;
      return r;
    }
    if (p.write_prompt) store::write_atomic(root / p.prompt_ref, *change.prompt);
    std::string text = store::json_file_text(p.new_doc);
    try {
      store::write_atomic(config_file, text);
    } catch (...) {
      if (prev_prompt) prev_prompt->restore();
      throw;
    }
    r.config_sha256_after = core::sha256_hex(text);
    r.prompt["written"] = p.write_prompt;
    json payload{{"role", role},
                 {"by", actor.by},
                 {"by_kind", actor.by_kind},
                 {"config_sha256_before",
                  r.config_sha256_before.empty() ? json(nullptr) : json(r.config_sha256_before)},
                 {"config_sha256_after", r.config_sha256_after},
                 {"prompt_written", p.write_prompt},
                 {"changes", r.changes}};
    if (!change.reason.empty()) payload["reason"] = change.reason;
    if (r.prompt["prompt_ref"].is_string()) payload["prompt_ref"] = r.prompt["prompt_ref"];
    if (r.prompt["proposed_sha256"].is_string()) payload["prompt_sha256"] = r.prompt["proposed_sha256"];
    try {
      r.event = store::record_host_event(root, "ROLE_CONFIG_APPLIED", payload);
    } catch (const std::exception& e) {
      // A change nobody can audit is not kept.
      prev_config->restore();
      if (prev_prompt) prev_prompt->restore();
      r.outcome = RoleConfigOutcome::error;
      r.message = std::string("the change was undone: its audit event cannot be recorded: ") + e.what();
      return r;
    }
    log::Event ev;
    ev.lane = log::Lane::governance;
    ev.correlation_kind = "host";
    ev.correlation_id = r.event.value("hash", "");
    ev.component = "role_config";
    ev.message = "role config of " + role + " applied by " + actor.by + " (" + actor.by_kind + ")" +
                 (change.reason.empty() ? "" : ": " + change.reason);
    ev.fields = {{"role", role},
                 {"by", actor.by},
                 {"by_kind", actor.by_kind},
                 {"config_sha256_after", r.config_sha256_after},
                 {"prompt_written", p.write_prompt},
                 {"event_seq", r.event.value("seq", 0)}};
    log::emit(ev);
    r.outcome = RoleConfigOutcome::applied;
    r.message = "applied: runs compiled from now on get the new config of " + role +
                "; runs already started keep the one they were compiled with";
    return r;
  } catch (const std::exception& e) {
    out.outcome = RoleConfigOutcome::error;
    out.message = std::string("cannot apply the role config: ") + e.what();
    return out;
  }
}

const char* outcome_name(RoleConfigResult::Outcome o) {
  switch (o) {
    case RoleConfigOutcome::previewed:
      return "previewed";
    case RoleConfigOutcome::applied:
      return "applied";
    case RoleConfigOutcome::unchanged:
      return "unchanged";
    case RoleConfigOutcome::invalid:
      return "invalid";
    case RoleConfigOutcome::not_found:
      return "not_found";
    case RoleConfigOutcome::conflict:
      return "conflict";
    case RoleConfigOutcome::too_large:
      return "too_large";
    case RoleConfigOutcome::from_run:
      return "from_run";
    case RoleConfigOutcome::error:
      break;
  }
  return "error";
}

json to_json(const RoleConfigResult& r) {
  json problems = json::array();
  for (const auto& p : r.problems)
    problems.push_back(
        {{"pointer", p.pointer}, {"rule", p.rule}, {"message", p.message}, {"expected", p.expected}});
  json out{{"outcome", outcome_name(r.outcome)},
           {"message", r.message},
           {"problems", problems},
           {"current", r.current},
           {"proposed", r.proposed},
           {"changes", r.changes.is_null() ? json::array() : r.changes},
           {"prompt", r.prompt}};
  out["config_sha256_before"] = r.config_sha256_before.empty() ? json(nullptr) : json(r.config_sha256_before);
  if (!r.config_sha256_after.empty()) out["config_sha256_after"] = r.config_sha256_after;
  if (r.event.is_object())
    out["event"] = {{"seq", r.event.value("seq", 0)},
                    {"type", r.event.value("type", "")},
                    {"hash", r.event.value("hash", "")}};
  return out;
}

}  // namespace cp::control
