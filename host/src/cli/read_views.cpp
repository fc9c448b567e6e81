#include "cli/read_views.hpp"

#include "cli/colour.hpp"
#include "cli/json_fields.hpp"
#include "core/json_depth.hpp"

#include <unistd.h>

#include <iomanip>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

std::string terminal_safe(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += '?';
      continue;
    }
    // The C1 controls in UTF-8 (U+0080..U+009F: some terminals take U+009B as CSI) and the bidirectional
    // overrides and isolates (U+202A..U+202E, U+2066..U+2069), which reorder what is shown.
    const auto next = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0; };
    if (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) {
      out += '?';
      i += 1;
      continue;
    }
    if (c == 0xe2 && ((next(1) == 0x80 && next(2) >= 0xaa && next(2) <= 0xae) ||
                      (next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9))) {
      out += '?';
      i += 2;
      continue;
    }
    out += static_cast<char>(c);
  }
  return out;
}

json terminal_safe_json(json j) {
  if (j.is_string()) return terminal_safe(j.get<std::string>());
  if (j.is_array()) {
    for (auto& e : j) e = terminal_safe_json(std::move(e));
  } else if (j.is_object()) {
    json out = json::object();
    for (auto& [k, v] : j.items()) out[terminal_safe(k)] = terminal_safe_json(std::move(v));
    return out;
  }
  return j;
}

namespace {

// "landlock+seccomp (Landlock ABI 7), network deny, processes held by cgroup" or "none: <why>".
std::string sandbox_line(const json& sb) {
  if (!sb.is_object() || !sb.contains("kind"))
    return "- (not recorded: the run predates sandboxing or never started)";
  std::string kind = text_of(sb, "kind");
  if (kind == "none") return "none: " + text_of(sb, "why_none", "unsandboxed");
  std::string s = kind;
  if (sb.contains("landlock_abi"))
    s += " (Landlock ABI " + std::to_string(count_of(sb, "landlock_abi")) + ")";
  s += ", network " + text_of(sb, "network", "deny");
  if (sb.contains("process_tree")) s += ", processes held by " + text_of(sb, "process_tree");
  return s;
}

}  // namespace

void print_runs_table(const json& rows, const std::string& where) {
  if (!rows.is_array() || rows.empty()) {
    std::cout << "no runs " << where << "\n";
    return;
  }
  std::cout << std::left << std::setw(48) << "RUN" << std::setw(18) << "STATUS" << std::setw(11) << "VERDICT"
            << std::setw(10) << "RUNNER"
            << "CREATED\n";
  for (const auto& r : rows)
    std::cout << std::setw(48) << text_of(r, "run_id") << std::setw(18) << text_of(r, "status")
              << std::setw(11) << text_of(r, "verdict", "-") << std::setw(10) << text_of(r, "runner")
              << text_of(r, "created_at") << "\n";
}

