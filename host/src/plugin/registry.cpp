#include "plugin/registry.hpp"

#include "core/json_depth.hpp"
#include "plugin/installed_folder.hpp"

#include "core/json_schema.hpp"
#include "core/runtime_paths.hpp"
#include "plugin/library.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace cp::plugin {

using nlohmann::json;

size_t v1_0_size_of_manifest() {
  return offsetof(cp_plugin_manifest, descriptors) + sizeof(void*);
}
size_t v1_0_size_of_descriptor() {
  return offsetof(cp_plugin_descriptor, vtable) + sizeof(void*);
}
size_t v1_0_size_of_vtable(Kind kind) {
  switch (kind) {
    case Kind::gate:
      return offsetof(cp_gate_vtable, evaluate) + sizeof(void*);
    case Kind::probe:
      return offsetof(cp_probe_vtable, probe) + sizeof(void*);
    case Kind::runner:
      return offsetof(cp_runner_vtable, release) + sizeof(void*);
    case Kind::retention_lane:
      return offsetof(cp_retention_lane_vtable, apply) + sizeof(void*);
    case Kind::planner:  // no planner of ABI 1.0 exists: its first layout (1.4) is the smallest accepted
      return offsetof(cp_planner_vtable, plan) + sizeof(void*);
  }
  return 0;
}

// Why a descriptor's "shared_state:<name>" capability cannot be honoured, or empty: only a 1.3 runner
// gets the folder, once, under a name that is not one of the host's own folders.
static std::string bad_shared_state(const PluginInfo& info) {
  int count = 0;
  for (const auto& cap : info.capabilities) {
    if (cap.rfind("shared_state:", 0) != 0) continue;
    if (info.kind != Kind::runner || info.abi_minor < 3)
      return "capability \"" + cap + "\" is for runners built for ABI 1.3 or later";
    if (core::shared_state_dir("/", cap.substr(13)).empty())
      return "capability \"" + cap +
             "\": the name must be [a-z][a-z0-9-]{0,63} and not one of the host's "
             "own runtime folders (runs, worktrees, codex-home, tmp, queue, intake, workflow-cases, reports)";
    if (++count > 1) return "a runner may declare one shared_state capability";
  }
  return "";
}

uint32_t effective_gate_flags(uint32_t abi_minor, std::string_view id, uint32_t declared) {
  if (abi_minor >= 2) return declared;
  // ABI 1.0 and 1.1 defined no gate flags (whatever such a descriptor holds there is ignored): their hosts
  // knew these three gates by id, and a gate built against them keeps exactly that treatment. This table is
  // closed: no later gate is ever added to it.
  if (id == "diff_scope" || id == "forbidden_actions") return CP_FLAG_GATE_POLICY;
  if (id == "acceptance_tests") return CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER;
  return 0;
}

PluginPolicy PluginPolicy::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot read plugin policy");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!core::json_depth_ok(text))
    throw std::runtime_error(file.string() + ": nested more than " + std::to_string(core::kMaxJsonDepth) +
                             " levels deep");
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(file.string() + ": not valid JSON: " + e.what());
  }
  PluginPolicy policy;
  if (!doc.contains("plugins") || !doc["plugins"].is_object())
    throw std::runtime_error(file.string() + ": /plugins must be an object mapping plugin ids to settings");
  for (auto it = doc["plugins"].begin(); it != doc["plugins"].end(); ++it) {
    PluginSettings s;
    const json& v = it.value();
    if (!v.is_object())
      throw std::runtime_error(file.string() + ": /plugins/" + it.key() + " must be an object");
    s.enabled = v.value("enabled", true);
    s.isolation = v.value("isolation", std::string());
    if (v.contains("limits") && v["limits"].is_object()) {
      const json& l = v["limits"];
      s.limits.address_space_mb = l.value("address_space_mb", s.limits.address_space_mb);
      s.limits.cpu_seconds = l.value("cpu_seconds", s.limits.cpu_seconds);
      s.limits.open_files = l.value("open_files", s.limits.open_files);
    }
    if (v.contains("config")) {
      s.config_json = v["config"].dump();
      s.has_config = true;
    }
    policy.plugins[it.key()] = std::move(s);
  }
  return policy;
}

const PluginInfo* Registry::find(std::string_view id) const {
  for (const auto& p : plugins_)
    if (p.id == id) return &p;
  return nullptr;
}

void Registry::refuse(const std::filesystem::path& file, std::string id, std::string reason) {
  refusals_.push_back({file, std::move(id), std::move(reason)});
}

void Registry::load_directory(const std::filesystem::path& dir, const PluginPolicy& policy) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    refuse(dir, "", "plugin directory does not exist or is not a directory");
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".so") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load_file(f, policy);
}

