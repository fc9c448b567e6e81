#include "control/planner_call.hpp"

#include "contract/task_packs.hpp"
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/schema_catalog.hpp"
#include "plugin/instance.hpp"
#include "plugin/isolated_plugin.hpp"
#include "plugin/probe_call.hpp"
#include "plugin/registry.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace cp::control {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// How long an in-process planner told to stop at its deadline may take to return before it is left behind.
constexpr std::chrono::seconds kStopGrace{2};

// One in-process plan() call, shared with the thread that makes it: the thread may outlive the caller when
// the planner ignores the deadline, so everything it touches is owned here.
struct InProcessPlanCall {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  plugin::CallOutcome out;
  std::atomic<bool> cancel{false};
};

plugin::CallOutcome run_in_process(const plugin::PluginInfo& info, const std::string& input,
                                   std::chrono::milliseconds deadline) {
  std::string error;
  std::shared_ptr<plugin::Instance> inst = plugin::Instance::create(info, error);
  if (!inst) return {CP_E_FAILED, "", error};
  auto call = std::make_shared<InProcessPlanCall>();
  std::thread worker([call, inst, input, id = info.id] {
    plugin::CallContext ctx(id);
    ctx.deny_spawn();
    ctx.set_cancel_flag(&call->cancel);
    plugin::CallOutcome o = inst->propose_plan(ctx, input);
    std::lock_guard lock(call->mu);
    call->out = std::move(o);
    call->done = true;
    call->cv.notify_all();
  });
  std::unique_lock lock(call->mu);
  if (call->cv.wait_for(lock, deadline, [&] { return call->done; })) {
    lock.unlock();
    worker.join();
    return std::move(call->out);
  }
  call->cancel = true;  // the planner sees ctx cancelled
  bool stopped = call->cv.wait_for(lock, kStopGrace, [&] { return call->done; });
  lock.unlock();
  if (stopped)
    worker.join();
  else
    worker.detach();  // it owns what it uses (the instance keeps its library mapped); its answer is dropped
  return {
      CP_E_TIMEOUT, "",
      "planner '" + info.id + "' did not answer within " + std::to_string(deadline.count()) +
          " ms; its answer, if it comes, is not used (run it isolated to have it killed at the deadline)"};
}

// Probe answers that were ok, kept for the ttl they gave: an intake asks its planner several times in a row,
// and the provider need not be probed before each. An answer that is not ok is never kept, so a key fixed or
// a provider back is seen at the next call. Keyed by library, plugin and config (two configs, two providers).
class OkProbeAnswers {
 public:
  bool holds(const plugin::PluginInfo& p) {
    std::lock_guard lock(mu_);
    auto it = until_ms_.find(key(p));
    return it != until_ms_.end() && core::now_ms() < it->second;
  }
  void keep(const plugin::PluginInfo& p, const json& answer) {
    long long ttl = answer.value("ttl_seconds", 0LL);
    if (ttl <= 0) return;
    std::lock_guard lock(mu_);
    until_ms_[key(p)] = core::now_ms() + std::min(ttl, 86400LL) * 1000;
  }

 private:
  static std::string key(const plugin::PluginInfo& p) {
    return p.library_path.string() + "#" + p.id + "#" + p.config_json;
  }
  std::mutex mu_;
  std::map<std::string, int64_t> until_ms_;
};

OkProbeAnswers& ok_probe_answers() {
  static OkProbeAnswers answers;
  return answers;
}

// The questions asked for a pack must fill that pack's fields (or name the pack itself).
std::string unknown_question_field(const json& output, const json& input) {
  if (!output["task_pack"].is_string()) return "";
  const std::string name = output["task_pack"];
  const json* pack = nullptr;
  for (const auto& p : input["task_packs"])
    if (p.is_object() && p.value("name", json()) == name) pack = &p;
  if (!pack) return "/task_pack";
  for (size_t i = 0; i < output["questions"].size(); ++i) {
    const std::string field = output["questions"][i]["field"];
    if (field == "task_pack") continue;
    bool declared = false;
    const json fields =
        pack->contains("fields") && (*pack)["fields"].is_array() ? (*pack)["fields"] : json::array();
    for (const auto& f : fields) declared = declared || (f.is_object() && f.value("name", json()) == field);
    if (!declared) return "/questions/" + std::to_string(i) + "/field";
  }
  return "";
}