void print_run_detail(const std::string& run_id, const json& m, const std::string& bundle,
                      const json& verification) {
  const json duration =
      m.contains("duration_ms") && m["duration_ms"].is_number() ? m["duration_ms"] : json(0);
  std::cout << "run       " << text_of(m, "run_id") << "\n"
            << "task      " << text_of(m, "task_id") << "\n"
            << "status    " << text_of(m, "status") << "\n"
            << "verdict   " << paint_verdict(text_of(m, "verdict", "-")) << "\n"
            << "reason    " << text_of(m, "reason") << "\n"
            << "runner    " << text_of(m, "runner") << "   pack " << text_of(m, "pack") << "\n"
            << "baseline  " << text_of(m, "baseline_commit") << "\n"
            << "sandbox   " << sandbox_line(m.contains("sandbox") ? m["sandbox"] : json::object()) << "\n"
            << "created   " << text_of(m, "created_at") << "   duration " << duration.dump() << " ms\n";
  if (m.contains("gates") && m["gates"].is_array())
    for (const auto& gt : m["gates"])
      std::cout << "gate      " << std::left << std::setw(20) << text_of(gt, "gate_id") << std::setw(8)
                << text_of(gt, "verdict") << text_of(gt, "summary") << "\n";
  if (m.contains("reports") && m["reports"].is_object())
    for (const auto& [k, v] : m["reports"].items())
      std::cout << "report    " << terminal_safe(v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  std::cout << "bundle    " << terminal_safe(bundle) << "\n";
  const std::string state = text_of(verification, "state");
  if (state == "intact")
    std::cout << "verified  intact, signed by key " << text_of(verification, "key_id") << "\n";
  else if (state == "live")
    std::cout << "verified  not yet (the run is live)\n";
  else if (verification.contains("problems") && verification["problems"].is_array())
    for (const auto& p : verification["problems"])
      std::cout << "TAMPERED: " << terminal_safe(run_id) << ": "
                << terminal_safe(p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
}

bool print_event(const std::string& line, bool as_json, const std::string& run_id) {
  json e = core::json_depth_ok(line) ? json::parse(line, nullptr, false) : json(json::value_t::discarded);
  if (!e.is_object()) {
    std::cerr << "cp-host: unparsable event line skipped (run `cp-host runs verify " << run_id << "`)\n";
    return false;
  }
  if (as_json) {
    std::cout << line << "\n";
    return true;
  }
  const json seq = e.contains("seq") && e["seq"].is_number() ? e["seq"] : json(0);
  const json payload = e.contains("payload") ? e["payload"] : json::object();
  // Dumped as JSON, a payload's control characters are escaped: an event cannot drive the terminal.
  std::cout << std::right << std::setw(4) << seq.dump() << "  " << text_of(e, "ts") << "  " << std::left
            << std::setw(22) << text_of(e, "type") << " "
            << payload.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return true;
}

void print_queue_items(const json& list) {
  const json items =
      list.is_object() && list.contains("items") && list["items"].is_array() ? list["items"] : json::array();
  if (items.empty()) {
    std::cout << "the queue is empty\n";
  } else {
    std::cout << std::left << std::setw(28) << "ITEM" << std::setw(10) << "STATE" << std::setw(4) << "PRI"
              << std::setw(9) << "ATTEMPT" << std::setw(10) << "SLA"
              << "TASK / WAITING ON / RESULT\n";
    for (const auto& it : items) {
      std::string note = text_of(it, "task_id");
      if (it.contains("waiting_on")) note += "  (" + text_of(it, "waiting_on") + ")";
      if (it.contains("status")) note += "  -> " + text_of(it, "status");
      if (it.contains("run_id")) note += "  run " + text_of(it, "run_id");
      const json pri = it.contains("priority") && it["priority"].is_number() ? it["priority"] : json(0);
      const size_t attempts =
          it.contains("attempts") && it["attempts"].is_array() ? it["attempts"].size() : 0;
      std::cout << std::setw(28) << text_of(it, "item_id") << std::setw(10) << text_of(it, "state")
                << std::setw(4) << pri.dump() << std::setw(9) << attempts << std::setw(10)
                << text_of(it, "sla_state") << note << "\n";
    }
  }
  if (list.is_object() && list.contains("problems") && list["problems"].is_array())
    for (const auto& p : list["problems"])
      std::cerr << "warning: queue.jsonl line "
                << (p.contains("line") && p["line"].is_number() ? p["line"].dump() : std::string("?")) << ": "
                << text_of(p, "message") << "\n";
}

void print_approvals(const json& pending) {
  if (!pending.is_array() || pending.empty()) {
    std::cout << "no run is awaiting approval\n";
    return;
  }
  for (const auto& p : pending) {
    const size_t approvals = p.contains("approvals") && p["approvals"].is_array() ? p["approvals"].size() : 0;
    const json required = p.contains("approvers_required") && p["approvers_required"].is_number()
                              ? p["approvers_required"]
                              : json(1);
    std::cout << text_of(p, "run_id") << "  task " << text_of(p, "task_id") << "  pack " << text_of(p, "pack")
              << "  approvals " << approvals << "/" << required.dump() << "  deadline "
              << text_of(p, "deadline", "none") << "\n";
  }
}

void print_verification(const json& c) {
  const std::string id = text_of(c, "run_id");
  const std::string state = text_of(c, "state");
  if (flag_of(c, "ok", false)) {
    const std::string verdict = text_of(c, "verdict");
    std::cout << "ok: " << id << ": " << text_of(c, "status") << (verdict.empty() ? "" : " " + verdict)
              << ", " << count_of(c, "events") << " events, every file as sealed, signed by key "
              << text_of(c, "key_id") << "\n";
  } else if (state == "live") {
    std::cout << "live: " << id << ": still running; verify it once it is sealed\n";
  } else {
    const json& problems = array_of(c, "problems");
    for (const auto& p : problems)
      std::cout << "TAMPERED: " << id << ": "
                << terminal_safe(p.is_string() ? p.get<std::string>() : p.dump()) << "\n";
    if (problems.empty())
      std::cout << "TAMPERED: " << id << ": " << (state.empty() ? "not verified" : state) << "\n";
  }
}

void print_contract_view(const json& v) {
  const json& compiled = object_of(v, "contract");
  const json& c = object_of(compiled, "contract");
  const std::string recorded = text_of(v, "contract_sha256", "(none)");
  std::cout << "run       " << text_of(v, "run_id") << "\n"
            << "task      " << text_of(c, "task_id") << "\n"
            << "sha256    " << text_of(v, "sha256")
            << (flag_of(v, "sha256_matches", false) ? "  (as the manifest recorded)"
                                                    : "  DOES NOT MATCH the manifest's " + recorded)
            << "\n";
  if (text_of(v, "kind", "run") != "run") {
    std::cout << "kind      " << text_of(v, "kind") << " (contract.json holds the chain; see --json)\n";
    return;
  }
  std::cout << "runner    " << text_of(object_of(c, "runtime_options"), "runner") << "   pack "
            << text_of(object_of(compiled, "pack"), "pack_id") << "\n"
            << "baseline  " << text_of(object_of(c, "rollback"), "baseline_ref", "HEAD") << "\n";
  for (const auto& p : array_of(c, "allowed_paths"))
    std::cout << "allowed   " << terminal_safe(p.dump()) << "\n";
  for (const auto& gt : array_of(compiled, "gates"))
    std::cout << "gate      " << text_of(gt, "plugin") << (flag_of(gt, "required", true) ? "" : " (advisory)")
              << "\n";
  std::cout << "(the whole compiled contract: --json)\n";
}

void print_reports_view(const json& v) {
  const json& packs = object_of(v, "packs");
  const json& reports = object_of(v, "reports");
  const json& skipped = array_of(v, "skipped");
  for (const auto& [name, r] : packs.items())
    std::cout << "pack      " << std::left << std::setw(36) << terminal_safe(name) << text_of(r, "verdict")
              << "\n";
  for (const auto& [name, r] : reports.items())
    std::cout << "report    " << std::left << std::setw(36) << terminal_safe(name) << text_of(r, "verdict")
              << "\n";
  for (const auto& s : skipped)
    std::cout << "skipped   " << text_of(s, "name") << ": " << text_of(s, "why") << "\n";
  if (packs.empty() && reports.empty() && skipped.empty()) std::cout << "no reports\n";
}

void print_artifacts_view(const json& v) {
  for (const auto& a : array_of(v, "artifacts"))
    std::cout << std::right << std::setw(12) << count_of(a, "size") << "  " << std::left << std::setw(8)
              << text_of(a, "type") << std::setw(26) << text_of(a, "media_type", "-") << text_of(a, "path")
              << "\n";
  std::cout << count_of(v, "count") << " entries, " << count_of(v, "total_bytes") << " bytes in files"
            << (flag_of(v, "truncated", false) ? " (listing cut at its bound)" : "") << "\n";
}

void print_diff_view(const json& view) {
  auto letter = [](const std::string& status) -> const char* {
    if (status == "added") return "A";
    if (status == "deleted") return "D";
    if (status == "renamed") return "R";
    if (status == "copied") return "C";
    return "M";
  };
  for (const auto& f : array_of(view, "files")) {
    std::string path = text_of(f, "path");
    if (f.is_object() && f.contains("old_path")) path = text_of(f, "old_path") + " -> " + path;
    std::cout << " " << letter(text_of(f, "status", "modified")) << " " << std::left << std::setw(48) << path
              << (flag_of(f, "binary", false) ? " binary"
                                              : " +" + std::to_string(count_of(f, "added")) + " -" +
                                                    std::to_string(count_of(f, "removed")))
              << "\n";
  }
  const json& t = object_of(view, "totals");
  std::cout << count_of(t, "files") << " files changed, " << count_of(t, "added") << " insertions(+), "
            << count_of(t, "removed") << " deletions(-)\n";
}

void print_patch(const std::string& patch) {
  if (!::isatty(STDOUT_FILENO)) {
    std::cout << patch;
    return;
  }
  std::string shown = patch;
  for (char& c : shown)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) c = '?';
  std::cout << shown;
}

}  // namespace cp::cli
