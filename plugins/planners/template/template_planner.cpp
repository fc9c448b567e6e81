// Planner `template`: deterministic, no model. It takes the task pack the person named (or the one whose
// match hints the request fits best), fills the pack's fields from the answers, then from the request's own
// words (each field's extract rule), then from defaults; asks the pack's question for every required field
// still missing or answered in a form the field does not take (saying why); and once every field is there,
// renders the pack's chain into a plan bundle. A request no pack fits gets no_match with every pack as a
// suggestion; a tie between packs is asked as a question of its own (field "task_pack").
#include "pack_fields.hpp"
#include "pack_template.hpp"

#include <cortexpilot/json_guard.h>
#include <cortexpilot/plugin.hpp>

#include <algorithm>

namespace {

using nlohmann::json;
using namespace cp::planners;

constexpr const char* kConfigSchema =
    R"({"type": "object", "additionalProperties": false, "properties": {}})";

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80);
}

// `word` occurs in `text` (both lower case) with no letter or digit glued to either end.
bool has_word(const std::string& text, const std::string& word) {
  if (word.empty()) return false;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    bool left = at == 0 || !word_char(text[at - 1]) || !word_char(word.front());
    size_t end = at + word.size();
    bool right = end >= text.size() || !word_char(text[end]) || !word_char(word.back());
    if (left && right) return true;
  }
  return false;
}

// Points of `request` for `pack`: 1 a keyword present, 2 a pattern matching.
int score(const json& pack, const std::string& request) {
  if (!pack.contains("match") || !pack["match"].is_object()) return 0;
  const json& m = pack["match"];
  const std::string text = lower(request);
  int points = 0;
  for (const auto& k : m.value("keywords", json::array()))
    if (k.is_string() && has_word(text, lower(k.get<std::string>()))) points += 1;
  RE2::Options o;
  o.set_log_errors(false);
  o.set_case_sensitive(false);
  for (const auto& p : m.value("patterns", json::array())) {
    if (!p.is_string()) continue;
    RE2 re(p.get<std::string>(), o);
    if (re.ok() && RE2::PartialMatch(request, re)) points += 2;
  }
  return points;
}

int min_score(const json& pack) {
  return pack.contains("match") && pack["match"].is_object() ? pack["match"].value("min_score", 2) : 2;
}

json suggestion(const json& pack, const std::string& why) {
  json s{{"task_pack", pack.value("name", "")}, {"title", pack.value("title", "")}};
  if (!why.empty()) s["why"] = why;
  return s;
}

// How many times the field was asked already (questions carry ids <field>-<n>).
int times_asked(const json& asked, const std::string& field) {
  int n = 0;
  for (const auto& q : asked)
    if (q.is_object() && q.value("field", "") == field) ++n;
  return n;
}

json question_for(const std::string& field, const std::string& text, const json& asked) {
  return {
      {"id", field + "-" + std::to_string(times_asked(asked, field) + 1)}, {"field", field}, {"text", text}};
}

class TemplatePlanner : public cp::Planner {
 public:
  TemplatePlanner(cp::Context&, const std::string&) {}

  std::string plan(cp::Context&, const std::string& input_json) override {
    if (cp_json_depth(input_json.data(), input_json.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH)
      throw cp::Error(CP_E_INVALID, "planner input nested too deep");
    json in = json::parse(input_json, nullptr, false);
    if (!in.is_object()) throw cp::Error(CP_E_INVALID, "planner input is not a JSON object");
    const std::string request = in.value("request", "");
    const json packs = in.value("task_packs", json::array());
    const json answers = in.value("answers", json::object());
    const json asked = in.value("asked", json::array());

    std::string name = in["task_pack"].is_string() ? in["task_pack"].get<std::string>() : "";
    json chosen_problem;
    if (name.empty() && answers.contains("task_pack") && answers["task_pack"].is_string()) {
      name = trim(answers["task_pack"].get<std::string>());
      if (!find(packs, name)) {
        chosen_problem = "there is no task pack '" + name + "'";
        name.clear();
      }
    }
    const json* pack = nullptr;
    if (!name.empty()) {
      pack = find(packs, name);
      if (!pack) return no_match("there is no task pack named '" + name + "'", packs, request).dump();
    } else {
      std::vector<std::pair<int, const json*>> ranked;
      for (const auto& p : packs) ranked.emplace_back(score(p, request), &p);
      std::stable_sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) { return a.first > b.first; });
      std::vector<const json*> fits;
      for (const auto& [points, p] : ranked)
        if (points >= min_score(*p) && points == ranked.front().first) fits.push_back(p);
      if (fits.empty())
        return no_match(
                   "the request fits no task pack: none of their keywords or patterns match it well enough; "
                   "name a pack, or say the job in the words of one of them",
                   packs, request)
            .dump();
      if (fits.size() > 1) {
        json choices = json::array();
        for (const auto* p : fits) choices.push_back((*p)["name"]);
        json q = question_for("task_pack", "Which kind of job is this?", asked);
        q["choices"] = choices;
        if (chosen_problem.is_string()) q["problem"] = chosen_problem;
        return json{{"status", "questions"},
                    {"task_pack", nullptr},
                    {"questions", json::array({q})},
                    {"message", "The request fits more than one task pack."}}
            .dump();
      }
      pack = fits.front();
    }
    return fill_fields(*pack, request, answers, asked).dump();
  }

 private:
  static const json* find(const json& packs, const std::string& name) {
    for (const auto& p : packs)
      if (p.is_object() && p.value("name", "") == name) return &p;
    return nullptr;
  }

  static json no_match(const std::string& reason, const json& packs, const std::string& request) {
    json suggestions = json::array();
    for (const auto& p : packs) {
      int points = score(p, request);
      suggestions.push_back(suggestion(p, points > 0 ? "matched " + std::to_string(points) + " of the " +
                                                           std::to_string(min_score(p)) + " points it needs"
                                                     : ""));
    }
    return {{"status", "no_match"}, {"reason", reason}, {"suggestions", suggestions}};
  }

  static json fill_fields(const json& pack, const std::string& request, const json& answers,
                          const json& asked) {
    json values = json::object();
    json questions = json::array();
    for (const auto& f : pack.value("fields", json::array())) {
      const std::string name = f.value("name", "");
      std::string why;
      if (answers.contains(name)) {
        json v = normalize(f, answers[name]);
        if (value_ok(f, v, why)) {
          values[name] = v;
          continue;
        }
      } else if (json found = extract(f, request); !found.is_null()) {
        json v = normalize(f, found);
        std::string ignored;
        if (value_ok(f, v, ignored)) {
          values[name] = v;
          continue;
        }
      }
      if (f.contains("default")) {
        if (why.empty()) {
          values[name] = f["default"];
          continue;
        }
      } else if (!f.value("required", false) && why.empty()) {
        continue;  // optional, not given
      }
      json q = question_for(name, f.value("question", "What is " + name + "?"), asked);
      if (f.contains("choices")) q["choices"] = f["choices"];
      if (!why.empty()) q["problem"] = "The answer was not taken: " + why + ".";
      questions.push_back(std::move(q));
    }
    if (!questions.empty())
      return {{"status", "questions"}, {"task_pack", pack["name"]}, {"questions", questions}};
    return {{"status", "plan"}, {"plan", render_plan(pack, values)}};
  }
};

}  // namespace

CP_PLUGIN(
    "cp-planner-template", "0.1.0",
    cp::planner<TemplatePlanner>(
        "template", "0.1.0",
        "Deterministic planner: a task pack's questions for missing fields, then the pack's chain as a plan",
        kConfigSchema, "[]"))
