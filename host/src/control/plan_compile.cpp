#include "control/plan_compile.hpp"
#include "core/ascii.hpp"

#include "contract/task_pack_render.hpp"
#include "contract/task_packs.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"

#include <stdlib.h>

#include <fstream>
#include <map>
#include <set>
#include <system_error>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Who owns every generated contract: the PM the intake speaks for.
constexpr const char* kOwnerRole = "PM";
constexpr const char* kOwnerAgent = "intake-planner";

class PlanDiagnostics {
 public:
  explicit PlanDiagnostics(const json& plan) : plan_(plan) {}
  void add(const std::string& pointer, const std::string& rule, const std::string& message,
           const std::string& expected) {
    contract::Diagnostic d;
    d.file = "plan";
    d.line = 1;
    d.pointer = pointer;
    d.rule = rule;
    d.message = message;
    d.expected = expected;
    d.schema = "plan_bundle";
    if (rule != "required" && !pointer.empty()) {
      try {
        std::string v = plan_.at(json::json_pointer(pointer)).dump();
        d.value = v.size() > 200 ? v.substr(0, 197) + "..." : v;
      } catch (...) {
      }
    }
    list_.push_back(std::move(d));
  }
  std::vector<contract::Diagnostic>& list() { return list_; }
  bool empty() const { return list_.empty(); }

 private:
  const json& plan_;
  std::vector<contract::Diagnostic> list_;
};

