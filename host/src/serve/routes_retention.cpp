// Retention over the API: the plan by lane (GET /api/retention/plan, what `cp-host retention plan --json`
// prints) and an admin's apply (POST /api/retention/apply, what `cp-host retention apply` does), both through
// retention/retention.hpp. An apply plans afresh and deletes only what still qualifies; a caller that names
// paths gets only those of them the fresh plan lists, so what goes is at most what a person saw and chose.
#include "control/actor.hpp"
#include "retention/retention.hpp"
#include "serve/api_answers.hpp"
#include "serve/routes.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <mutex>
#include <sstream>

namespace cp::serve {

using nlohmann::json;

namespace {

// One plan or apply at a time in this serve: each walks whole lanes, and a page reloaded in a loop must not
// multiply that work.
std::mutex& retention_mutex() {
  static std::mutex mu;
  return mu;
}

ApiResponse policy_refused(const retention::PolicyError& e) {
  return error(409, "retention_policy",
               std::string(e.what()) +
                   "; fix policies/retention_policy.json (`cp-host validate` names the "
                   "problem) and ask again");
}

ApiResponse no_plugins() {
  return error(503, "no_plugins",
               "this serve has no plugin registry, so no retention lane plugin can plan; start it with "
               "--plugins DIR");
}

std::string known_lanes(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

ApiResponse plan(const ApiServices& s, const RouteCall& c) {
  if (!s.registry) return no_plugins();
  retention::Options o;
  o.root = s.cfg.root;
  std::lock_guard<std::mutex> l(retention_mutex());
  try {
    auto names = retention::lane_names(o.root);
    std::stringstream list(c.query("lanes"));
    for (std::string lane; std::getline(list, lane, ',');) {
      if (lane.empty()) continue;
      if (std::find(names.begin(), names.end(), lane) == names.end())
        return error(400, "bad_query",
                     "lanes: '" + lane + "' is not a lane of policies/retention_policy.json (lanes: " +
                         known_lanes(names) + ")",
                     {{"parameter", "lanes"}});
      o.lanes.push_back(lane);
    }
    return ok_json(retention::plan(o, *s.registry));
  } catch (const retention::PolicyError& e) {
    return policy_refused(e);
  }
}

ApiResponse apply(const ApiServices& s, const RouteCall& c) {
  if (!s.registry) return no_plugins();
  auto body = object_body(c.req.body);
  if (!body)
    return error(400, "bad_body",
                 "the body must be empty or a JSON object {\"lanes\": [...], \"paths\": {\"<lane>\": "
                 "[...]}, \"reason\": \"...\"}");
  retention::Options o;
  o.root = s.cfg.root;
  auto invalid = [](const std::string& pointer, const std::string& message) {
    return error(422, "invalid", pointer + ": " + message, {{"pointer", pointer}});
  };
  std::lock_guard<std::mutex> l(retention_mutex());
  try {
    auto names = retention::lane_names(o.root);
    auto is_lane = [&](const std::string& n) {
      return std::find(names.begin(), names.end(), n) != names.end();
    };
    for (const auto& [k, v] : body->items())
      if (k != "lanes" && k != "paths" && k != "reason")
        return invalid("/" + k, "unknown field; the body takes lanes, paths and reason");
    if (body->contains("lanes")) {
      const json& lanes = (*body)["lanes"];
      if (!lanes.is_array()) return invalid("/lanes", "must be an array of lane names");
      for (size_t i = 0; i < lanes.size(); ++i) {
        if (!lanes[i].is_string() || !is_lane(lanes[i].get<std::string>()))
          return invalid("/lanes/" + std::to_string(i),
                         "not a lane of policies/retention_policy.json (lanes: " + known_lanes(names) + ")");
        o.lanes.push_back(lanes[i]);
      }
    }
    if (body->contains("paths")) {
      const json& paths = (*body)["paths"];
      if (!paths.is_object())
        return invalid("/paths",
                       "must be an object of lane -> the candidate paths to delete, as the plan lists them");
      std::map<std::string, std::set<std::string>> only;
      for (const auto& [lane, list] : paths.items()) {
        const std::string at = "/paths/" + lane;
        if (!is_lane(lane))
          return invalid(at,
                         "not a lane of policies/retention_policy.json (lanes: " + known_lanes(names) + ")");
        if (!o.lanes.empty() && std::find(o.lanes.begin(), o.lanes.end(), lane) == o.lanes.end())
          return invalid(at, "the lane is not among /lanes");
        if (!list.is_array()) return invalid(at, "must be an array of paths");
        for (size_t i = 0; i < list.size(); ++i) {
          if (!list[i].is_string() || list[i].get<std::string>().empty())
            return invalid(at + "/" + std::to_string(i), "must be a path as the plan lists it");
          only[lane].insert(list[i].get<std::string>());
        }
      }
      // Only the lanes paths were chosen in are planned, unless lanes says more.
      if (o.lanes.empty())
        for (const auto& [lane, p] : only) o.lanes.push_back(lane);
      o.only = std::move(only);
    }
    if (body->contains("reason")) {
      const json& r = (*body)["reason"];
      if (!r.is_string() || r.get<std::string>().size() > 2000)
        return invalid("/reason", "must be a string of at most 2000 characters");
      o.reason = r.get<std::string>();
    }
    if (o.only && o.only->empty())
      return invalid("/paths", "names no lane; leave paths out to apply the whole plan");
    control::Actor who = control::token_holder(c.who.token_id);
    o.by = who.by;
    o.by_kind = who.by_kind;
    json planned = retention::plan(o, *s.registry);
    return ok_json(retention::apply(o, *s.registry, planned));
  } catch (const retention::PolicyError& e) {
    return policy_refused(e);
  }
}

}  // namespace

std::vector<Route> retention_routes() {
  return {
      {{"GET", "/api/retention/plan", Role::viewer}, plan},
      {{"POST", "/api/retention/apply", Role::admin}, apply},
  };
}

}  // namespace cp::serve
