// `cp-host agents list|status` (the runners and roles; what the live runs' agents are doing) and
// `cp-host roles show|preview|apply` (a role's config in policies/role_config.json): the CLI twins of
// GET /api/agents, /api/agents/status and /api/agents/roles/{role}/config[/preview|/apply], over the same
// control services.
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_commands.hpp"
#include "contract/role_config.hpp"
#include "control/actor.hpp"
#include "control/agents_overview.hpp"
#include "control/live_runs.hpp"
#include "control/role_config_service.hpp"
#include "core/json_depth.hpp"
#include "plugin/registry.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <iostream>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A string field, terminal-safe, "-" when it is absent.
std::string text_or(const json& j, const char* k, const std::string& dflt = "-") {
  return text_of(j, k, dflt);
}

std::string list_or_any(const json& allowed) {
  if (!allowed.is_array()) return "any";
  std::string s;
  for (const auto& a : allowed)
    if (a.is_string()) s += (s.empty() ? "" : ",") + terminal_safe(a.get<std::string>());
  return s.empty() ? "none" : s;
}

// The strings of an array, comma-joined.
std::string joined(const json& list) {
  std::string s;
  for (const auto& c : list)
    if (c.is_string()) s += (s.empty() ? "" : ",") + terminal_safe(c.get<std::string>());
  return s;
}

// Printed from the answer, local or a server's: every field read through json_fields.hpp.
void print_agents_overview(const json& o) {
  std::cout << "RUNNERS\n"
            << std::left << std::setw(12) << "ID" << std::setw(10) << "VERSION" << std::setw(12)
            << "ISOLATION"
            << "CAPABILITIES / ROLES\n";
  for (const auto& r : array_of(o, "runners")) {
    const std::string roles = joined(array_of(r, "roles"));
    std::cout << std::setw(12) << text_of(r, "id", "-") << std::setw(10) << text_of(r, "version", "-")
              << std::setw(12) << text_of(r, "isolation", "-") << joined(array_of(r, "capabilities")) << " / "
              << (roles.empty() ? "no role" : roles) << "\n";
  }
  std::cout << "\nROLES\n"
            << std::setw(12) << "ROLE" << std::setw(9) << "APPROVE" << std::setw(10) << "RUNNER"
            << std::setw(34) << "ALLOWED RUNNERS"
            << "PROMPT\n";
  for (const auto& r : array_of(o, "roles")) {
    const json& p = object_of(r, "prompt");
    std::string prompt =
        p.empty() ? "-"
        : p.contains("error")
            ? text_of(p, "prompt_ref", "-") + " (unusable: " + text_of(p, "error", "-") + ")"
            : text_of(p, "prompt_ref", "-") + " (" + text_of(p, "sha256", "-").substr(0, 12) + ")";
    const json allowed = r.is_object() && r.contains("allowed_runners") ? r["allowed_runners"] : json();
    std::cout << std::setw(12) << text_of(r, "role", "-") << std::setw(9)
              << (flag_of(r, "can_approve", false) ? "yes" : "no") << std::setw(10)
              << text_of(object_of(r, "runtime"), "runner", "-") << std::setw(34) << list_or_any(allowed)
              << prompt << (flag_of(r, "registered", false) ? "" : "  (not registered)") << "\n";
  }
  const json& f = object_of(o, "role_config");
  std::cout << "\n"
            << text_of(f, "path", "-") << ": "
            << (!flag_of(f, "exists", false) ? "absent (no prompts; every role may use any runner)"
                : flag_of(f, "valid", false) ? "valid, sha256 " + text_of(f, "sha256", "-")
                                             : "INVALID (cp-host validate says where)")
            << "\n";
}

