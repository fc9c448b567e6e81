#include "intake/intake_service.hpp"

#include "chain/chain_queue.hpp"
#include "chain/chain_record.hpp"
#include "contract/task_packs.hpp"
#include "control/plan_compile.hpp"
#include "control/planner_call.hpp"
#include "core/clock.hpp"
#include "intake/intake_store.hpp"
#include "plugin/registry.hpp"
#include "queue/queue_backend.hpp"

#include <regex>
#include <set>
#include <stdexcept>

namespace cp::intake {

namespace fs = std::filesystem;
using nlohmann::json;
using Outcome = IntakeResult::Outcome;

namespace {

IntakeResult intake_error(Outcome o, std::string code, std::string message, std::string pointer = "",
                          json session = nullptr) {
  IntakeResult r;
  r.outcome = o;
  r.code = std::move(code);
  r.message = std::move(message);
  r.pointer = std::move(pointer);
  r.session = std::move(session);
  return r;
}

IntakeResult intake_ok(json session) {
  IntakeResult r;
  r.outcome = Outcome::ok;
  r.session = std::move(session);
  return r;
}

bool planner_loaded(const plugin::Registry* registry, const std::string& id) {
  const plugin::PluginInfo* p = registry ? registry->find(id) : nullptr;
  return p && p->kind == plugin::Kind::planner;
}

bool valid_question(const json& q) {
  static const std::regex id("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
  return q.is_object() && q.contains("id") && q["id"].is_string() &&
         std::regex_match(q["id"].get<std::string>(), id) && q.contains("text") && q["text"].is_string();
}

// The question as the session keeps it: the fields intake_session.schema.json allows.
json kept_question(const json& q) {
  json out{{"id", q["id"]}, {"text", q["text"].get<std::string>().substr(0, 2000)}};
  if (q.contains("field") && q["field"].is_string())
    out["field"] = q["field"].get<std::string>().substr(0, 64);
  if (q.contains("problem") && q["problem"].is_string())
    out["problem"] = q["problem"].get<std::string>().substr(0, 2000);
  if (q.contains("choices") && q["choices"].is_array()) {
    out["choices"] = json::array();
    for (const auto& c : q["choices"])
      if (c.is_string() && out["choices"].size() < 32)
        out["choices"].push_back(c.get<std::string>().substr(0, 200));
  }
  return out;
}

}  // namespace

IntakeService::IntakeService(fs::path root, fs::path plugins_dir, const plugin::Registry* registry)
    : root_(std::move(root)), plugins_dir_(std::move(plugins_dir)), registry_(registry) {}

IntakeResult IntakeService::create(const NewIntake& req) {
  if (req.request.find_first_not_of(" \t\r\n") == std::string::npos)
    return intake_error(Outcome::invalid, "bad_request", "the request is empty: say what should be done",
                        "/request");
  if (req.request.size() > kMaxRequestBytes)
    return intake_error(Outcome::invalid, "bad_request",
                        "the request is " + std::to_string(req.request.size()) + " bytes; at most " +
                            std::to_string(kMaxRequestBytes) + " are kept: shorten it",
                        "/request");
  const std::string planner = req.planner.empty() ? "template" : req.planner;
  if (!planner_loaded(registry_, planner))
    return intake_error(Outcome::unavailable, "unknown_planner",
                        "no planner plugin '" + planner + "' is loaded (see `cp-host plugins list`)",
                        "/planner");
  if (!req.task_pack.empty()) {
    std::vector<contract::Diagnostic> why;
    if (!contract::load_task_pack(root_, req.task_pack, why))
      return intake_error(
          Outcome::invalid, "unknown_task_pack",
          "no task pack '" + req.task_pack + "' under packs/tasks/ (see `cp-host task-packs list`)",
          "/task_pack");
  }
  std::string now = core::now_utc_iso();
  json session{{"schema_version", 1},
               {"intake_id", new_intake_id()},
               {"created_at", now},
               {"updated_at", now},
               {"created_by", req.by},
               {"request", req.request},
               {"repo", req.repo},
               {"task_pack", req.task_pack.empty() ? json(nullptr) : json(req.task_pack)},
               {"requested_task_pack", req.task_pack.empty() ? json(nullptr) : json(req.task_pack)},
               {"planner", planner},
               {"state", "asking"},
               {"questions", json::array()},
               {"asked", json::array()},
               {"answers", json::object()},
               {"plan", nullptr},
               {"chain", nullptr},
               {"chain_id", nullptr},
               {"no_match", nullptr},
               {"error", nullptr}};
  IntakeStore store(root_);
  try {
    session = store.create(
        session, {"INTAKE_CREATED",
                  {{"by", req.by}, {"request", req.request}, {"repo", req.repo}, {"planner", planner}}});
  } catch (const std::exception& e) {
    return intake_error(Outcome::failed, "internal", std::string("cannot keep the session: ") + e.what());
  }
  return plan_next(session["intake_id"], session["event_seq"].get<uint64_t>());
}

IntakeResult IntakeService::answer(const std::string& id, const json& answers, const std::string& by) {
  if (!answers.is_object() || answers.empty())
    return intake_error(Outcome::invalid, "bad_request",
                        "answers must be a JSON object of question id -> answer text, e.g. {\"q1\": \"...\"}",
                        "/answers");
  IntakeStore store(root_);
  IntakeResult refusal;
  std::optional<json> after;
  try {
    after = store.update(id, [&](json& s) -> std::optional<IntakeEvent> {
      if (s["state"] != "asking") {
        refusal = intake_error(Outcome::conflict, "not_asking",
                               "intake " + id + " is " + s["state"].get<std::string>() +
                                   ", not asking: there is nothing to answer",
                               "", s);
        return std::nullopt;
      }
      std::set<std::string> open;
      for (const auto& q : s["questions"]) open.insert(q["id"].get<std::string>());
      for (const auto& [k, v] : answers.items()) {
        std::string ptr = "/answers/" + k;
        if (!open.count(k)) {
          std::string ids;
          for (const auto& o : open) ids += (ids.empty() ? "" : ", ") + o;
          refusal = intake_error(Outcome::invalid, "unknown_question",
                                 "'" + k + "' is not an open question of intake " + id +
                                     "; open: " + (ids.empty() ? "none" : ids),
                                 ptr, s);
          return std::nullopt;
        }
        if (!v.is_string() || v.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos ||
            v.get<std::string>().size() > kMaxAnswerBytes) {
          refusal = intake_error(Outcome::invalid, "bad_answer",
                                 "the answer to '" + k + "' must be non-empty text of at most " +
                                     std::to_string(kMaxAnswerBytes) + " bytes",
                                 ptr, s);
          return std::nullopt;
        }
      }
      json given = json::object();
      for (const auto& [k, v] : answers.items()) {
        s["answers"][k] = v;
        given[k] = v;
      }
      json still = json::array();
      for (const auto& q : s["questions"])
        if (!answers.contains(q["id"].get<std::string>())) still.push_back(q);
      s["questions"] = still;
      s["updated_at"] = core::now_utc_iso();
      return IntakeEvent{"INTAKE_ANSWERED", {{"by", by}, {"answers", given}}};
    });
  } catch (const std::exception& e) {
    return intake_error(Outcome::failed, "internal", std::string("cannot keep the answers: ") + e.what());
  }
  if (!after) return intake_error(Outcome::not_found, "not_found", "no intake session '" + id + "'");
  if (!refusal.code.empty()) return refusal;
  // Every open question answered: the planner takes the next turn. Some still open: ask them again.
  if (!(*after)["questions"].empty()) return intake_ok(*after);
  return plan_next(id, (*after)["event_seq"].get<uint64_t>());
}

IntakeResult IntakeService::plan_next(const std::string& id, uint64_t seen_seq) {
  IntakeStore store(root_);
  auto s = store.load(id);
  if (!s) return intake_error(Outcome::not_found, "not_found", "no intake session '" + id + "'");
  control::PlannerInputSpec spec;
  spec.request = (*s)["request"];
  spec.repo = (*s)["repo"];
  // Only a pack the request named binds the plan; one the planner chose while asking is its own to keep
  // or drop (a plan of a pack is held to that pack's rendering either way).
  const json named = s->value("requested_task_pack", json(nullptr));
  spec.task_pack = named.is_string() ? named.get<std::string>() : "";
  // The session keeps answers by question id (what was asked, what was said); a planner reads them by the
  // pack field each question was about, the latest answer to a field winning (a field asked again).
  spec.answers = json::object();
  for (const auto& q : (*s)["asked"]) {
    const std::string qid = q.value("id", "");
    if ((*s)["answers"].contains(qid)) spec.answers[q.value("field", qid)] = (*s)["answers"][qid];
  }
  spec.asked = (*s)["asked"];
  spec.intake_id = id;
  json input = control::make_planner_input(root_, spec);
  const std::string planner = (*s)["planner"];
  control::PlannerReply reply;
  if (!planner_loaded(registry_, planner)) {
    reply.kind = control::PlannerReplyKind::error;
    reply.error = "no planner plugin '" + planner + "' is loaded";
  } else {
    reply = control::call_planner(*registry_, planner, input,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(kPlannerDeadline));
  }
  // A plan is compiled before it is recorded: the session says "planned" only for a chain that validates.
  std::optional<control::CompiledPlan> compiled;
  if (reply.kind == control::PlannerReplyKind::plan)
    compiled = control::compile_plan(reply.plan, root_, registry_);

  IntakeResult raced;
  std::optional<json> after;
  try {
    after = store.update(id, [&](json& st) -> std::optional<IntakeEvent> {
      if (st["event_seq"].get<uint64_t>() != seen_seq) {
        raced =
            intake_error(Outcome::conflict, "changed",
                         "intake " + id + " changed while the planner was answering; read it again", "", st);
        return std::nullopt;
      }
      st["updated_at"] = core::now_utc_iso();
      using K = control::PlannerReplyKind;
      switch (reply.kind) {
        case K::questions: {
          json qs = json::array();
          for (const auto& q : reply.questions)
            if (valid_question(q)) qs.push_back(kept_question(q));
          if (qs.empty() || qs.size() != reply.questions.size()) {
            st["state"] = "refused";
            st["error"] = {{"code", "bad_questions"},
                           {"message", "the planner asked questions without an id and a text"}};
            return IntakeEvent{
                "INTAKE_REFUSED",
                {{"problems", json::array({"questions without id or text"})}, {"raw", reply.raw}}};
          }
          if (!reply.task_pack.empty() && st["task_pack"].is_null()) st["task_pack"] = reply.task_pack;
          st["questions"] = qs;
          for (const auto& q : qs) st["asked"].push_back(q);
          st["state"] = "asking";
          return IntakeEvent{"INTAKE_QUESTIONS", {{"questions", qs}}};
        }
        case K::plan: {
          st["plan"] = reply.plan;
          if (!compiled->ok) {
            json diags = contract::diagnostics_json(compiled->diagnostics);
            st["state"] = "refused";
            st["error"] = {{"code", "plan_invalid"},
                           {"message", "the plan's chain does not validate (" +
                                           std::to_string(compiled->diagnostics.size()) + " problem(s))"}};
            return IntakeEvent{"INTAKE_PLAN_INVALID", {{"diagnostics", diags}}};
          }
          st["chain"] = compiled->chain;
          st["state"] = "planned";
          st["questions"] = json::array();
          st["task_pack"] = reply.plan.value("task_pack", json(nullptr));
          return IntakeEvent{"INTAKE_PLANNED",
                             {{"task_pack", st["task_pack"]},
                              {"steps", compiled->chain.value("steps", json::array()).size()}}};
        }
        case K::no_match:
          st["state"] = "no_match";
          st["no_match"] = {{"reason", reply.reason}, {"suggestions", reply.suggestions}};
          return IntakeEvent{"INTAKE_NO_MATCH", {{"reason", reply.reason}}};
        case K::refused:
          st["state"] = "refused";
          st["error"] = {{"code", "planner_output_refused"}, {"message", reply.error}};
          return IntakeEvent{"INTAKE_REFUSED", {{"problems", reply.violations}, {"raw", reply.raw}}};
        case K::error:
        default:
          st["state"] = "error";
          st["error"] = {{"code", "planner_failed"}, {"message", reply.error}};
          return IntakeEvent{"INTAKE_PLANNER_ERROR", {{"message", reply.error}}};
      }
    });
  } catch (const std::exception& e) {
    return intake_error(Outcome::failed, "internal",
                        std::string("cannot keep the planner's answer: ") + e.what());
  }
  if (!after) return intake_error(Outcome::not_found, "not_found", "no intake session '" + id + "'");
  if (!raced.code.empty()) return raced;
  return intake_ok(*after);
}

IntakeResult IntakeService::run(const std::string& id, const std::string& by) {
  IntakeStore store(root_);
  auto s = store.load(id);
  if (!s) return intake_error(Outcome::not_found, "not_found", "no intake session '" + id + "'");
  const std::string state = (*s)["state"];
  if (state == "queued")
    return intake_error(Outcome::conflict, "already_queued",
                        "intake " + id + " is queued already as chain " + (*s)["chain_id"].get<std::string>(),
                        "", *s);
  if (state != "planned")
    return intake_error(
        Outcome::conflict, "not_planned",
        "intake " + id + " is " + state +
            (state == "asking" ? ": answer its open questions first" : ": it has no plan to run"),
        "", *s);
  chain::QueuedChainRequest req;
  req.chain = (*s)["chain"];
  req.base_dir = store.dir_of(id);
  req.repo = (*s)["repo"].get<std::string>();
  req.root = root_;
  req.plugins_dir = plugins_dir_;
  req.registry = registry_;
  req.submitted_by = by;
  req.origin = "intake:" + id;
  // The chain's contracts are inline; a path in it would name a file beside the session, never elsewhere.
  req.confine_paths = true;
  req.source = "intake " + id + " chain";
  req.pointer_prefix = "/chain";
  const uint64_t seen = (*s)["event_seq"];
  // The chain is queued under the session's lock, so two runs of one session never queue two chains.
  IntakeResult refusal;
  std::optional<json> after;
  try {
    after = store.update(id, [&](json& st) -> std::optional<IntakeEvent> {
      if (st["event_seq"].get<uint64_t>() != seen || st["state"] != "planned") {
        refusal = intake_error(Outcome::conflict, "changed",
                               "intake " + id + " changed meanwhile; read it again", "", st);
        return std::nullopt;
      }
      // A run that died after the queue took its chain, before this session could say so, left that chain
      // queued: it is this session's, and queueing the plan again would run every step twice.
      queue::BackendOptions qo;
      qo.root = root_;
      if (auto prior = chain::taken_chain_with_origin(root_, req.origin,
                                                      queue::open_queue_backend(qo)->list()->state)) {
        st["chain_id"] = *prior;
        st["state"] = "queued";
        st["updated_at"] = core::now_utc_iso();
        return IntakeEvent{"INTAKE_QUEUED", {{"by", by}, {"chain_id", *prior}, {"recovered", true}}};
      }
      auto q = chain::submit_queued_chain(req);
      if (q.outcome != chain::QueuedChainResult::Outcome::queued) {
        refusal = intake_error(
            q.outcome == chain::QueuedChainResult::Outcome::invalid ? Outcome::invalid : Outcome::conflict,
            "chain_not_queued", "the chain was not queued: " + q.error, "/chain", st);
        refusal.diagnostics = q.diagnostics;
        return std::nullopt;
      }
      st["chain_id"] = q.chain_id;
      st["state"] = "queued";
      st["updated_at"] = core::now_utc_iso();
      return IntakeEvent{"INTAKE_QUEUED", {{"by", by}, {"chain_id", q.chain_id}}};
    });
  } catch (const std::exception& e) {
    return intake_error(Outcome::failed, "internal", std::string("cannot queue the chain: ") + e.what());
  }
  if (!after) return intake_error(Outcome::not_found, "not_found", "no intake session '" + id + "'");
  if (!refusal.code.empty()) return refusal;
  return intake_ok(*after);
}

std::optional<json> IntakeService::show(const std::string& id) const {
  IntakeStore store(root_);
  auto s = store.load(id);
  if (!s) return std::nullopt;
  auto events = store.events(id).value_or(json::array());
  // The conversation: the request, each round of questions, each set of answers, and the outcome.
  json talk = json::array();
  for (const auto& ev : events) {
    const std::string type = ev.value("type", "");
    const json& p = ev["payload"];
    json line{{"at", ev.value("ts", "")}, {"event", type}};
    if (type == "INTAKE_CREATED")
      line.update({{"who", p.value("by", "")}, {"kind", "request"}, {"text", p.value("request", "")}});
    else if (type == "INTAKE_QUESTIONS")
      line.update({{"who", (*s)["planner"]},
                   {"kind", "questions"},
                   {"questions", p.value("questions", json::array())}});
    else if (type == "INTAKE_ANSWERED")
      line.update(
          {{"who", p.value("by", "")}, {"kind", "answers"}, {"answers", p.value("answers", json::object())}});
    else if (type == "INTAKE_PLANNED")
      line.update({{"who", (*s)["planner"]}, {"kind", "plan"}, {"steps", p.value("steps", 0)}});
    else if (type == "INTAKE_QUEUED")
      line.update({{"who", p.value("by", "")}, {"kind", "run"}, {"chain_id", p.value("chain_id", "")}});
    else
      line.update(
          {{"who", (*s)["planner"]}, {"kind", "outcome"}, {"state", p["session"].value("state", "")}});
    talk.push_back(std::move(line));
  }
  json out = *s;
  out["conversation"] = talk;
  out["events"] = events.size();
  return out;
}

json IntakeService::list() const {
  IntakeStore store(root_);
  json items = json::array();
  for (auto& s : store.list()) {
    std::string req = s.value("request", "");
    items.push_back({{"intake_id", s["intake_id"]},
                     {"created_at", s["created_at"]},
                     {"updated_at", s["updated_at"]},
                     {"created_by", s["created_by"]},
                     {"state", s["state"]},
                     {"task_pack", s["task_pack"]},
                     {"planner", s["planner"]},
                     {"repo", s["repo"]},
                     {"chain_id", s["chain_id"]},
                     {"open_questions", s["questions"].size()},
                     {"request", req.size() > 200 ? req.substr(0, 200) + "…" : req}});
  }
  return {{"intakes", items}, {"count", items.size()}};
}

}  // namespace cp::intake
