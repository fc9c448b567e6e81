// `cp-host doctor`: checks what a run needs on this machine and in this project — the root, its
// contracts/packs/policies, the plugin search path, the plugin worker, the host key, the kernel's sandbox,
// the capability probes — and prints, for each problem, how to fix it. Offline by default: a probe that
// reaches a remote service runs only once policies/plugins.json configures it.
#include "cli/colour.hpp"
#include "cli/commands.hpp"
#include "cli/project_root.hpp"
#include "contract/validation.hpp"
#include "os/run_cgroup.hpp"
#include "os/sandbox.hpp"
#include "plugin/installed_folder.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/probe_call.hpp"
#include "plugin/registry.hpp"
#include "plugin/search_path.hpp"
#include "store/host_key.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Check {
  std::string name, status, detail, fix;  // status: ok | warn | fail | skipped
};

Check root_check(const Globals& g) {
  std::error_code ec;
  const fs::path shown = fs::absolute(g.root, ec).lexically_normal();
  const std::string where = shown.string() + " (chosen by " + project_root().chosen_by + ")";
  if (!fs::is_directory(g.root / "packs", ec) || !fs::is_directory(g.root / "policies", ec))
    return {"root", "fail", where + " has no packs/ or policies/",
            "run `cp-host init` in your repository, or choose the root with --root DIR or CP_HOST_ROOT=DIR"};
  return {"root", "ok", where, ""};
}