// What is wrong when a plan of a task pack sets a field the person answered to anything but that answer
// (read as the field's value), else "". The planner fills only what the person left open: a model that
// answers "low" where the person said "high", or swaps the test command, is refused.
std::string overruled_answer(const json& plan, const json& input) {
  if (!plan.contains("task_pack") || !plan["task_pack"].is_string() || !input.contains("answers") ||
      !input["answers"].is_object())
    return "";
  if (!input.contains("task_packs") || !input["task_packs"].is_array()) return "";
  const json* pack = nullptr;
  for (const auto& p : input["task_packs"])
    if (p.is_object() && p.value("name", json()) == plan["task_pack"]) pack = &p;
  if (!pack || !pack->contains("fields") || !(*pack)["fields"].is_array()) return "";
  const json fields = plan.value("fields", json::object());
  for (const auto& f : (*pack)["fields"]) {
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string()) continue;
    const std::string name = f["name"];
    if (!input["answers"].contains(name)) continue;
    const json said = contract::field_value_from_answer(f, input["answers"][name]);
    const json got = fields.is_object() && fields.contains(name) ? fields[name] : json(nullptr);
    if (got != said) {
      std::string shown = got.is_null() ? std::string("nothing") : got.dump();
      if (shown.size() > 200) shown = shown.substr(0, 197) + "...";
      std::string answer = said.dump();
      if (answer.size() > 200) answer = answer.substr(0, 197) + "...";
      return "the plan sets field '" + name + "' of task pack '" + plan["task_pack"].get<std::string>() +
             "' to " + shown + ", but the person answered " + answer +
             ": a planner fills only the fields the person left open";
    }
  }
  return "";
}

// `text` as valid UTF-8 (each invalid byte replaced by U+FFFD): a planner's bytes end up in JSON answers and
// session files, whose writers refuse invalid UTF-8.
std::string valid_utf8(const std::string& text) {
  std::string quoted = json(text).dump(-1, ' ', false, json::error_handler_t::replace);
  return json::parse(quoted).get<std::string>();
}

// At most `max` bytes of `text` as valid UTF-8, saying how much was left out: a planner's own error text
// and the violations its output earns are kept in session files and shown in answers, and a planner decides
// how long they are.
std::string bounded_text(const std::string& text, size_t max) {
  if (text.size() <= max) return valid_utf8(text);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return valid_utf8(text.substr(0, n)) + "... (" + std::to_string(text.size() - n) + " more bytes)";
}

constexpr size_t kMaxViolations = 50;
constexpr size_t kMaxViolationText = 1000;
constexpr size_t kMaxPlannerError = 4000;

void refuse(PlannerReply& r, const std::string& what, json violations) {
  r.kind = PlannerReplyKind::refused;
  const size_t total = violations.size();
  if (total > kMaxViolations) violations.erase(violations.begin() + kMaxViolations, violations.end());
  for (auto& v : violations)
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.value().is_string()) it.value() = bounded_text(it.value().get<std::string>(), kMaxViolationText);
  if (total > kMaxViolations)
    violations.push_back(
        {{"pointer", ""},
         {"rule", "truncated"},
         {"message", std::to_string(total - kMaxViolations) + " more violation(s) left out"}});
  r.violations = std::move(violations);
  r.error = "planner '" + r.planner_id +
            "' answered output that was refused: " + bounded_text(what, kMaxPlannerError) +
            ". The output is kept as evidence (raw) and was not used";
}