void print_status(const json& s) {
  if (array_of(s, "runs").empty()) {
    std::cout << "no live run\n";
    return;
  }
  std::cout << std::left << std::setw(40) << "RUN" << std::setw(11) << "ROLE" << std::setw(16) << "AGENT"
            << std::setw(8) << "RUNNER" << std::setw(10) << "STAGE" << std::setw(7) << "FILES"
            << "LAST EVENT\n";
  for (const auto& r : array_of(s, "runs")) {
    const json& f = object_of(r, "files_changed");
    std::string files = std::to_string(count_of(f, "count")) + (flag_of(f, "more", false) ? "+" : "");
    const json& last_event = object_of(r, "last_event");
    std::string last =
        !last_event.empty() ? text_of(last_event, "type", "-") + " " + text_of(last_event, "ts", "-") : "-";
    std::cout << std::setw(40) << text_of(r, "run_id", "-") << std::setw(11) << text_of(r, "role", "-")
              << std::setw(16) << text_of(r, "agent_id", "-") << std::setw(8) << text_of(r, "runner", "-")
              << std::setw(10) << text_of(r, "stage", "-") << std::setw(7) << files << last << "\n";
    if (!text_of(r, "worktree").empty()) std::cout << "    worktree " << text_of(r, "worktree") << "\n";
    for (const auto& p : array_of(f, "paths"))
      if (p.is_string()) std::cout << "    changed  " << terminal_safe(p.get<std::string>()) << "\n";
  }
}

void print_result(const control::RoleConfigResult& r) {
  std::cout << control::outcome_name(r.outcome) << ": " << r.message << "\n";
  for (const auto& p : r.problems)
    std::cerr << "  " << (p.pointer.empty() ? std::string("(request)") : p.pointer) << ": " << p.message
              << (p.expected.empty() ? "" : "; expected: " + p.expected) << " [" << p.rule << "]\n";
  for (const auto& c : r.changes.is_array() ? r.changes : json::array())
    std::cout << "  " << text_or(c, "op") << " " << text_or(c, "path")
              << (c.contains("value") ? " = " + c["value"].dump() : "") << "\n";
  if (r.prompt.is_object() && r.prompt.value("changed", false))
    std::cout << "  prompt "
              << (r.prompt["prompt_ref"].is_string() ? r.prompt["prompt_ref"].get<std::string>() : "(none)")
              << ": "
              << (r.prompt["current_sha256"].is_string()
                      ? r.prompt["current_sha256"].get<std::string>().substr(0, 12)
                      : "none")
              << " -> "
              << (r.prompt["proposed_sha256"].is_string()
                      ? r.prompt["proposed_sha256"].get<std::string>().substr(0, 12)
                      : "none")
              << (r.prompt.value("written", false) ? " (written)" : "") << "\n";
  if (!r.config_sha256_after.empty())
    std::cout << "  role_config.json sha256 " << r.config_sha256_after << "\n";
}

int exit_of(const control::RoleConfigResult& r) {
  using O = control::RoleConfigResult::Outcome;
  switch (r.outcome) {
    case O::previewed:
    case O::applied:
    case O::unchanged:
      return kOk;
    case O::invalid:
    case O::not_found:
    case O::conflict:
    case O::too_large:
      return kInvalid;
    case O::from_run:
      return kFromRun;
    case O::error:
      break;
  }
  return kInternal;
}

struct ChangeOpts {
  std::string role, config, prompt_file, base_sha256, reason;
  bool json = false;
};

