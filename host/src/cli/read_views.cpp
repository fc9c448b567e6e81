#include "cli/read_views.hpp"

#include "cli/colour.hpp"
#include "core/json_depth.hpp"

#include <iomanip>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

// A string field of an object, or `fallback`: what a server (or a damaged file) sends is not trusted to
// have the shape it should.
// Control characters are shown as '?', so that no field (a title, an event type) can drive the terminal.
std::string text_of(const json& j, const char* key, const std::string& fallback = "") {
  std::string s =
      j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

// "landlock+seccomp (Landlock ABI 7), network deny, processes held by cgroup" or "none: <why>".
std::string sandbox_line(const json& sb) {
  if (!sb.is_object() || !sb.contains("kind"))
    return "- (not recorded: the run predates sandboxing or never started)";
  std::string kind = sb.value("kind", "");
  if (kind == "none") return "none: " + sb.value("why_none", "unsandboxed");
  std::string s = kind;
  if (sb.contains("landlock_abi")) s += " (Landlock ABI " + std::to_string(sb.value("landlock_abi", 0)) + ")";
  s += ", network " + sb.value("network", "deny");
  if (sb.contains("process_tree")) s += ", processes held by " + sb.value("process_tree", "");
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
      std::cout << "report    " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
  std::cout << "bundle    " << bundle << "\n";
  const std::string state = text_of(verification, "state");
  if (state == "intact")
    std::cout << "verified  intact, signed by key " << text_of(verification, "key_id") << "\n";
  else if (state == "live")
    std::cout << "verified  not yet (the run is live)\n";
  else if (verification.contains("problems") && verification["problems"].is_array())
    for (const auto& p : verification["problems"])
      std::cout << "TAMPERED: " << run_id << ": " << (p.is_string() ? p.get<std::string>() : p.dump())
                << "\n";
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

}  // namespace cp::cli
