// Who took a decision on a run, and how: recorded in events and the manifest for every approval and
// evidence decision, so an audit can always answer who, how, when and why.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace cp::control {

struct Actor {
  std::string by;       // a token id, an OS user name, or "cp-host" for a rule
  std::string by_kind;  // token | os_user | system
  std::string how;      // human | rule | god_mode
  std::string reason;   // why, in the actor's words (required for god_mode)
};

// The OS user running this process, deciding by hand from the CLI.
Actor os_user(std::string how = "human", std::string reason = "");
// A token holder deciding through the REST API.
Actor token_holder(const std::string& token_id, std::string how = "human", std::string reason = "");
// cp-host itself applying a rule (the approval deadline's default-deny).
Actor rule(std::string reason);

// {by, by_kind, how, at, reason?} with `at` the current UTC time.
nlohmann::json actor_record(const Actor& a);

}  // namespace cp::control