// The planner's text judged against planner_output and plan_bundle and against the input it answered.
void judge(PlannerReply& r, const std::string& text, const json& input) {
  if (!core::json_depth_ok(text)) {
    refuse(r, "it nests deeper than " + std::to_string(core::kMaxJsonDepth) + " levels",
           json::array({{{"pointer", ""}, {"rule", "json"}, {"message", "nested too deep"}}}));
    return;
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    refuse(r, "it is not a JSON object",
           json::array({{{"pointer", ""}, {"rule", "json"}, {"message", "not a JSON object"}}}));
    return;
  }
  json violations = json::array();
  for (const auto& v : core::schema("planner_output").validate(doc))
    violations.push_back(
        {{"pointer", v.pointer}, {"rule", v.rule}, {"message", v.message}, {"expected", v.expected}});
  if (violations.empty() && doc["status"] == "plan")
    for (const auto& v : core::schema("plan_bundle").validate(doc["plan"]))
      violations.push_back({{"pointer", "/plan" + v.pointer},
                            {"rule", v.rule},
                            {"message", v.message},
                            {"expected", v.expected}});
  if (!violations.empty()) {
    const json& first = violations.front();
    std::string where =
        first["pointer"].get<std::string>().empty() ? "(document)" : first["pointer"].get<std::string>();
    refuse(r,
           "it breaks schemas/" +
               std::string(doc.value("status", json()) == "plan" && where.rfind("/plan", 0) == 0
                               ? "plan_bundle"
                               : "planner_output") +
               ".schema.json at " + where + ": " + first["message"].get<std::string>() + " (" +
               std::to_string(violations.size()) + " violation(s))",
           std::move(violations));
    return;
  }
  const std::string status = doc["status"];
  const std::string asked_pack = input["task_pack"].is_string() ? input["task_pack"].get<std::string>() : "";
  if (status == "questions") {
    if (!asked_pack.empty() && doc["task_pack"].is_string() && doc["task_pack"] != asked_pack) {
      refuse(r,
             "the questions are for task pack '" + doc["task_pack"].get<std::string>() +
                 "' but the request named '" + asked_pack + "'",
             json::array(
                 {{{"pointer", "/task_pack"}, {"rule", "xref:task_pack"}, {"message", "another pack"}}}));
      return;
    }
    if (std::string bad = unknown_question_field(doc, input); !bad.empty()) {
      refuse(
          r,
          bad == "/task_pack" ? "it asks questions for task pack '" + doc["task_pack"].get<std::string>() +
                                    "', which is not among the input's task packs"
                              : "a question at " + bad + " fills no field of task pack '" +
                                    doc["task_pack"].get<std::string>() + "'",
          json::array({{{"pointer", bad}, {"rule", "xref:field"}, {"message", "not a field of the pack"}}}));
      return;
    }
    r.kind = PlannerReplyKind::questions;
    r.questions = doc["questions"];
    r.task_pack = doc["task_pack"].is_string() ? doc["task_pack"].get<std::string>() : "";
  } else if (status == "plan") {
    const json& pack = doc["plan"].value("task_pack", json());
    if (!asked_pack.empty() && pack != asked_pack) {
      refuse(
          r, "the plan is for task pack " + pack.dump() + " but the request named '" + asked_pack + "'",
          json::array(
              {{{"pointer", "/plan/task_pack"}, {"rule", "xref:task_pack"}, {"message", "another pack"}}}));
      return;
    }
    if (std::string bad = overruled_answer(doc["plan"], input); !bad.empty()) {
      refuse(r, bad,
             json::array({{{"pointer", "/plan/fields"},
                           {"rule", "xref:answer"},
                           {"message", "a field differs from the person's answer"}}}));
      return;
    }
    r.kind = PlannerReplyKind::plan;
    r.plan = doc["plan"];
    r.task_pack = pack.is_string() ? pack.get<std::string>() : "";
  } else {
    r.kind = PlannerReplyKind::no_match;
    r.reason = doc["reason"];
    r.suggestions = doc["suggestions"];
  }
  r.message = doc.value("message", "");
  if (doc.contains("usage")) r.usage = doc["usage"];
}

}  // namespace

std::string_view planner_reply_kind_name(PlannerReplyKind kind) {
  switch (kind) {
    case PlannerReplyKind::questions:
      return "questions";
    case PlannerReplyKind::plan:
      return "plan";
    case PlannerReplyKind::no_match:
      return "no_match";
    case PlannerReplyKind::refused:
      return "refused";
    case PlannerReplyKind::error:
      return "error";
  }
  return "error";
}