namespace {

bool functions_present(Kind kind, const void* vt) {
  switch (kind) {
    case Kind::gate: {
      auto* t = static_cast<const cp_gate_vtable*>(vt);
      return t->create && t->destroy && t->evaluate;
    }
    case Kind::probe: {
      auto* t = static_cast<const cp_probe_vtable*>(vt);
      return t->create && t->destroy && t->probe;
    }
    case Kind::runner: {
      auto* t = static_cast<const cp_runner_vtable*>(vt);
      return t->create && t->destroy && t->start && t->wait && t->cancel && t->release;
    }
    case Kind::retention_lane: {
      auto* t = static_cast<const cp_retention_lane_vtable*>(vt);
      return t->create && t->destroy && t->plan;
    }
    case Kind::planner: {
      auto* t = static_cast<const cp_planner_vtable*>(vt);
      return t->create && t->destroy && t->plan;
    }
  }
  return false;
}

std::optional<Kind> kind_of(int raw) {
  switch (raw) {
    case CP_KIND_RUNNER:
      return Kind::runner;
    case CP_KIND_GATE:
      return Kind::gate;
    case CP_KIND_PROBE:
      return Kind::probe;
    case CP_KIND_RETENTION_LANE:
      return Kind::retention_lane;
    case CP_KIND_PLANNER:
      return Kind::planner;
  }
  return std::nullopt;
}

}  // namespace