Check validate_check(const Globals& g) {
  contract::ValidateOptions opts;
  opts.root = g.root;
  opts.plugins_dir = g.plugins_dir;
  opts.check_plugins = plugin::any_folder_exists(g.plugins_dir);
  try {
    const contract::ValidationReport r = contract::validate(opts);
    if (r.ok()) return {"validate", "ok", std::to_string(r.files_checked) + " file(s) valid", ""};
    return {"validate", "fail",
            std::to_string(r.files_invalid) + " of " + std::to_string(r.files_checked) +
                " file(s) invalid, " + std::to_string(r.diagnostics.size()) +
                " error(s); first: " + contract::diagnostic_line(r.diagnostics.front()),
            "run `cp-host validate` for every error and its fix"};
  } catch (const std::exception& e) {
    return {"validate", "fail", e.what(), "run `cp-host validate`"};
  }
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// `given`: the --plugins values as given on the command line (empty: CP_HOST_PLUGINS or the defaults chose).
void plugin_checks(const Globals& g, const std::vector<std::string>& given, const plugin::Registry& reg,
                   std::vector<Check>& out) {
  size_t shadowed = 0, refused = 0;
  std::string first_refusal;
  for (const auto& r : reg.refusals()) {
    if (r.reason.rfind("shadowed:", 0) == 0) {
      ++shadowed;
    } else {
      ++refused;
      if (first_refusal.empty()) first_refusal = r.file.string() + ": " + r.reason;
    }
  }
  const std::string path = g.plugins_dir.string();
  if (reg.plugins().empty())
    out.push_back({"plugins", "fail", "no plugin loads from " + path,
                   "install the cp-host package, or pass --plugins DIR / set CP_HOST_PLUGINS"});
  else if (refused > 0)
    out.push_back(
        {"plugins", "warn",
         std::to_string(reg.plugins().size()) + " loaded from " + path + ", " + std::to_string(refused) +
             " refused; first: " + first_refusal,
         "`cp-host plugins list` says why each was refused; rebuild it against the SDK or remove it"});
  else
    out.push_back({"plugins", "ok",
                   std::to_string(reg.plugins().size()) + " loaded from " + path +
                       (shadowed ? ", " + std::to_string(shadowed) + " shadowed by an earlier folder" : ""),
                   ""});
  // A first-party plugin replaced by one earlier on the path: it may be wanted, but never unseen.
  for (const auto& r : reg.refusals())
    if (r.reason.rfind("shadowed:", 0) == 0 && plugin::in_installed_folder(r.file)) {
      const auto* winner = reg.find(r.id);
      out.push_back({"plugin:" + r.id, "warn",
                     "the installed plugin '" + r.id + "' is shadowed by " +
                         (winner ? winner->library_path.string() : std::string("another library")),
                     "remove that library or its folder from the search path unless you mean to replace it"});
    }
  // Every folder on the path and every library in it is code cp-host runs: only its user (or root) may
  // be able to change it. A library that is a symbolic link loads from the folder of its target, which is
  // checked as well.
  std::vector<fs::path> items, seen_folders;
  auto add_folder = [&](const fs::path& folder) {
    if (std::find(seen_folders.begin(), seen_folders.end(), folder) != seen_folders.end()) return;
    seen_folders.push_back(folder);
    items.push_back(folder);
  };
  for (const auto& folder : plugin::split_search_path(g.plugins_dir)) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) continue;
    add_folder(folder);
    for (const auto& e : fs::directory_iterator(folder, ec)) {
      if (e.path().extension() != ".so") continue;
      items.push_back(e.path());
      std::error_code lec;
      if (!e.is_symlink(lec)) continue;
      const fs::path target = fs::canonical(e.path(), lec);
      if (lec) continue;  // a dangling link loads nothing
      out.push_back({"plugin_link", "warn",
                     e.path().string() + " is a symbolic link to " + target.string() +
                         ": cp-host loads it from a folder that is not on the search path",
                     "copy the library into " + folder.string() + " instead of linking it"});
      add_folder(target.parent_path());
    }
  }
  for (const auto& item : items) {
    struct stat st {};
    if (::stat(item.c_str(), &st) != 0) continue;
    std::string why;
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
      why = "belongs to another user (uid " + std::to_string(st.st_uid) + ")";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
      why = "others may write to it (mode " + mode_text(st.st_mode) + ")";
    if (!why.empty())
      out.push_back({"plugin_path", "fail",
                     item.string() + " " + why + ": anyone who can change it runs code in cp-host",
                     "chmod go-w " + item.string() + ", or take it off the plugin search path"});
  }
  // A relative folder names another folder wherever cp-host runs; it was made absolute at start.
  const bool from_flag = !given.empty();
  std::vector<fs::path> relative;
  for (const auto& v : given)
    for (auto& f : plugin::relative_folders(v)) relative.push_back(std::move(f));
  if (!from_flag)
    if (const char* env = std::getenv("CP_HOST_PLUGINS"); env && *env)
      relative = plugin::relative_folders(env);
  const std::string source = from_flag ? "--plugins" : "CP_HOST_PLUGINS";
  for (const auto& f : relative) {
    std::error_code ec;
    const fs::path abs = fs::absolute(f, ec).lexically_normal();
    out.push_back({"plugin_path_relative", "warn",
                   source + " names the relative folder '" + f.string() + "', resolved here to " +
                       abs.string() + ": run from another folder, it loads other code",
                   "give " + source + " absolute folders"});
  }
  for (const char* runner : {"tool"})
    if (!reg.find(runner))
      out.push_back({"runner:" + std::string(runner), "fail",
                     "the first-party runner '" + std::string(runner) + "' is not loaded",
                     "add the installed plugin folder to the search path"});
  const fs::path worker = plugin::worker_path();
  if (::access(worker.c_str(), X_OK) != 0)
    out.push_back({"plugin_worker", "fail", worker.string() + " is missing or not executable",
                   "reinstall cp-host: isolated plugins run in cp-plugin-worker beside the binary"});
  else
    out.push_back({"plugin_worker", "ok", worker.string(), ""});
}

Check key_check(const Globals& g) {
  const fs::path dir = store::key_dir();
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(g.root, ec);
  const fs::path keys = fs::weakly_canonical(dir, ec);
  const std::string r = root.string(), k = keys.string();
  if (!r.empty() && (k == r || k.rfind(r + "/", 0) == 0))
    return {"host_key", "fail", dir.string() + " is inside the project root, where a run's files live",
            "keep it elsewhere: --key-dir DIR or CP_HOST_KEY_DIR=DIR"};
  if (fs::exists(dir / "host_key.pem", ec)) return {"host_key", "ok", (dir / "host_key.pem").string(), ""};
  return {"host_key", "ok", dir.string() + " has no key yet; the first run makes one", ""};
}