PlannerReply call_planner(const plugin::Registry& registry, const std::string& planner_id, const json& input,
                          std::chrono::milliseconds deadline) {
  const auto t0 = Clock::now();
  PlannerReply r;
  r.planner_id = planner_id;
  auto done = [&]() -> PlannerReply {
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    return std::move(r);
  };
  const plugin::PluginInfo* info = registry.find(planner_id);
  if (!info || info->kind != plugin::Kind::planner) {
    std::string known;
    for (const auto& p : registry.plugins())
      if (p.kind == plugin::Kind::planner) known += (known.empty() ? "" : ", ") + p.id;
    r.error = (info ? "plugin '" + planner_id + "' is a " + std::string(plugin::kind_name(info->kind)) +
                          ", not a planner"
                    : "no planner plugin '" + planner_id + "' is loaded") +
              (known.empty() ? "; no planner is loaded (see `cp-host plugins list`)"
                             : "; loaded planners: " + known);
    return done();
  }
  if (auto v = core::schema("planner_input").validate(input); !v.empty()) {
    r.error = "the planner input breaks schemas/planner_input.schema.json at " +
              (v[0].pointer.empty() ? std::string("(document)") : v[0].pointer) + ": " + v[0].message +
              "; nothing was asked of the planner";
    return done();
  }
  // The probes the planner depends on (its provider, say) answer first: their failure is the clear one.
  for (const auto& cap : info->capabilities) {
    if (cap.rfind("probe:", 0) != 0) continue;
    const std::string probe_id = cap.substr(6);
    const plugin::PluginInfo* p = registry.find(probe_id);
    if (p && p->kind == plugin::Kind::probe && ok_probe_answers().holds(*p)) continue;
    json answer =
        p && p->kind == plugin::Kind::probe
            ? plugin::call_probe(*p)
            : json{{"status", "error"}, {"message", "probe plugin '" + probe_id + "' is not loaded"}};
    if (answer.value("status", "error") == "ok") {
      ok_probe_answers().keep(*p, answer);
    } else {
      r.error = "probe " + probe_id + " (which planner '" + planner_id + "' needs) answered " +
                answer.value("status", "error") + ": " + answer.value("message", std::string("no message")) +
                "; nothing was asked of the planner";
      return done();
    }
  }
  const std::string text = input.dump();
  plugin::CallOutcome out;
  if (info->isolation == "isolated") {
    plugin::IsolatedPlugin worker(*info, info->limits);
    plugin::CallContext ctx(planner_id);
    ctx.deny_spawn();
    out = worker.propose_plan(ctx, text, deadline);
  } else {
    out = run_in_process(*info, text, deadline);
  }
  r.raw_truncated = out.output.size() > kMaxRawBytes;
  r.raw = valid_utf8(r.raw_truncated ? out.output.substr(0, kMaxRawBytes) : out.output);
  if (!out.ok()) {
    r.error = "planner '" + planner_id + "' failed (status " + std::to_string(out.status) +
              "): " + bounded_text(out.error, kMaxPlannerError);
    return done();
  }
  judge(r, out.output, input);
  return done();
}

json to_json(const PlannerReply& r) {
  return {{"kind", std::string(planner_reply_kind_name(r.kind))},
          {"planner", r.planner_id},
          {"task_pack", r.task_pack.empty() ? json(nullptr) : json(r.task_pack)},
          {"questions", r.questions},
          {"plan", r.plan},
          {"reason", r.reason},
          {"message", r.message},
          {"suggestions", r.suggestions},
          {"violations", r.violations},
          {"raw", r.raw},
          {"raw_truncated", r.raw_truncated},
          {"error", r.error},
          {"usage", r.usage},
          {"duration_ms", r.duration.count()}};
}

json make_planner_input(const fs::path& root, const PlannerInputSpec& spec) {
  json packs = json::array();
  for (const auto& p : contract::load_task_packs(root).packs) packs.push_back(p.doc);
  return {
      {"schema_version", 1},     {"request", spec.request},
      {"repo", spec.repo},       {"task_pack", spec.task_pack.empty() ? json(nullptr) : json(spec.task_pack)},
      {"answers", spec.answers}, {"asked", spec.asked},
      {"task_packs", packs},     {"intake_id", spec.intake_id}};
}

}  // namespace cp::control
