#include "run/evidence_packs.hpp"
#include "core/clock.hpp"

#include "core/sha256.hpp"
#include "store/event_log.hpp"

#include <fstream>
#include <map>
#include <sstream>

namespace cp::run {

namespace fs = std::filesystem;
using nlohmann::json;

std::string file_tail(const fs::path& file, size_t bytes) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) return {};
  auto size = static_cast<size_t>(in.tellg());
  size_t start = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string s(size - start, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  if (start > 0) {
    size_t nl = s.find('\n');
    if (nl != std::string::npos && nl + 1 < s.size() && nl < 200) s.erase(0, nl + 1);
  }
  return s;
}

namespace {

std::string file_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return core::sha256_hex(ss.str());
}

// What to do next. The gate that decided the verdict may say it (its verdict's next_action, `advice` here);
// otherwise the line is generic, chosen by what kind of gate failed (policy or not), never by its id.
std::string next_action(const SealFacts& f, const json& failed,
                        const std::map<std::string, std::string>& advice) {
  auto advice_of = [&advice](const std::string& gate) {
    auto it = advice.find(gate);
    return it == advice.end() ? std::string() : it->second;
  };
  if (f.verdict == "denied") {
    for (const auto& g : failed) {
      std::string id = g.value("gate_id", "");
      if (g.value("verdict", "") != "fail" || !f.policy_gates.count(id)) continue;
      if (std::string a = advice_of(id); !a.empty()) return a;
      return "Gate " + id + " found that the run broke a rule: read its report (reports/gate_" + id +
             ".json), then change the task or the contract, and run it again.";
    }
    return "The runner tried a command the allowlist does not admit: add it to "
           "policies/command_allowlist.json "
           "if it is safe, or change the task.";
  }
  if (f.verdict == "timeout")
    return "The run ran out of time: raise budgets.wall_time_sec (or timeout_retry.timeout_sec) or split the "
           "task.";
  if (f.verdict == "cancelled") return "The run was cancelled; run it again when ready.";
  if (f.verdict == "failure") {
    for (const auto& g : failed)
      if (g.value("verdict", "") == "fail")
        if (std::string a = advice_of(g.value("gate_id", "")); !a.empty()) return a;
    return "Read the failing gate's report and the runner's command results, fix the cause, and run again.";
  }
  return "cp-host or a plugin could not finish the run: read the reason and the errored gate's report, fix "
         "the "
         "setup (plugins, policies, repository), and run again.";
}

}  // namespace

json make_proof_pack(const SealFacts& f, const fs::path& bundle_dir) {
  json gates = json::array();
  for (const auto& g : f.gates) {
    json e{{"gate_id", g["gate_id"]}, {"verdict", g["verdict"]}, {"required", g.value("required", true)}};
    if (g.contains("report") && g["report"].is_string()) {
      e["report"] = g["report"];
      e["report_sha256"] = file_sha256(bundle_dir / g["report"].get<std::string>());
    }
    gates.push_back(e);
  }
  return json{{"schema_version", 1},
              {"kind", "proof_pack"},
              {"run_id", f.run_id},
              {"task_id", f.task_id},
              {"verdict", f.verdict},
              {"contract_sha256", f.contract_sha256},
              {"baseline_commit", f.baseline_commit},
              {"diff_sha256", f.diff_sha256},
              {"changes", f.changes},
              {"gates", gates},
              {"created_at", core::now_utc_iso()}};
}

json make_incident_pack(const SealFacts& f, const fs::path& bundle_dir) {
  json failed = json::array();
  std::map<std::string, std::string> advice;  // gate id -> its verdict's next_action
  for (const auto& g : f.gates) {
    std::string v = g.value("verdict", "");
    if (v == "pass" || v == "warn" || v == "skipped") continue;
    json e{{"gate_id", g["gate_id"]}, {"verdict", v}, {"summary", g.value("summary", "")}};
    if (g.contains("report") && g["report"].is_string()) {
      e["report"] = g["report"];
      json report = json::parse(std::ifstream(bundle_dir / g["report"].get<std::string>()), nullptr, false);
      if (report.is_object() && report.contains("next_action") && report["next_action"].is_string())
        advice[g.value("gate_id", "")] = report["next_action"].get<std::string>();
      if (report.is_object() && report.contains("diagnostics")) {
        json d = json::array();
        for (const auto& x : report["diagnostics"]) {
          if (d.size() >= 20) break;
          d.push_back(x);
        }
        e["diagnostics"] = d;
      }
    }
    failed.push_back(e);
  }
  // Log tails: the tests' and the runner's output, newest problems last.
  json tails = json::object();
  std::error_code ec;
  for (const char* sub : {"artifacts/tests", "artifacts/tool"}) {
    fs::path dir = bundle_dir / sub;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> logs;
    for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec) && it->path().extension() == ".log" && it->file_size(ec) > 0)
        logs.push_back(it->path());
    std::sort(logs.begin(), logs.end());
    for (const auto& p : logs) {
      if (tails.size() >= 16) break;
      tails[fs::relative(p, bundle_dir).string()] = file_tail(p, 2048);
    }
  }
  return json{{"schema_version", 1},
              {"kind", "incident_pack"},
              {"run_id", f.run_id},
              {"task_id", f.task_id},
              {"verdict", f.verdict},
              {"reason", f.reason},
              {"contract_sha256", f.contract_sha256},
              {"baseline_commit", f.baseline_commit},
              {"failed_gates", failed},
              {"runner", f.runner},
              {"changes", f.changes},
              {"log_tails", tails},
              {"suggested_next_action", next_action(f, failed, advice)},
              {"created_at", core::now_utc_iso()}};
}

json make_approval_pack(const SealFacts& f, const std::string& pack_id) {
  return json{{"schema_version", 1},
              {"kind", "approval_pack"},
              {"run_id", f.run_id},
              {"task_id", f.task_id},
              {"pack", pack_id},
              {"verdict_if_approved", f.verdict},
              {"reason", "pack '" + pack_id + "' requires a human approval before the result counts"},
              {"contract_sha256", f.contract_sha256},
              {"diff_sha256", f.diff_sha256},
              {"changes", f.changes},
              {"gates", f.gates},
              {"created_at", core::now_utc_iso()}};
}

}  // namespace cp::run