std::string escape(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

// The plan's fields against its task pack's: required ones present, each value of its field's type and
// pattern, no field the pack does not declare. Returns the pack's document when the plan names a valid pack
// (null otherwise); `fields_ok` says whether its fields passed.
json check_fields(const json& plan, const fs::path& root, PlanDiagnostics& diags, bool& fields_ok) {
  fields_ok = false;
  if (!plan.contains("task_pack") || !plan["task_pack"].is_string()) return nullptr;
  const std::string name = plan["task_pack"].get<std::string>();
  std::vector<contract::Diagnostic> why;
  auto pack = contract::load_task_pack(root, name, why);
  if (!pack) {
    std::string reason = why.empty() ? std::string("not found") : contract::describe(why.front());
    diags.add("/task_pack", "xref:task_pack",
              "no valid task pack '" + name + "' under " + contract::kTaskPacksDir + " (" + reason + ")",
              "the name of a task pack that `cp-host task-packs list` shows, or null");
    return nullptr;
  }
  const size_t before = diags.list().size();
  const json fields = plan.value("fields", json::object());
  std::set<std::string> declared;
  for (const auto& f : pack->doc["fields"]) {
    const std::string fname = f["name"].get<std::string>();
    declared.insert(fname);
    if (!fields.contains(fname)) {
      if (f.value("required", false))
        diags.add("/fields", "required", "the task pack '" + name + "' requires field '" + fname + "'",
                  "a value for " + fname + ": " + f.value("description", ""));
      continue;
    }
    std::string problem;
    if (!contract::field_value_ok(f, fields[fname], problem))
      diags.add("/fields/" + escape(fname), "field",
                "field '" + fname + "' of task pack '" + name + "': " + problem,
                "a " + f.value("type", std::string("string")) +
                    (f.contains("pattern") ? " matching " + f["pattern"].get<std::string>() : std::string()));
  }
  for (auto it = fields.begin(); it != fields.end(); ++it)
    if (!declared.count(it.key()))
      diags.add("/fields/" + escape(it.key()), "xref:field",
                "task pack '" + name + "' declares no field '" + it.key() + "'", "one of the pack's fields");
  fields_ok = diags.list().size() == before;
  return pack->doc;
}

// The texts of a plan a planner words as it likes (the pack's own wording is a suggestion); everything else
// of a plan that names a task pack is what the pack makes of the plan's fields.
bool free_text_key(const std::string& key) {
  static const std::set<std::string> texts{"title", "instruction", "summary", "risks", "next_role_context"};
  return texts.count(key) > 0;
}

std::string shown_plan_value(const json& v) {
  std::string s = v.is_null() ? std::string("nothing") : v.dump();
  return s.size() > 300 ? s.substr(0, 297) + "..." : s;
}

// `got` (a step, or one reviewer of a review step, at `at` in the plan) against `want`, what the pack makes
// there: every key but the free texts must be the same.
void compare_work(const json& got, const json& want, const std::string& at, const std::string& pack_name,
                  PlanDiagnostics& diags) {
  std::set<std::string> keys;
  for (auto it = got.begin(); it != got.end(); ++it) keys.insert(it.key());
  for (auto it = want.begin(); it != want.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    if (free_text_key(k)) continue;
    const json g = got.contains(k) ? got[k] : json(nullptr);
    const json w = want.contains(k) ? want[k] : json(nullptr);
    if (k == "reviewers" && g.is_array() && w.is_array() && g.size() == w.size()) {
      for (size_t j = 0; j < g.size(); ++j)
        if (g[j].is_object() && w[j].is_object())
          compare_work(g[j], w[j], at + "/reviewers/" + std::to_string(j), pack_name, diags);
      continue;
    }
    auto none = [](const json& v) { return v.is_null() || (v.is_array() && v.empty()); };
    if (g == w || (none(g) && none(w))) continue;  // an empty list and none say the same
    diags.add(at + "/" + escape(k), "xref:task_pack",
              "task pack '" + pack_name + "' makes " + shown_plan_value(w) +
                  " here from the plan's fields, but the plan has " + shown_plan_value(g) +
                  ": a plan of a task pack may word its titles, instructions and summaries, never change its "
                  "steps, runners, governance packs, paths, commands or tests",
              "exactly what the task pack makes (see `cp-host task-packs show " + pack_name + "`)");
  }
}

// A plan that names a task pack is held to it: its steps are the pack's chain rendered with the plan's
// fields (defaults filled in), key for key but for the free texts. A planner that claims a pack and adds a
// step, widens a path, swaps a runner or lowers a governance pack is refused.
void check_pack_binding(const json& plan, const json& pack, PlanDiagnostics& diags) {
  const std::string name = pack.value("name", "");
  const json want = contract::render_task_pack_plan(
      pack, contract::task_pack_values(pack, plan.value("fields", json::object())));
  for (const char* k : {"baseline_ref", "workflow_id", "require_pm_loop"}) {
    const json g = plan.contains(k) ? plan[k] : json(nullptr);
    const json w = want.contains(k) ? want[k] : json(nullptr);
    if (g != w)
      diags.add(std::string("/") + k, "xref:task_pack",
                "task pack '" + name + "' makes " + shown_plan_value(w) + " of " + k + ", but the plan has " +
                    shown_plan_value(g),
                "exactly what the task pack makes");
  }
  const json& got = plan["steps"];
  const json& steps = want["steps"];
  if (got.size() != steps.size()) {
    auto ids = [](const json& list) {
      std::string out;
      for (const auto& s : list) out += (out.empty() ? "" : ", ") + s.value("step_id", std::string("?"));
      return out;
    };
    diags.add("/steps", "xref:task_pack",
              "task pack '" + name + "' makes " + std::to_string(steps.size()) + " step(s) (" + ids(steps) +
                  ") from the plan's fields, but the plan has " + std::to_string(got.size()) + " (" +
                  ids(got) + "): a plan of a task pack never adds or drops a step",
              "the steps of the task pack");
    return;
  }
  for (size_t i = 0; i < got.size(); ++i)
    compare_work(got[i], steps[i], "/steps/" + std::to_string(i), name, diags);
}

// No path a step names (allowed, exclusive, output) reaches the git folder or the runtime folder.
void check_planned_paths(const json& steps, PlanDiagnostics& diags) {
  auto check_list = [&](const json& work, const char* key, const std::string& at) {
    if (!work.contains(key) || !work[key].is_array()) return;
    for (size_t j = 0; j < work[key].size(); ++j) {
      const json& item = work[key][j];
      const bool output = std::string(key) == "required_outputs";
      const json& p = output ? item.value("path", json()) : item;
      std::string why;
      if (p.is_string() && !contract::planned_path_ok(p.get<std::string>(), why))
        diags.add(at + "/" + key + "/" + std::to_string(j) + (output ? "/path" : ""), "path", why,
                  "a path relative to the repo root, outside .git and .runtime-cache");
    }
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string at = "/steps/" + std::to_string(i);
    for (const char* key : {"allowed_paths", "exclusive_paths", "required_outputs"})
      check_list(steps[i], key, at);
    if (steps[i].contains("reviewers"))
      for (size_t j = 0; j < steps[i]["reviewers"].size(); ++j)
        for (const char* key : {"allowed_paths", "required_outputs"})
          check_list(steps[i]["reviewers"][j], key, at + "/reviewers/" + std::to_string(j));
  }
}

bool closes_pm_loop(const std::vector<std::string>& roles) {
  static const std::vector<std::string> loop{"PM",      "TECH_LEAD", "WORKER", "REVIEWER",
                                             "TESTING", "TECH_LEAD", "PM"};
  if (roles.empty() || roles.front() != "PM" || roles.back() != "PM") return false;
  size_t k = 0;
  for (const auto& r : roles)
    if (k < loop.size() && r == loop[k]) ++k;
  return k == loop.size();
}

// The order of the steps: unique ids, depends_on naming earlier task or review steps only (so there is no
// cycle), each parallel group consecutive, handoffs joining the roles either side of them.
void check_order(const json& steps, bool require_pm_loop, PlanDiagnostics& diags) {
  std::map<std::string, size_t> seen;
  std::string open_group;
  std::set<std::string> closed_groups;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    const std::string at = "/steps/" + std::to_string(i);
    const std::string id = s["step_id"];
    if (seen.count(id))
      diags.add(at + "/step_id", "unique", "step_id '" + id + "' is used twice", "a step id of its own");
    for (size_t j = 0; s.contains("depends_on") && j < s["depends_on"].size(); ++j) {
      const std::string dep = s["depends_on"][j];
      auto earlier = seen.find(dep);
      if (earlier != seen.end() && steps[earlier->second]["kind"] != "handoff") continue;
      if (earlier != seen.end()) {
        diags.add(at + "/depends_on/" + std::to_string(j), "xref:depends_on",
                  "step '" + dep + "' is a handoff, which runs nothing to wait for",
                  "the step_id of an earlier task or review step");
        continue;
      }
      bool later = false;
      for (size_t k = i; k < steps.size(); ++k) later = later || steps[k]["step_id"] == dep;
      diags.add(at + "/depends_on/" + std::to_string(j), "xref:depends_on",
                later ? "step '" + dep +
                            "' comes at or after this step: a step may only wait for earlier ones "
                            "(which also rules out cycles)"
                      : "no step '" + dep + "' in the plan",
                "the step_id of an earlier task or review step");
    }
    seen.emplace(id, i);
    const std::string group = s.value("parallel_group", "");
    if (group != open_group) {
      if (!open_group.empty()) closed_groups.insert(open_group);
      if (!group.empty() && closed_groups.count(group))
        diags.add(
            at + "/parallel_group", "parallel_group",
            "parallel group '" + group + "' was interrupted by other steps: its steps must be consecutive",
            "move the group's steps together, or name this group differently");
      open_group = group;
    }
  }
  std::vector<std::string> roles;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    if (s["kind"] != "handoff") {
      roles.push_back(s["role"]);
      continue;
    }
    std::string before, after;
    for (size_t k = i; k-- > 0;)
      if (steps[k]["kind"] != "handoff") {
        before = steps[k]["role"];
        break;
      }
    for (size_t k = i + 1; k < steps.size(); ++k)
      if (steps[k]["kind"] != "handoff") {
        after = steps[k]["role"];
        break;
      }
    const std::string at = "/steps/" + std::to_string(i);
    if (s["from_role"] != before)
      diags.add(at + "/from_role", "handoff",
                "the handoff is from " + s["from_role"].get<std::string>() + " but the step before it is " +
                    (before.empty() ? "none" : before),
                "the role of the step before the handoff");
    if (s["to_role"] != after)
      diags.add(at + "/to_role", "handoff",
                "the handoff is to " + s["to_role"].get<std::string>() + " but the step after it is " +
                    (after.empty() ? "none" : after),
                "the role of the step after the handoff");
  }
  if (require_pm_loop && !closes_pm_loop(roles)) {
    std::string seq;
    for (const auto& r : roles) seq += (seq.empty() ? "" : " -> ") + r;
    diags.add("/require_pm_loop", "lifecycle", "the step roles (" + seq + ") do not close the PM loop",
              "PM -> TECH_LEAD -> WORKER -> REVIEWER -> TESTING -> TECH_LEAD -> PM in order, or false");
  }
}