void Registry::load_file(const std::filesystem::path& file, const PluginPolicy& policy) {
  OpenedLibrary lib = open_library(file);
  if (!lib.handle) return refuse(file, "", lib.error);
  const cp_plugin_manifest* m = lib.manifest;
  if (m->struct_size < v1_0_size_of_manifest())
    return refuse(file, "",
                  "manifest struct_size " + std::to_string(m->struct_size) + " is shorter than ABI 1.0's " +
                      std::to_string(v1_0_size_of_manifest()) + ": rebuild the plugin against the SDK");
  if (m->abi_major != CP_PLUGIN_ABI_MAJOR)
    return refuse(file, "",
                  "built for ABI major " + std::to_string(m->abi_major) + ", this host speaks major " +
                      std::to_string(CP_PLUGIN_ABI_MAJOR) + ": rebuild it against SDK " +
                      std::to_string(CP_PLUGIN_ABI_MAJOR) + ".x");
  if (m->abi_minor > CP_PLUGIN_ABI_MINOR)
    return refuse(file, "",
                  "built for ABI " + std::to_string(m->abi_major) + "." + std::to_string(m->abi_minor) +
                      ", newer than this host's " + std::to_string(CP_PLUGIN_ABI_MAJOR) + "." +
                      std::to_string(CP_PLUGIN_ABI_MINOR) + ": upgrade cp-host or rebuild the plugin");
  if (!m->name || !m->version || (m->descriptor_count > 0 && !m->descriptors))
    return refuse(file, "", "manifest lacks name, version or descriptors");
  if (m->descriptor_count == 0) return refuse(file, "", "manifest lists no descriptors");

  static const std::regex id_pattern("^[a-z][a-z0-9_.-]{0,63}$");
  // Descriptors are laid out with the plugin's own sizeof (an older minor's may be smaller than ours):
  // step through the array by the struct_size the plugin wrote, never by the host's sizeof.
  const size_t stride = m->descriptors[0].struct_size;
  if (stride < v1_0_size_of_descriptor())
    return refuse(file, "",
                  "descriptor struct_size " + std::to_string(stride) + " is shorter than ABI 1.0's " +
                      std::to_string(v1_0_size_of_descriptor()));
  const char* base = reinterpret_cast<const char*>(m->descriptors);
  for (size_t i = 0; i < m->descriptor_count; ++i) {
    const cp_plugin_descriptor& d = *reinterpret_cast<const cp_plugin_descriptor*>(base + i * stride);
    std::string where = "descriptor #" + std::to_string(i);
    if (d.struct_size < v1_0_size_of_descriptor()) {
      refuse(file, "",
             where + ": struct_size " + std::to_string(d.struct_size) + " is shorter than ABI 1.0's " +
                 std::to_string(v1_0_size_of_descriptor()));
      continue;
    }
    std::string id = d.id ? d.id : "";
    if (!std::regex_match(id, id_pattern)) {
      refuse(file, id, where + ": id '" + id + "' must match [a-z][a-z0-9_.-]* (at most 64 characters)");
      continue;
    }
    auto kind = kind_of(d.kind);
    if (!kind) {
      refuse(file, id, "unknown plugin kind " + std::to_string(static_cast<int>(d.kind)));
      continue;
    }
    if (*kind == Kind::planner && m->abi_minor < 4) {
      refuse(file, id,
             "kind planner (5) was added in ABI 1.4, but the plugin was built for ABI 1." +
                 std::to_string(m->abi_minor) + ": rebuild it against SDK 1.4 or later");
      continue;
    }
    if (!d.vtable) {
      refuse(file, id, "descriptor has no function table");
      continue;
    }
    uint32_t vt_size = *static_cast<const uint32_t*>(d.vtable);
    if (vt_size < v1_0_size_of_vtable(*kind)) {
      refuse(file, id,
             std::string(kind_name(*kind)) + " function table struct_size " + std::to_string(vt_size) +
                 " is shorter than ABI 1.0's " + std::to_string(v1_0_size_of_vtable(*kind)));
      continue;
    }
    if (!functions_present(*kind, d.vtable)) {
      refuse(file, id, "function table misses a required function");
      continue;
    }
    if (*kind == Kind::gate && m->abi_minor >= 2 && (d.flags & ~CP_FLAG_GATE_ALL) != 0) {
      std::ostringstream hex;
      hex << std::hex << (d.flags & ~CP_FLAG_GATE_ALL);
      refuse(file, id,
             "gate flags 0x" + hex.str() +
                 " are not defined in ABI 1.2 (CP_FLAG_GATE_POLICY, CP_FLAG_GATE_NEEDS_COMPLETED_RUNNER)");
      continue;
    }
    if (const PluginInfo* other = find(id)) {
      // From another folder, it is shadowed by one earlier on the search path: first id wins.
      refuse(file, id,
             other->library_path.parent_path() == file.parent_path()
                 ? "duplicate plugin id '" + id + "': already provided by " + other->library_path.string()
                 : "shadowed: plugin id '" + id + "' is provided first by " + other->library_path.string() +
                       ", earlier on the plugin search path");
      continue;
    }
    PluginInfo info;
    info.kind = *kind;
    info.id = id;
    info.version = d.version ? d.version : "";
    info.description = d.description ? d.description : "";
    info.config_schema = d.config_schema_json ? d.config_schema_json : "{}";
    info.flags = *kind == Kind::gate ? effective_gate_flags(m->abi_minor, id, d.flags) : d.flags;
    info.library_path = file;
    info.library_name = m->name;
    info.library_version = m->version;
    info.abi_major = m->abi_major;
    info.abi_minor = m->abi_minor;
    info.vtable = d.vtable;
    info.library = lib.handle;
    try {
      json caps = json::parse(d.capabilities_json ? d.capabilities_json : "[]");
      if (!caps.is_array()) throw std::runtime_error("not an array");
      for (const auto& c : caps) info.capabilities.push_back(c.get<std::string>());
    } catch (const std::exception& e) {
      refuse(file, id, std::string("capabilities_json must be a JSON array of strings (") + e.what() + ")");
      continue;
    }
    if (std::string bad = bad_shared_state(info); !bad.empty()) {
      refuse(file, id, bad);
      continue;
    }
    std::optional<core::JsonSchema> schema;
    try {
      schema.emplace(core::JsonSchema::compile(json::parse(info.config_schema)));
    } catch (const std::exception& e) {
      refuse(file, id, std::string("config schema is not a valid JSON Schema: ") + e.what());
      continue;
    }
    // Third-party code runs isolated unless policy says otherwise; first-party in process: a library named
    // cp-* in the folder installed with cp-host (a name alone is what any library may call itself).
    info.isolation =
        info.library_name.rfind("cp-", 0) == 0 && in_installed_folder(file) ? "in_process" : "isolated";
    auto ps = policy.plugins.find(id);
    if (ps != policy.plugins.end()) {
      if (!ps->second.enabled) continue;  // switched off by policy: neither loaded nor an error
      info.config_json = ps->second.config_json;
      if (!ps->second.isolation.empty()) info.isolation = ps->second.isolation;
      info.limits = ps->second.limits;
    }
    if (info.isolation == "isolated" && info.kind == Kind::retention_lane) {
      refuse(file, id,
             "isolation \"isolated\" is not supported for retention lanes yet; run this lane in_process "
             "(policies/plugins.json)");
      continue;
    }
    auto violations = schema->validate(json::parse(info.config_json));
    if (!violations.empty()) {
      const auto& v = violations.front();
      refuse(file, id,
             "config fails the plugin's schema at " + (v.pointer.empty() ? std::string("/") : v.pointer) +
                 " (" + v.rule + "): " + v.message + (v.expected.empty() ? "" : "; expected " + v.expected) +
                 ". Fix the plugin's entry in policies/plugins.json");
      continue;
    }
    plugins_.push_back(std::move(info));
  }
}

json refusals_json(const Registry& r) {
  json out = json::array();
  for (const auto& x : r.refusals())
    out.push_back({{"file", x.file.string()}, {"id", x.id}, {"reason", x.reason}});
  return out;
}

}  // namespace cp::plugin