Check sandbox_check() {
  const os::SandboxSupport s = os::probe_sandbox_support();
  if (s.landlock_abi == 0)
    return {"sandbox", "fail", "no Landlock: " + s.why_not,
            "use a kernel with Landlock enabled (5.13 or later, lsm=landlock); runs are refused without it "
            "unless a pack allows running unsandboxed"};
  if (!s.seccomp)
    return {"sandbox", "fail", "Landlock ABI " + std::to_string(s.landlock_abi) + " but no seccomp",
            "use a kernel with seccomp filters"};
  std::string detail = "Landlock ABI " + std::to_string(s.landlock_abi) + ", seccomp";
  if (os::cgroup2_mount().empty())
    return {"sandbox", "warn", detail + "; no cgroup v2",
            "mount cgroup v2: without it a run's processes are followed by process group only"};
  return {"sandbox", "ok", detail + ", cgroup v2", ""};
}

void probe_checks(const Globals& g, const plugin::Registry& reg, bool online, std::vector<Check>& out) {
  for (const auto& p : reg.plugins()) {
    if (p.kind != plugin::Kind::probe) continue;
    if (!online && probe_needs_configuration(g, p)) {
      out.push_back({"probe:" + p.id, "skipped", "reaches a remote service and is not configured",
                     "configure it in policies/plugins.json, or run `cp-host doctor --online`"});
      continue;
    }
    json r = plugin::call_probe(p);
    const std::string status = r.value("status", "error");
    std::string detail =
        r.contains("message") && r["message"].is_string() ? r["message"].get<std::string>() : "";
    if (detail.empty() && r.contains("capabilities")) detail = r["capabilities"].dump();
    if (detail.size() > 300) detail = detail.substr(0, 300) + "…";
    out.push_back({"probe:" + p.id, status == "ok" ? "ok" : "warn", detail,
                   status == "ok" ? "" : "`cp-host probe " + p.id + "` shows what it found"});
  }
}

int doctor(const Globals& g, const std::vector<std::string>& given, bool as_json, bool online) {
  std::vector<Check> checks;
  checks.push_back(root_check(g));
  if (checks.back().status == "ok") checks.push_back(validate_check(g));
  plugin::Registry reg;
  {
    plugin::PluginPolicy policy;
    try {
      if (fs::exists(g.root / "policies/plugins.json"))
        policy = plugin::PluginPolicy::load(g.root / "policies/plugins.json");
    } catch (const std::exception& e) {
      checks.push_back({"plugin_policy", "fail", e.what(), "fix policies/plugins.json (`cp-host validate`)"});
    }
    plugin::load_search_path(reg, g.plugins_dir, policy);
  }
  plugin_checks(g, given, reg, checks);
  checks.push_back(key_check(g));
  checks.push_back(sandbox_check());
  probe_checks(g, reg, online, checks);

  bool failed = false;
  for (const auto& c : checks) failed = failed || c.status == "fail";
  if (as_json) {
    json list = json::array();
    for (const auto& c : checks) {
      json j{{"name", c.name}, {"status", c.status}, {"detail", c.detail}};
      if (!c.fix.empty()) j["fix"] = c.fix;
      list.push_back(j);
    }
    std::cout << json{{"ok", !failed}, {"checks", list}}.dump(2) << "\n";
  } else {
    for (const auto& c : checks) {
      const Colour colour = c.status == "ok"     ? Colour::green
                            : c.status == "fail" ? Colour::red
                                                 : Colour::yellow;
      std::cout << paint(c.status, colour) << std::string(c.status.size() < 8 ? 8 - c.status.size() : 1, ' ')
                << c.name << ": " << c.detail << "\n";
      if (!c.fix.empty()) std::cout << "        fix: " << c.fix << "\n";
    }
    std::cout << (failed ? "cp-host cannot run contracts here until the failures above are fixed\n"
                         : "ready: cp-host can run contracts here\n");
  }
  return failed ? kInvalid : kOk;
}

}  // namespace

void add_doctor(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    bool json = false, online = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "doctor",
      "Check the project root, its contracts/packs/policies, the plugin search path, the plugin worker, the "
      "host key, the kernel's sandbox and the probes, and say how to fix each problem (exit 1 if one fails)");
  cmd->add_flag("--json", o->json,
                "Print {ok, checks: [{name, status: ok|warn|fail|skipped, detail, fix?}]}");
  cmd->add_flag("--online", o->online,
                "Also run probes that reach a remote service when they are not configured");
  cmd->callback([&app, &g, &run, o] {
    std::vector<std::string> given;
    if (const CLI::Option* p = app.get_option_no_throw("--plugins"); p && p->count() > 0)
      given = p->results();
    run = [&g, o, given] { return doctor(g, given, o->json, o->online); };
  });
}

}  // namespace cp::cli