std::string default_task_type(const std::string& role) {
  if (role == "WORKER") return "code_change";
  if (role == "REVIEWER") return "review";
  if (role == "TESTING") return "test";
  return "research";
}

// The contract one piece of work (a task step, or one reviewer of a review step) becomes.
json contract_of(const json& plan, const json& work, const std::string& role, const std::string& task_id) {
  const std::string runner = work["runner"];
  json ro{{"runner", runner}};
  if (work.contains("pack")) ro["pack"] = work["pack"];
  if (work.contains("commands")) ro["commands"] = work["commands"];
  if (work.contains("model")) ro["model"] = work["model"];
  if (work.contains("browser_tasks")) ro["browser_tasks"] = work["browser_tasks"];
  json c{
      {"schema_version", 1},
      {"task_id", task_id},
      {"task_type", work.value("task_type", default_task_type(role))},
      {"title", work["title"]},
      {"owner_agent", {{"role", kOwnerRole}, {"agent_id", kOwnerAgent}}},
      {"assigned_agent", {{"role", role}, {"agent_id", runner + "-" + core::ascii_lower(role)}}},
      {"inputs", {{"spec", work["instruction"]}}},
      {"allowed_paths", work["allowed_paths"]},
      {"acceptance_tests", work.value("acceptance_tests", json::array())},
      {"rollback", {{"strategy", "discard_worktree"}, {"baseline_ref", plan.value("baseline_ref", "HEAD")}}},
      {"runtime_options", ro}};
  for (const char* k : {"required_outputs", "tool_permissions", "budgets"})
    if (work.contains(k)) c[k] = work[k];
  if (plan.contains("workflow_id")) c["workflow_id"] = plan["workflow_id"];
  return c;
}

