#include "chain/chain_spec.hpp"
#include "core/json_file.hpp"

#include "core/json_depth.hpp"
#include "core/json_locator.hpp"
#include "core/schema_catalog.hpp"
#include "store/bundle.hpp"

#include <fstream>
#include <sstream>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr std::uintmax_t kMaxChainBytes = 16u << 20;  // as for contracts (`cp-host validate`)
}

const std::vector<std::string>& pm_loop() {
  static const std::vector<std::string> loop{"PM",      "TECH_LEAD", "WORKER", "REVIEWER",
                                             "TESTING", "TECH_LEAD", "PM"};
  return loop;
}

bool closes_pm_loop(const std::vector<std::string>& roles) {
  if (roles.empty() || roles.front() != "PM" || roles.back() != "PM") return false;
  size_t k = 0;
  for (const auto& r : roles)
    if (k < pm_loop().size() && r == pm_loop()[k]) ++k;
  return k == pm_loop().size();
}

LoadResult load_chain(const fs::path& chain_file, const fs::path& root, const fs::path& plugins_dir,
                      const plugin::Registry* registry) {
  LoadResult out;
  std::error_code size_ec;
  if (auto size = fs::file_size(chain_file, size_ec); !size_ec && size > kMaxChainBytes) {
    out.error = chain_file.string() + " is " + std::to_string(size >> 20) + " MiB; refused unread (limit " +
                std::to_string(kMaxChainBytes >> 20) + " MiB)";
    return out;
  }
  std::ifstream in(chain_file, std::ios::binary);
  if (!in) {
    out.error = "cannot read chain file " + chain_file.string();
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string display = chain_file.string();
  if (!core::json_depth_ok(text)) {
    out.error = display + " nests deeper than " + std::to_string(core::kMaxJsonDepth) +
                " levels of arrays and objects; refused unparsed";
    return out;
  }
  json doc = json::parse(text, nullptr, false);
  auto add = [&](const std::string& pointer, const std::string& rule, const std::string& message,
                 const std::string& expected) {
    contract::Diagnostic d;
    d.file = display;
    d.line = core::line_of_pointer(text, pointer);
    d.pointer = pointer;
    d.rule = rule;
    d.message = message;
    d.expected = expected;
    d.schema = "task_chain";
    out.diagnostics.push_back(d);
  };
  if (doc.is_discarded()) {
    out.error = display + " is not valid JSON (run `cp-host validate " + display + "` for the position)";
    return out;
  }
  for (const auto& v : core::schema("task_chain").validate(doc))
    add(v.pointer, v.rule, v.message, v.expected);
  if (!out.diagnostics.empty()) {
    out.error = "the chain is invalid";
    return out;
  }

  ChainSpec& spec = out.spec;
  spec.doc = doc;
  spec.chain_id = doc["chain_id"];
  spec.workflow_id = doc.value("workflow_id", "");
  spec.require_pm_loop = doc.value("lifecycle", json::object()).value("require_pm_loop", true);
  const fs::path base = chain_file.parent_path();
  std::vector<fs::path> all_contracts;
  std::vector<std::pair<std::string, fs::path>> role_checks;  // pointer of the role, contract
  for (size_t i = 0; i < doc["steps"].size(); ++i) {
    const json& s = doc["steps"][i];
    const std::string ptr = "/steps/" + std::to_string(i);
    Step st;
    st.id = s["step_id"];
    st.kind = s["kind"];
    st.role = s.value("role", "");
    for (const auto& prev : spec.steps)
      if (prev.id == st.id)
        add(ptr + "/step_id", "unique", "step_id '" + st.id + "' is used twice", "a unique id");
    auto resolve = [&](const std::string& rel, const std::string& p) {
      fs::path c = fs::path(rel).is_absolute() ? fs::path(rel) : base / rel;
      if (!fs::is_regular_file(c))
        add(p, "xref:contract", "contract file " + c.string() + " does not exist",
            "a task contract path, relative to the chain file");
      else
        all_contracts.push_back(c), role_checks.emplace_back(ptr + "/role", c);
      return c;
    };
    if (st.kind == "task") {
      st.contracts.push_back(resolve(s["contract"], ptr + "/contract"));
    } else if (st.kind == "review") {
      for (size_t j = 0; j < s["reviewers"].size(); ++j)
        st.contracts.push_back(resolve(s["reviewers"][j], ptr + "/reviewers/" + std::to_string(j)));
      st.quorum = s.value("quorum", static_cast<int>(st.contracts.size()));
      if (st.quorum > static_cast<int>(st.contracts.size()))
        add(ptr + "/quorum", "quorum",
            "quorum " + std::to_string(st.quorum) + " is more than the " +
                std::to_string(st.contracts.size()) + " reviewers",
            "at most the number of reviewers");
    } else {
      st.handoff = {{"from_role", s["from_role"]},
                    {"to_role", s["to_role"]},
                    {"summary", s["summary"]},
                    {"risks", s.value("risks", json::array())},
                    {"next_role_context", s.value("next_role_context", "")}};
    }
    spec.steps.push_back(std::move(st));
  }

  // Each contract must be valid on its own, exactly as `cp-host validate` says.
  if (!all_contracts.empty()) {
    contract::ValidateOptions vo;
    vo.paths = all_contracts;
    vo.root = root;
    vo.plugins_dir = plugins_dir;
    vo.registry = registry;
    vo.check_plugins = registry != nullptr;
    vo.forced_schema = "task_contract";
    vo.jobs = 1;
    auto rep = contract::validate(vo);
    for (const auto& d : rep.diagnostics) out.diagnostics.push_back(d);
  }
  // A step's role is the role its contract assigns: the chain cannot give a contract another role.
  for (const auto& [ptr, file] : role_checks) {
    json c = core::read_json_file(file);
    const json& role = doc.at(json::json_pointer(ptr));
    std::string assigned = c.is_object() ? c.value("assigned_agent", json::object()).value("role", "") : "";
    if (c.is_object() && role.is_string() && role.get<std::string>() != assigned)
      add(ptr, "xref:role",
          "the step's role is " + role.get<std::string>() + " but " + file.filename().string() + " assigns " +
              (assigned.empty() ? "no role" : assigned),
          "the role in the contract's /assigned_agent/role");
  }
  // Handoffs join the roles either side of them.
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const Step& st = spec.steps[i];
    if (st.kind != "handoff") continue;
    const std::string ptr = "/steps/" + std::to_string(i);
    std::string before, after;
    for (size_t k = i; k-- > 0;)
      if (spec.steps[k].kind != "handoff") {
        before = spec.steps[k].role;
        break;
      }
    for (size_t k = i + 1; k < spec.steps.size(); ++k)
      if (spec.steps[k].kind != "handoff") {
        after = spec.steps[k].role;
        break;
      }
    if (st.handoff["from_role"] != before)
      add(ptr + "/from_role", "handoff",
          "the handoff is from " + st.handoff["from_role"].get<std::string>() +
              " but the step before it is " + (before.empty() ? "none" : before),
          "the role of the step before the handoff");
    if (st.handoff["to_role"] != after)
      add(ptr + "/to_role", "handoff",
          "the handoff is to " + st.handoff["to_role"].get<std::string>() + " but the step after it is " +
              (after.empty() ? "none" : after),
          "the role of the step after the handoff");
  }
  if (spec.require_pm_loop) {
    std::vector<std::string> roles;
    for (const auto& st : spec.steps)
      if (st.kind != "handoff") roles.push_back(st.role);
    if (!closes_pm_loop(roles)) {
      std::string seq;
      for (const auto& r : roles) seq += (seq.empty() ? "" : " -> ") + r;
      add("/steps", "lifecycle", "the step roles (" + seq + ") do not close the PM loop",
          "PM -> TECH_LEAD -> WORKER -> REVIEWER -> TESTING -> TECH_LEAD -> PM in order, or set "
          "/lifecycle/require_pm_loop to false");
    }
  }
  if (!out.diagnostics.empty()) {
    out.error = "the chain is invalid";
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace cp::chain
