// Intake sessions as a service: what `cp-host intake new|answer|show|list|run` and the REST API both call.
// A PM's request goes to a planner plugin (control/planner_call.hpp), which asks questions about what is
// missing or answers with a plan; the plan is compiled into a task chain whose every step contract
// validates (control/plan_compile.hpp) before the session says "planned"; run queues that chain
// (chain/chain_queue.hpp), so `cp-host serve` runs it. Every step is an event of the session's log
// (intake_store.hpp). Nothing a planner says is trusted: output that breaks its schema is refused, and
// kept in the log as evidence.
#pragma once

#include "contract/validation.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace cp::plugin {
class Registry;
}

namespace cp::intake {

struct NewIntake {
  std::string request;    // the PM's words
  std::string repo;       // the repository the chain runs in (the caller checked it may be used)
  std::string task_pack;  // optional: the task pack to use; empty lets the planner choose
  std::string planner;    // the planner plugin's id; empty: "template"
  std::string by;         // a token id or an OS user
};

struct IntakeResult {
  enum class Outcome {
    ok,           // the session, as it is now (which may be no_match, refused or error: the planner's answer)
    invalid,      // the input is wrong: `message`, `pointer`, and for run the chain's diagnostics
    not_found,    // no such session
    conflict,     // the session's state does not allow it (run before a plan, answers after one, a race)
    unavailable,  // no such planner plugin is loaded
    failed,       // cp-host could not keep the session (I/O)
  } outcome = Outcome::failed;
  std::string code;     // machine-readable, for the API's error (bad_request, not_planned, ...)
  std::string message;  // what is wrong and how to fix it
  std::string pointer;  // invalid: the JSON pointer of the offending input
  std::vector<contract::Diagnostic> diagnostics;
  nlohmann::json session;  // ok, and conflict/invalid when there is a session to show
};

class IntakeService {
 public:
  // `registry` (not owned, must outlive this) holds the planner plugins; `plugins_dir` is what step
  // contracts are validated against.
  IntakeService(std::filesystem::path root, std::filesystem::path plugins_dir,
                const plugin::Registry* registry);

  // A new session: the planner's first answer to the request (questions, or a plan).
  IntakeResult create(const NewIntake& req);
  // Answers to the open questions ({question id: text}); the planner then asks more or plans.
  IntakeResult answer(const std::string& id, const nlohmann::json& answers, const std::string& by);
  // Queues the planned chain; the session records its chain_id.
  IntakeResult run(const std::string& id, const std::string& by);

  // The session with its conversation (questions and answers in order, who and when) and its events.
  std::optional<nlohmann::json> show(const std::string& id) const;
  // Every session, newest first, in brief.
  nlohmann::json list() const;

  // How long a planner may take for one answer.
  static constexpr std::chrono::seconds kPlannerDeadline{120};
  static constexpr size_t kMaxRequestBytes = 20000, kMaxAnswerBytes = 4000;

 private:
  IntakeResult plan_next(const std::string& id, uint64_t seen_seq);

  std::filesystem::path root_, plugins_dir_;
  const plugin::Registry* registry_;
};

}  // namespace cp::intake
