// Gate `diff_scope`: every path the run added, modified, deleted or renamed lies inside the contract's
// allowed_paths. Paths are judged after resolving '..' and symlinks: a change whose real location (or,
// for a symlink, whose target) falls outside the worktree or outside allowed_paths is a violation.
#include <cortexpilot/plugin.hpp>

#include "../../common/path_guard.hpp"
#include "../../common/path_match.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "always_allowed": {"type": "array", "items": {"type": "string"},
                       "description": "Extra allowed paths on top of the contract's (e.g. a changelog)."}
  }
})";

class DiffScopeGate : public cp::Gate {
 public:
  DiffScopeGate(cp::Context&, const std::string& config_json) {
    extra_ = json::parse(config_json).value("always_allowed", std::vector<std::string>{});
  }

  std::string evaluate(cp::Context&, const std::string& input_json) override {
    json in = json::parse(input_json);
    if (!in.contains("workspace") || !in["workspace"].is_string())
      throw cp::Error(CP_E_INVALID, "gate input lacks /workspace");
    if (!in.contains("changes") || !in["changes"].is_array())
      throw cp::Error(CP_E_INVALID, "gate input lacks /changes: the host must list the run's changes");
    std::vector<std::string> allowed = extra_;
    if (in.contains("contract") && in["contract"].contains("allowed_paths"))
      for (const auto& a : in["contract"]["allowed_paths"]) allowed.push_back(a.get<std::string>());
    if (allowed.empty()) throw cp::Error(CP_E_INVALID, "contract has no allowed_paths");
    fs::path ws = in["workspace"].get<std::string>();
    std::error_code ec;
    fs::path real_ws = fs::weakly_canonical(ws, ec);
    if (ec) throw cp::Error(CP_E_INVALID, "workspace cannot be resolved: " + ws.string());

    json diags = json::array();
    size_t checked = 0;
    auto violation = [&](const std::string& path, const std::string& status, const std::string& why) {
      diags.push_back({{"severity", "error"},
                       {"rule", "diff_scope"},
                       {"path", path},
                       {"message", status + " " + path + ": " + why}});
    };
    auto allowed_rel = [&](const std::string& rel) {
      for (const auto& a : allowed)
        if (cp::plugins::path_allowed(a, rel)) return true;
      return false;
    };
    auto judge = [&](const std::string& raw, const std::string& status) {
      ++checked;
      fs::path p(raw);
      if (raw.empty() || p.is_absolute()) return violation(raw, status, "absolute or empty path");
      fs::path norm = p.lexically_normal();
      std::string rel = norm.generic_string();
      if (rel == ".." || rel.rfind("../", 0) == 0)
        return violation(raw, status, "path leaves the repository via '..'");
      if (!allowed_rel(rel)) return violation(raw, status, "outside allowed_paths");
      // The textual path is allowed; now the real one. Resolve the parent folder through symlinks: a
      // symlinked folder can route an allowed-looking path to anywhere.
      fs::path full = real_ws / norm;
      fs::path parent_real = fs::weakly_canonical(full.parent_path(), ec);
      if (ec) return violation(raw, status, "parent folder cannot be resolved: " + ec.message());
      if (!cp::plugins::is_within(real_ws, parent_real))
        return violation(
            raw, status,
            "a symlinked folder takes it outside the worktree (to " + parent_real.string() + ")");
      fs::path real_rel = (parent_real / norm.filename()).lexically_relative(real_ws);
      if (!ec && !allowed_rel(real_rel.generic_string()))
        return violation(
            raw, status,
            "resolves through a symlink to " + real_rel.generic_string() + ", outside allowed_paths");
      // A symlink the run created or changed: its target must stay inside the worktree and allowed_paths.
      if (status != "deleted" && fs::is_symlink(full, ec)) {
        fs::path target = fs::read_symlink(full, ec);
        fs::path resolved =
            target.is_absolute() ? target.lexically_normal() : (parent_real / target).lexically_normal();
        fs::path resolved_real = fs::weakly_canonical(resolved, ec);
        if (!ec) resolved = resolved_real;
        if (!cp::plugins::is_within(real_ws, resolved))
          return violation(raw, status, "symlink points outside the worktree (to " + target.string() + ")");
        fs::path trel = fs::relative(resolved, real_ws, ec);
        if (ec || !allowed_rel(trel.generic_string()))
          return violation(raw, status, "symlink points outside allowed_paths (to " + target.string() + ")");
      }
    };
    for (const auto& c : in["changes"]) {
      std::string status = c.value("status", "modified");
      judge(c.value("path", ""), status);
      if (c.contains("old_path") && c["old_path"].is_string())
        judge(c["old_path"].get<std::string>(), status + " (from)");
    }
    bool pass = diags.empty();
    json verdict{{"verdict", pass ? "pass" : "fail"},
                 {"summary", pass ? "all " + std::to_string(checked) + " changed path(s) inside allowed_paths"
                                  : std::to_string(diags.size()) + " changed path(s) outside allowed_paths"},
                 {"diagnostics", diags},
                 {"details", {{"allowed_paths", allowed}, {"paths_checked", checked}}}};
    if (!pass)
      verdict["next_action"] =
          "The run changed paths outside allowed_paths: review the diff_scope report, then either narrow the "
          "task or widen allowed_paths in the contract, and run it again.";
    return verdict.dump();
  }

 private:
  std::vector<std::string> extra_;
};

}  // namespace

CP_PLUGIN("cp-gate-diff-scope", "0.1.0",
          cp::gate<DiffScopeGate>("diff_scope", "0.1.0",
                                  "Every changed path (after '..' and symlinks) lies inside allowed_paths",
                                  kConfigSchema, R"(["diff"])", CP_FLAG_GATE_POLICY))