// Where a pointer of a contract built from the work at `base` (in step `step`) lands in the plan.
std::string plan_pointer(const std::string& cptr, const std::string& base, const std::string& step) {
  struct Map {
    const char* contract;
    std::string plan;
  };
  const Map maps[] = {{"/inputs/spec", base + "/instruction"},
                      {"/title", base + "/title"},
                      {"/task_type", base + "/task_type"},
                      {"/task_id", step + "/step_id"},
                      {"/assigned_agent/role", step + "/role"},
                      {"/assigned_agent", step + "/role"},
                      {"/allowed_paths", base + "/allowed_paths"},
                      {"/acceptance_tests", base + "/acceptance_tests"},
                      {"/required_outputs", base + "/required_outputs"},
                      {"/tool_permissions", base + "/tool_permissions"},
                      {"/budgets", base + "/budgets"},
                      {"/runtime_options/runner", base + "/runner"},
                      {"/runtime_options/pack", base + "/pack"},
                      {"/runtime_options/commands", base + "/commands"},
                      {"/runtime_options/model", base + "/model"},
                      {"/runtime_options/browser_tasks", base + "/browser_tasks"},
                      {"/rollback/baseline_ref", "/baseline_ref"},
                      {"/workflow_id", "/workflow_id"}};
  for (const auto& m : maps) {
    std::string c = m.contract;
    if (cptr == c || cptr.rfind(c + "/", 0) == 0) return m.plan + cptr.substr(c.size());
  }
  return base;
}

// A private folder for the contracts being validated; removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "cp-plan-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::system_error(errno, std::generic_category(), "make " + t);
    dir_ = fs::absolute(t);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path write(const std::string& name, const json& doc) const {
    fs::path p = dir_ / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << doc.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write a contract to validate: " + p.string());
    return p;
  }

 private:
  fs::path dir_;
};

struct BuiltContract {
  std::string file;  // name in the scratch folder
  std::string base;  // pointer of its work in the plan
  std::string step;  // pointer of its step
  std::string step_id;
};

}  // namespace

