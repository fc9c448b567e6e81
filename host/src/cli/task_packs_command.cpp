// `cp-host task-packs list|show`: the task packs under <root>/packs/tasks/ — the kinds of job the planners
// know, each with the fields it needs and the question asked for a missing one (what GET /api/task-packs
// answers). A pack that fails its checks is listed apart with why; `cp-host validate` says the same.
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "contract/task_packs.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iomanip>
#include <iostream>

namespace cp::cli {

namespace {

using nlohmann::json;

int list_packs(const Globals& g, bool as_json) {
  auto set = contract::load_task_packs(g.root);
  if (as_json) {
    json packs = json::array();
    for (const auto& p : set.packs) packs.push_back(contract::task_pack_summary(p, g.root));
    std::cout << json{{"task_packs", packs},
                      {"count", packs.size()},
                      {"invalid", contract::diagnostics_json(set.diagnostics)},
                      {"truncated", set.truncated}}
                     .dump(2)
              << "\n";
    return set.diagnostics.empty() ? kOk : kInvalid;
  }
  if (set.packs.empty() && set.diagnostics.empty()) {
    std::cout << "no task packs under " << (g.root / contract::kTaskPacksDir).string() << "\n";
    return kOk;
  }
  if (!set.packs.empty())
    std::cout << std::left << std::setw(20) << "NAME" << std::setw(8) << "FIELDS" << std::setw(9) << "STEPS"
              << "TITLE\n";
  for (const auto& p : set.packs) {
    json s = contract::task_pack_summary(p, g.root);
    std::cout << std::left << std::setw(20) << p.name << std::setw(8) << s["fields"].size() << std::setw(9)
              << s["steps"].size() << s["title"].get<std::string>() << "\n";
  }
  if (set.truncated)
    std::cout << "(more pack folders than " << contract::kMaxTaskPacks << "; the rest not read)\n";
  if (!set.diagnostics.empty()) {
    std::cerr << "invalid task packs (left out):\n";
    print_diagnostics(set.diagnostics);
  }
  return set.diagnostics.empty() ? kOk : kInvalid;
}

int show_pack(const Globals& g, const std::string& name, bool as_json) {
  std::vector<contract::Diagnostic> why;
  auto pack = contract::load_task_pack(g.root, name, why);
  if (!pack) {
    if (as_json)
      std::cout << json{{"error", "no valid task pack '" + name + "'"},
                        {"diagnostics", contract::diagnostics_json(why)}}
                       .dump(2)
                << "\n";
    print_diagnostics(why);
    if (!why.empty() && why.front().rule == "name") return kUsage;
    return kInvalid;
  }
  json s = contract::task_pack_summary(*pack, g.root);
  if (as_json) {
    s["pack"] = pack->doc;
    std::cout << s.dump(2) << "\n";
    return kOk;
  }
  std::cout << s["name"].get<std::string>() << ": " << s["title"].get<std::string>() << "\n"
            << "  " << s["description"].get<std::string>() << "\n"
            << "  file: " << s["path"].get<std::string>() << "\n\nfields:\n";
  for (const auto& f : s["fields"]) {
    std::cout << "  " << f["name"].get<std::string>() << " (" << f["type"].get<std::string>()
              << (f["required"].get<bool>() ? ", required" : "") << ")";
    if (!f["default"].is_null()) std::cout << " default " << f["default"].dump();
    if (!f["choices"].is_null()) std::cout << " one of " << f["choices"].dump();
    if (!f["pattern"].is_null()) std::cout << " matching " << f["pattern"].get<std::string>();
    std::cout << "\n    " << f["description"].get<std::string>()
              << "\n    asks: " << f["question"].get<std::string>() << "\n";
  }
  std::cout << "\nchain: " << s["chain_title"].get<std::string>() << "\n";
  for (const auto& st : s["steps"]) {
    std::cout << "  " << st["step_id"].get<std::string>() << " (" << st["kind"].get<std::string>() << ")";
    for (const char* k : {"role", "runner", "pack"})
      if (st[k].is_string()) std::cout << " " << k << " " << st[k].get<std::string>();
    if (st["when"].is_string()) std::cout << ", only when " << st["when"].get<std::string>() << " is given";
    std::cout << "\n";
  }
  const json& examples = s["match"]["examples"];
  if (!examples.empty()) {
    std::cout << "\nexamples:\n";
    for (const auto& e : examples) std::cout << "  " << e.get<std::string>() << "\n";
  }
  return kOk;
}

}  // namespace

void add_task_packs(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string name;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* tp = app.add_subcommand(
      "task-packs",
      "The task packs under <root>/packs/tasks/<name>/pack.json: the kinds of job a planner turns a request "
      "into "
      "(the fields each needs, the question asked for a missing one, the chain it produces)");
  tp->require_subcommand(1);
  auto* ls = tp->add_subcommand(
      "list",
      "List the valid task packs (name, fields, steps, title); invalid ones are named on stderr with why. "
      "Exit 0, or 1 when a pack is invalid");
  ls->add_flag("--json", o->json, "Machine-readable output (what GET /api/task-packs answers)");
  ls->callback([&g, &run, o] { run = [&g, o] { return list_packs(g, o->json); }; });
  auto* show = tp->add_subcommand(
      "show",
      "One task pack: its fields (type, required, default, choices, pattern, the question asked), the "
      "chain's "
      "steps and example requests. Exit 0; 1 when there is no valid pack of that name; 2 for a name that "
      "cannot be a pack's");
  show->add_option("name", o->name, "The pack's name ([a-z][a-z0-9-]*)")->required();
  show->add_flag("--json", o->json, "Machine-readable output (what GET /api/task-packs/{name} answers)");
  show->callback([&g, &run, o] { run = [&g, o] { return show_pack(g, o->name, o->json); }; });
}

}  // namespace cp::cli
