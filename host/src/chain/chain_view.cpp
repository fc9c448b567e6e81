#include "chain/chain_view.hpp"
#include "core/json_text.hpp"

#include "core/json_depth.hpp"
#include "core/json_file.hpp"
#include "store/bundle.hpp"
#include "store/event_log.hpp"
#include "store/run_index.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The chain's own events (CHAIN_*), in order. The log is opened without following a link and without
// blocking, must be a regular file, and is read up to kMaxChainEventBytes; lines that are too long, too
// deep or not JSON objects are passed over. `complete` is false when the cap cut the reading short.
std::vector<json> chain_events(const fs::path& log, bool& complete) {
  std::vector<json> out;
  complete = true;
  int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return out;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return out;
  }
  std::string text;
  size_t want = static_cast<size_t>(std::min<off_t>(st.st_size, static_cast<off_t>(kMaxChainEventBytes)));
  complete = static_cast<size_t>(st.st_size) <= kMaxChainEventBytes;
  text.resize(want);
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::read(fd, text.data() + got, want - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) break;  // a torn last line (an append in progress): not yet an event
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    if (line.empty() || line.size() > store::kMaxEventLine || !core::json_depth_ok(line)) continue;
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || !e.contains("type") || !e["type"].is_string() || !e.contains("payload") ||
        !e["payload"].is_object())
      continue;
    if (e["type"].get<std::string>().rfind("CHAIN_", 0) == 0) out.push_back(std::move(e));
  }
  return out;
}

bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// A step run as its own manifest says now (status, verdict, runner), or what the chain knew of it.
json run_entry(const fs::path& root, const std::string& run_id) {
  json r{{"run_id", run_id}};
  auto dir = store::find_run(root, run_id);
  if (!dir) {
    r["status"] = "not_found";
    return r;
  }
  auto s = store::read_run_summary(*dir, run_id);
  if (!s) {
    r["status"] = "not_found";
    return r;
  }
  add_run_summary(r, *s);
  return r;
}

}  // namespace

void add_run_summary(json& entry, const store::RunSummary& s) {
  entry["status"] = s.status;
  entry["runner"] = s.runner;
  if (!s.verdict.empty()) entry["verdict"] = s.verdict;
  if (!s.reason.empty()) entry["reason"] = s.reason;
  if (!s.title.empty()) entry["title"] = s.title;
}