CompiledPlan compile_plan(const json& plan, const fs::path& root, const plugin::Registry* registry) {
  CompiledPlan out;
  PlanDiagnostics diags(plan);
  for (const auto& v : core::schema("plan_bundle").validate(plan))
    diags.add(v.pointer, v.rule, v.message, v.expected);
  if (!diags.empty()) {
    out.diagnostics = std::move(diags.list());
    return out;
  }
  bool fields_ok = false;
  const json pack = check_fields(plan, root, diags, fields_ok);
  if (fields_ok) check_pack_binding(plan, pack, diags);
  const json& steps = plan["steps"];
  check_planned_paths(steps, diags);
  check_order(steps, plan.value("require_pm_loop", false), diags);

  const std::string prefix = plan["task_pack"].is_string() ? plan["task_pack"].get<std::string>() : "plan";
  const std::string chain_id = prefix + "-" + core::sha256_hex(plan.dump()).substr(0, 12);
  json chain{{"schema_version", 1},
             {"chain_id", chain_id},
             {"title", plan["title"]},
             {"lifecycle", {{"require_pm_loop", plan.value("require_pm_loop", false)}}},
             {"steps", json::array()}};
  if (plan.contains("workflow_id")) chain["workflow_id"] = plan["workflow_id"];

  std::vector<BuiltContract> built;
  std::vector<json> contracts;
  auto task_id = [&](const std::string& tail) {
    std::string id = chain_id + "-" + tail;
    return id.size() > 128 ? id.substr(0, 128) : id;
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    const std::string at = "/steps/" + std::to_string(i);
    const std::string kind = s["kind"], id = s["step_id"];
    json step{{"step_id", id}, {"kind", kind}};
    if (kind == "handoff") {
      for (const char* k : {"from_role", "to_role", "summary", "risks", "next_role_context"})
        if (s.contains(k)) step[k] = s[k];
      chain["steps"].push_back(std::move(step));
      continue;
    }
    const std::string role = s["role"];
    step["role"] = role;
    if (kind == "task") {
      json c = contract_of(plan, s, role, task_id(id));
      built.push_back({"step-" + std::to_string(i) + ".json", at, at, id});
      contracts.push_back(c);
      step["contract"] = std::move(c);
    } else {
      step["reviewers"] = json::array();
      for (size_t j = 0; j < s["reviewers"].size(); ++j) {
        json c = contract_of(plan, s["reviewers"][j], role, task_id(id + "-r" + std::to_string(j + 1)));
        built.push_back({"step-" + std::to_string(i) + "-r" + std::to_string(j) + ".json",
                         at + "/reviewers/" + std::to_string(j), at, id});
        contracts.push_back(c);
        step["reviewers"].push_back(std::move(c));
      }
      if (s.contains("quorum")) {
        step["quorum"] = s["quorum"];
        if (s["quorum"].get<size_t>() > s["reviewers"].size())
          diags.add(at + "/quorum", "quorum",
                    "quorum " + s["quorum"].dump() + " is more than the " +
                        std::to_string(s["reviewers"].size()) + " reviewers",
                    "at most the number of reviewers");
      }
    }
    for (const char* k : {"depends_on", "parallel_group", "exclusive_paths", "continue_on_fail"})
      if (s.contains(k)) step[k] = s[k];
    chain["steps"].push_back(std::move(step));
  }

  // Every contract, validated as `cp-host validate` validates a contract file of this root.
  if (!contracts.empty()) {
    ScratchDir scratch;
    contract::ValidateOptions vo;
    std::map<std::string, const BuiltContract*> by_name;
    for (size_t k = 0; k < contracts.size(); ++k) {
      vo.paths.push_back(scratch.write(built[k].file, contracts[k]));
      by_name[built[k].file] = &built[k];
    }
    vo.root = root;
    vo.registry = registry;
    vo.check_plugins = registry != nullptr;
    vo.forced_schema = "task_contract";
    vo.jobs = 1;
    for (const auto& d : contract::validate(vo).diagnostics) {
      auto it = by_name.find(fs::path(d.file).filename().string());
      if (it == by_name.end()) {  // a file the contracts refer to (their pack) is itself invalid
        diags.add("", "xref:" + d.rule, d.file + ":" + std::to_string(d.line) + " " + contract::describe(d),
                  d.expected);
        continue;
      }
      const BuiltContract& b = *it->second;
      const std::string cptr = d.pointer.empty() ? std::string("(the whole contract)") : d.pointer;
      diags.add(plan_pointer(d.pointer, b.base, b.step), d.rule,
                "the contract of step '" + b.step_id + "' fails at " + cptr + ": " + d.message, d.expected);
    }
  }
  out.diagnostics = std::move(diags.list());
  out.ok = out.diagnostics.empty();
  if (out.ok) out.chain = std::move(chain);
  return out;
}
}  // namespace cp::control