// The change the command line describes, or the exit code refusing it (files that cannot be read or are
// not what they must be are usage errors: nothing was checked yet).
std::optional<control::RoleChange> read_change(const ChangeOpts& o, const char* cmd, int& exit_code) {
  exit_code = kUsage;
  std::ifstream in(o.config, std::ios::binary);
  if (!in) {
    std::cerr << "cp-host roles " << cmd << ": cannot read " << o.config << "\n";
    return std::nullopt;
  }
  std::string text;
  text.resize(1u << 20);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() >= (1u << 20) || !core::json_depth_ok(text)) {
    std::cerr << "cp-host roles " << cmd << ": " << o.config << " is over 1 MiB or nested too deeply\n";
    return std::nullopt;
  }
  json body{{"config", json::parse(text, nullptr, false)}};
  if (body["config"].is_discarded()) {
    std::cerr << "cp-host roles " << cmd << ": " << o.config << " is not JSON\n";
    return std::nullopt;
  }
  if (!o.prompt_file.empty()) {
    std::ifstream p(o.prompt_file, std::ios::binary);
    if (!p) {
      std::cerr << "cp-host roles " << cmd << ": cannot read " << o.prompt_file << "\n";
      return std::nullopt;
    }
    // One byte past the limit is enough for the service to refuse it as too large.
    std::string prompt(contract::kMaxRolePromptBytes + 1, '\0');
    p.read(prompt.data(), static_cast<std::streamsize>(prompt.size()));
    prompt.resize(static_cast<size_t>(p.gcount()));
    body["prompt"] = prompt;
  }
  if (!o.base_sha256.empty()) body["base_sha256"] = o.base_sha256;
  if (!o.reason.empty()) body["reason"] = o.reason;
  std::vector<control::RoleConfigProblem> problems;
  auto change = control::parse_role_change(body, problems);
  if (!change) {
    for (const auto& pr : problems)
      std::cerr << "cp-host roles " << cmd << ": " << pr.pointer << ": " << pr.message << "\n";
    exit_code = kInvalid;
  }
  return change;
}

void add_change_command(CLI::App& roles, Globals& g, Runner& run, const char* name, bool apply) {
  auto o = std::make_shared<ChangeOpts>();
  auto* c = roles.add_subcommand(
      name,
      apply ? "Apply a new config to a role: checked as preview checks it, then written atomically to "
              "policies/role_config.json (and the prompt to policies/roles/ when --prompt-file is given), "
              "recorded as a ROLE_CONFIG_APPLIED host event and a governance log line. Runs compiled from "
              "then on get it; runs already started keep theirs. Exit 0 applied (or unchanged), 1 refused "
              "(invalid, unknown role, changed since --base-sha256), 2 bad files, 3 internal, 11 from "
              "inside a run"
            : "Check a new config for a role without writing anything: the schema, the role registered, "
              "the prompt readable (or the --prompt-file text within 64 KiB), the runners loaded and the "
              "role's own runner among its allowed ones; prints the problems with their JSON pointers, "
              "or the changes against the current config. Exit 0 valid, 1 invalid, 2 bad files");
  c->add_option("role", o->role, "Role name as in policies/role_registry.json (e.g. WORKER)")->required();
  c->add_option("--config", o->config,
                "JSON file holding the role's whole new entry: {\"prompt_ref\"?, \"runtime\"?: {\"runner\", "
                "\"provider\"?, \"model\"?}, \"allowed_runners\"?}")
      ->required();
  c->add_option(
      "--prompt-file", o->prompt_file,
      "A new prompt text, written to the entry's prompt_ref (which must then be a .md file directly "
      "under policies/roles/; default policies/roles/<role>.md)");
  c->add_option("--base-sha256", o->base_sha256,
                "Only if policies/role_config.json still has this sha256 (as `roles show` printed it)");
  if (apply) c->add_option("--reason", o->reason, "Why; recorded in the event and the governance log");
  c->add_flag("--json", o->json, "Print the result as JSON");
  c->callback([&g, &run, o, apply, name] {
    run = [&g, o, apply, name]() -> int {
      int code = kOk;
      auto change = read_change(*o, name, code);
      if (!change) return code;
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      auto r = apply ? control::apply_role_config(g.root, &reg, o->role, *change,
                                                  control::os_user("human", change->reason))
                     : control::preview_role_config(g.root, &reg, o->role, *change);
      if (o->json)
        std::cout << control::to_json(r).dump(2) << "\n";
      else
        print_result(r);
      return exit_of(r);
    };
  });
}

}  // namespace

