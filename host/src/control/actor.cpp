#include "control/actor.hpp"
#include "core/clock.hpp"

#include "store/event_log.hpp"

#include <pwd.h>
#include <unistd.h>

namespace cp::control {

Actor os_user(std::string how, std::string reason) {
  std::string name;
  if (const passwd* pw = ::getpwuid(::geteuid()); pw && pw->pw_name) name = pw->pw_name;
  if (name.empty()) name = "uid:" + std::to_string(::geteuid());
  return {name, "os_user", std::move(how), std::move(reason)};
}

Actor token_holder(const std::string& token_id, std::string how, std::string reason) {
  return {token_id.empty() ? "anonymous" : token_id, "token", std::move(how), std::move(reason)};
}

Actor rule(std::string reason) {
  return {"cp-host", "system", "rule", std::move(reason)};
}

nlohmann::json actor_record(const Actor& a) {
  nlohmann::json j{{"by", a.by}, {"by_kind", a.by_kind}, {"how", a.how}, {"at", core::now_utc_iso()}};
  if (!a.reason.empty()) j["reason"] = a.reason;
  return j;
}

}  // namespace cp::control