ChainView chain_view(const fs::path& root, const std::string& run_id) {
  ChainView v;
  auto dir = store::find_run(root, run_id);
  if (!dir) {
    v.message = "no run " + run_id;
    return v;
  }
  json man = core::read_json_file(*dir / "manifest.json");
  if (!man.is_object()) {
    v.outcome = ChainView::Outcome::unreadable;
    v.message = "the manifest of " + run_id + " cannot be read";
    return v;
  }
  if (core::text_of(man, "kind") != "chain") {
    v.outcome = ChainView::Outcome::not_a_chain;
    v.message = run_id + " is a run, not a chain's bundle" +
                (man.contains("chain") && man["chain"].is_object()
                     ? "; it is step '" + core::text_of(man["chain"], "step_id") + "' of chain " +
                           core::text_of(man["chain"], "run_id")
                     : std::string());
    return v;
  }
  json spec = core::read_json_file(*dir / "contract.json");  // the chain file as written
  bool complete = true;
  std::vector<json> events = chain_events(*dir / "events.jsonl", complete);

  // What the events say, by step id.
  std::map<std::string, std::vector<json>> started, finished;
  std::map<std::string, json> handoffs, quorums, advanced;
  json chain_started, lifecycle, completed;
  for (const auto& e : events) {
    const std::string type = e["type"];
    const json& p = e["payload"];
    const std::string step = core::text_of(p, "step_id");
    if (type == "CHAIN_STARTED") chain_started = p;
    if (type == "CHAIN_STEP_STARTED") started[step].push_back(p);
    if (type == "CHAIN_STEP_FINISHED") finished[step].push_back(p);
    if (type == "CHAIN_HANDOFF_STEP_MARKED") handoffs[step] = p;
    if (type == "CHAIN_QUORUM_EVALUATED") quorums[step] = p;
    if (type == "CHAIN_BRANCH_ADVANCED") advanced[step] = p;
    if (type == "CHAIN_LIFECYCLE_EVALUATED") lifecycle = p;
    if (type == "CHAIN_COMPLETED") completed = p;
  }
  const bool sealed = core::text_of(man, "status") == "sealed";

  json steps = json::array();
  json previous_handoff;  // the handoff step just before the current one, if any
  const json spec_steps =
      spec.is_object() && spec.contains("steps") && spec["steps"].is_array() ? spec["steps"] : json::array();
  for (const auto& s : spec_steps) {
    if (!s.is_object()) continue;
    const std::string id = core::text_of(s, "step_id"), kind = core::text_of(s, "kind");
    json step{{"step_id", id}, {"kind", kind}, {"role", core::text_of(s, "role")}};
    if (kind == "handoff") {
      json h{{"from_role", core::text_of(s, "from_role")},
             {"to_role", core::text_of(s, "to_role")},
             {"summary", core::text_of(s, "summary")},
             {"risks", s.contains("risks") && s["risks"].is_array() ? s["risks"] : json::array()},
             {"next_role_context", core::text_of(s, "next_role_context")},
             {"previous_run_id", nullptr}};
      if (auto m = handoffs.find(id); m != handoffs.end())
        h["previous_run_id"] = m->second.value("previous_run_id", json());
      step["role"] = h["to_role"];
      step["state"] = handoffs.count(id) ? "done" : sealed ? "not_run" : "pending";
      step["handoff"] = h;
      h["step_id"] = id;
      previous_handoff = h;
      steps.push_back(step);
      continue;
    }
    step["handoff_in"] = previous_handoff.is_null() ? json(nullptr) : previous_handoff;
    previous_handoff = nullptr;
    // Runs in the order they started; a run that finished carries the chain's verdict for the step.
    json runs = json::array();
    const auto& st = started[id];
    const auto& fin = finished[id];
    for (size_t i = 0; i < st.size(); ++i) {
      std::string rid = core::text_of(st[i], "run_id");
      if (rid.empty() && i < fin.size())
        rid = core::text_of(fin[i], "run_id");  // chains from before runs were named first
      json r = rid.empty() ? json{{"run_id", nullptr}, {"status", "not_started"}} : run_entry(root, rid);
      r["finished"] = i < fin.size();
      if (i < fin.size()) r["step_verdict"] = core::text_of(fin[i], "verdict");
      if (kind == "review") r["reviewer"] = i + 1;
      runs.push_back(r);
    }
    if (auto q = quorums.find(id); q != quorums.end()) {
      json quorum = q->second;
      quorum.erase("step_id");
      step["quorum"] = quorum;
      for (auto& r : runs)
        for (const auto& vote : quorum.value("votes", json::array()))
          if (vote.is_object() && core::text_of(vote, "run_id") == core::text_of(r, "run_id"))
            r["approve"] = flag(vote, "approve");
    } else {
      step["quorum"] = nullptr;
    }
    step["runs"] = runs;
    if (auto a = advanced.find(id); a != advanced.end()) step["commit"] = core::text_of(a->second, "commit");
    // The step's state and verdict: a task step ends with its run; a review step with its quorum.
    bool done = kind == "review" ? quorums.count(id) > 0 : !fin.empty() && fin.size() == st.size();
    if (done) {
      step["state"] = "done";
      if (kind == "review") {
        step["verdict"] = flag(quorums[id], "met") ? "success" : "failure";
      } else {
        step["verdict"] = core::text_of(fin.back(), "verdict");
        step["reason"] = core::text_of(fin.back(), "reason");
      }
    } else if (!st.empty()) {
      step["state"] = sealed ? "interrupted" : "running";
    } else {
      step["state"] = sealed ? "not_run" : "pending";
    }
    steps.push_back(step);
  }

  json out{{"run_id", run_id},
           {"chain_id", core::text_of(man, "task_id")},
           {"status", core::text_of(man, "status")},
           {"created_at", core::text_of(man, "created_at")},
           {"steps", steps},
           {"events_complete", complete}};
  for (const char* k :
       {"title", "workflow_id", "verdict", "reason", "started_at", "finished_at", "repo", "baseline_commit"})
    out[k] = man.contains(k) && man[k].is_string() ? man[k] : json(nullptr);
  out["branch"] =
      chain_started.is_object() && chain_started.contains("branch") ? chain_started["branch"] : json(nullptr);
  out["result"] = completed.is_object() && completed.contains("result") ? completed["result"] : json(nullptr);
  if (lifecycle.is_object()) {
    auto list = [&](const char* k) {
      return lifecycle.contains(k) && lifecycle[k].is_array() ? lifecycle[k] : json::array();
    };
    out["lifecycle"] = {
        {"closed", flag(lifecycle, "closed")},
        {"require_pm_loop", !lifecycle.contains("require_pm_loop") || flag(lifecycle, "require_pm_loop")},
        {"planned_roles", list("planned_roles")},
        {"observed_roles", list("observed_roles")}};
  } else {
    out["lifecycle"] = nullptr;
  }
  v.outcome = ChainView::Outcome::ok;
  v.view = std::move(out);
  return v;
}

}  // namespace cp::chain