void add_agents(CLI::App& app, Globals& g, Runner& run) {
  auto* agents = app.add_subcommand(
      "agents",
      "The agents this project can run (runner plugins and roles) and what the live runs' agents are doing");
  agents->require_subcommand(1);
  auto list_json = std::make_shared<bool>(false);
  auto* list = agents->add_subcommand(
      "list",
      "The runner plugins loaded (version, isolation, capabilities, which roles may use each) and the roles: "
      "who may approve, their runner, the runners they may use, their prompt (ref and sha256)");
  list->add_flag("--json", *list_json, "Print as JSON (what GET /api/agents answers)");
  list->callback([&g, &run, list_json] {
    run = [&g, list_json]() -> int {
      if (!g.server.empty())
        return remote_view(g, "/api/agents", "the agents", *list_json, print_agents_overview);
      plugin::Registry reg;
      if (!load_plugins(g, reg)) return kUsage;
      json o = control::agents_overview(g.root, &reg);
      if (*list_json)
        std::cout << o.dump(2) << "\n";
      else
        print_agents_overview(o);
      return kOk;
    };
  });
  auto status_json = std::make_shared<bool>(false);
  auto* status = agents->add_subcommand(
      "status",
      "Each live (not yet sealed) run: its role and agent, runner, stage (from its last events), worktree "
      "and the files its agent reported changing so far (FILE_CHANGED events)");
  status->add_flag("--json", *status_json, "Print as JSON (what GET /api/agents/status answers)");
  status->callback([&g, &run, status_json] {
    run = [&g, status_json]() -> int {
      if (!g.server.empty())
        return remote_view(g, "/api/agents/status", "the agents' live runs", *status_json, print_status);
      json s = control::LiveRuns(g.root).snapshot();
      if (*status_json)
        std::cout << s.dump(2) << "\n";
      else
        print_status(s);
      return kOk;
    };
  });

  auto* roles = app.add_subcommand(
      "roles",
      "A role's config in policies/role_config.json: the prompt its agents get in front of the task, its "
      "runtime "
      "binding and the runners a contract assigned to it may use. Runs compile it when they start");
  roles->require_subcommand(1);
  struct ShowOpts {
    std::string role;
    bool json = false;
  };
  auto so = std::make_shared<ShowOpts>();
  auto* show = roles->add_subcommand(
      "show",
      "One role: registry entry, config, prompt text and sha256, and the config file's sha256 (for "
      "--base-sha256). Exit 1 when the role is unknown");
  show->add_option("role", so->role, "Role name (e.g. WORKER)")->required();
  show->add_flag("--json", so->json, "Print as JSON (what GET /api/agents/roles/{role}/config answers)");
  show->callback([&g, &run, so] {
    run = [&g, so]() -> int {
      auto v = control::role_view(g.root, so->role, true);
      if (!v) {
        std::cerr
            << "cp-host roles show: no role '" << so->role
            << "' in policies/role_registry.json or policies/role_config.json (`cp-host agents list` lists "
               "them)\n";
        return kInvalid;
      }
      if (so->json) {
        std::cout << v->dump(2) << "\n";
        return kOk;
      }
      const json& r = *v;
      std::cout << "role      " << text_or(r, "role")
                << (r.value("registered", false) ? "" : " (not registered)") << "\n"
                << "about     " << text_or(r, "description") << "\n"
                << "approves  " << (r.value("can_approve", false) ? "yes" : "no") << "\n"
                << "runner    " << text_or(r["runtime"], "runner") << "\n"
                << "allowed   " << list_or_any(r["allowed_runners"]) << "\n";
      const json& p = r["prompt"];
      if (p.is_null()) {
        std::cout << "prompt    none\n";
      } else if (p.contains("error")) {
        std::cout << "prompt    " << text_or(p, "prompt_ref") << " UNUSABLE: " << text_or(p, "error") << "\n";
      } else {
        std::cout << "prompt    " << text_or(p, "prompt_ref") << " (" << p.value("bytes", 0)
                  << " bytes, sha256 " << text_or(p, "sha256") << ")\n"
                  << text_or(p, "text", "")
                  << (text_or(p, "text", "").empty() || text_or(p, "text", "").back() == '\n' ? "" : "\n");
      }
      std::cout << "file      " << text_or(r["role_config"], "path") << " sha256 "
                << text_or(r["role_config"], "sha256") << "\n";
      return kOk;
    };
  });
  add_change_command(*roles, g, run, "preview", false);
  add_change_command(*roles, g, run, "apply", true);
}

}  // namespace cp::cli
