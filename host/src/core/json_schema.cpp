#include "core/json_schema.hpp"

#include <nlohmann/json.hpp>
// Without this valijson prints and abort()s on a malformed schema; a plugin's bad schema must not kill the
// host.
#define VALIJSON_USE_EXCEPTIONS 1
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <regex>
#include <stdexcept>
#include <unordered_map>

namespace cp::core {

using nlohmann::json;

struct JsonSchema::Impl {
  json source;  // kept to explain violations ("expected ...")
  valijson::Schema schema;
  std::vector<std::string> patterns;  // every "pattern" of the schema, compiled ahead (see validate)
};

namespace {

// valijson's context is ["<root>", "[key]", "[0]", ...]; turn it into an RFC 6901 pointer.
std::string to_pointer(const std::vector<std::string>& context) {
  std::string out;
  for (size_t i = 1; i < context.size(); ++i) {
    std::string tok = context[i];
    if (tok.size() >= 2 && tok.front() == '[' && tok.back() == ']') tok = tok.substr(1, tok.size() - 2);
    std::string esc;
    for (char c : tok) {
      if (c == '~')
        esc += "~0";
      else if (c == '/')
        esc += "~1";
      else
        esc += c;
    }
    out += "/" + esc;
  }
  return out;
}

// valijson reports a rule in words; name the keyword so messages and tools can match on it.
std::string rule_of(const std::string& d) {
  struct Pair {
    const char* needle;
    const char* rule;
  };
  static const Pair table[] = {{"Missing required property", "required"},
                               {"'type' constraint", "type"},
                               {"enum values", "enum"},
                               {"'const' constraint", "const"},
                               {"'pattern' constraint", "pattern"},
                               {"Object contains a property", "additionalProperties"},
                               {"no more than", "max"},
                               {"no fewer than", "min"},
                               {"number less than", "maximum"},
                               {"number greater than", "minimum"},
                               {"multiple of", "multipleOf"},
                               {"anyOf", "anyOf"},
                               {"exactly one", "oneOf"},
                               {"oneOf", "oneOf"},
                               {"allOf", "allOf"},
                               {"if-then-else", "if"},
                               {"'contains'", "contains"},
                               {"Missing dependency", "dependencies"},
                               {"unique", "uniqueItems"},
                               {"property name", "propertyNames"},
                               {"'not'", "not"},
                               {"format", "format"}};
  for (const auto& p : table)
    if (d.find(p.needle) != std::string::npos) return p.rule;
  return "schema";
}

// "no more than" / "no fewer than" cover strings, arrays and objects; name the exact keyword.
std::string refine(std::string rule, const std::string& d) {
  if (rule == "max" || rule == "min") {
    std::string what = d.find("String") == 0 ? "Length" : d.find("Array") == 0 ? "Items" : "Properties";
    return rule + what;
  }
  return rule;
}

// Errors that only say a subschema failed; what failed inside it is reported on its own (an if-then-else
// branch's too).
bool is_wrapper(const std::string& d) {
  static const char* wrappers[] = {"Failed to validate against schema associated with property name",
                                   "Failed to validate item #",
                                   "Failed to validate against additional properties schema",
                                   "Failed to validate against schema associated with pattern",
                                   "Failed to validate against dependent schema",
                                   "Failed to validate against child schema",
                                   "Failed to validate against a conditional schema"};
  for (const char* w : wrappers)
    if (d.rfind(w, 0) == 0) return true;
  return false;
}

const json* resolve_ref(const json& root, const json* node) {
  for (int guard = 0; node && node->is_object() && node->contains("$ref") && guard < 16; ++guard) {
    const auto& ref = (*node)["$ref"];
    if (!ref.is_string()) return node;
    std::string r = ref.get<std::string>();
    if (r.rfind("#", 0) != 0) return node;
    try {
      node = &root.at(json::json_pointer(r.substr(1)));
    } catch (...) {
      return nullptr;
    }
  }
  return node;
}

// Walks the schema along the instance pointer (properties / items / additionalProperties) to find the
// subschema that governs the value, so a message can say what is allowed there.
const json* subschema_at(const json& root, const std::string& pointer) {
  const json* node = resolve_ref(root, &root);
  if (pointer.empty()) return node;
  // json_pointer has no public token list; split the string.
  std::vector<std::string> tokens;
  size_t i = 1;
  while (i <= pointer.size()) {
    size_t j = pointer.find('/', i);
    if (j == std::string::npos) j = pointer.size();
    std::string t = pointer.substr(i, j - i);
    std::string u;
    for (size_t k = 0; k < t.size(); ++k) {
      if (t[k] == '~' && k + 1 < t.size()) {
        u += t[k + 1] == '1' ? '/' : '~';
        ++k;
      } else {
        u += t[k];
      }
    }
    tokens.push_back(u);
    i = j + 1;
  }
  for (const auto& t : tokens) {
    if (!node || !node->is_object()) return nullptr;
    const json* next = nullptr;
    if (node->contains("properties") && (*node)["properties"].contains(t))
      next = &(*node)["properties"][t];
    else if (node->contains("items") && (*node)["items"].is_object() && !t.empty() &&
             t.find_first_not_of("0123456789") == std::string::npos)
      next = &(*node)["items"];
    else if (node->contains("additionalProperties") && (*node)["additionalProperties"].is_object())
      next = &(*node)["additionalProperties"];
    node = resolve_ref(root, next);
  }
  return node;
}

std::string expected_of(const json& root, const std::string& pointer, const std::string& rule,
                        const std::string& description) {
  const json* s = subschema_at(root, pointer);
  if (!s || !s->is_object()) return "";
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (rule == "type" && s->contains("type"))
    add("type " + ((*s)["type"].is_string() ? (*s)["type"].get<std::string>() : (*s)["type"].dump()));
  if (rule == "enum" && s->contains("enum")) add("one of " + (*s)["enum"].dump());
  if (rule == "const" && s->contains("const")) add("exactly " + (*s)["const"].dump());
  if (rule == "pattern" && s->contains("pattern"))
    add("a string matching " + (*s)["pattern"].get<std::string>());
  if (rule == "required" && s->contains("required")) add("required properties " + (*s)["required"].dump());
  if (rule == "additionalProperties" && s->contains("properties")) {
    std::string names;
    for (auto it = (*s)["properties"].begin(); it != (*s)["properties"].end(); ++it)
      names += (names.empty() ? "" : ", ") + it.key();
    add("known properties: " + names);
  }
  for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
                        "maxLength", "minItems", "maxItems"})
    if (rule.rfind(k, 0) == 0 || (rule == std::string(k))) {
      if (s->contains(k)) add(std::string(k) + " " + (*s)[k].dump());
    }
  if (rule == "minimum" && s->contains("exclusiveMinimum"))
    add("exclusiveMinimum " + (*s)["exclusiveMinimum"].dump());
  // The description helps at a leaf; on an object (required, unknown property) it only repeats the title.
  if (rule != "required" && rule != "additionalProperties" && s->contains("description") &&
      (*s)["description"].is_string())
    add((*s)["description"].get<std::string>());
  (void)description;
  return out;
}

// Every string under a "pattern" key of the schema.
void collect_patterns(const json& node, std::vector<std::string>& out) {
  if (node.is_array()) {
    for (const auto& item : node) collect_patterns(item, out);
  } else if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it.key() == "pattern" && it.value().is_string())
        out.push_back(it.value().get<std::string>());
      else
        collect_patterns(it.value(), out);
    }
  }
}

// The regexes valijson matches "pattern" against, keyed by pattern as valijson's own cache is. valijson
// would build each as std::regex(pattern), which libstdc++ matches by backtracking with one stack frame per
// character repeated: a string of some 100 KB against a pattern such as "^[a-z][a-z0-9_.-]*$" overflows the
// stack and kills the process, and the strings checked here come from plugins, planners and API bodies.
// Built in polynomial mode instead, the same pattern is matched breadth-first, in memory bounded by the
// pattern and time linear in the string. A pattern polynomial mode refuses (one with a back-reference) is
// left to valijson.
//
// Breadth-first matching costs twice the time of backtracking, though, and most documents hold only short
// strings. For a document whose strings and keys are all at most kShortText bytes, a pattern with no
// repeated group (where backtracking could take exponential time) is matched by backtracking: the stack it
// takes is bounded by that length. The answer is the same either way.
constexpr size_t kShortText = 256;

// Whether backtracking over a short string is safe with `pattern`: no group it holds is repeated, such as
// "(a+)+" or "(a|ab)*".
bool backtracking_safe(const std::string& pattern) {
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      ++i;
      continue;
    }
    if (in_class) {
      in_class = c != ']';
      continue;
    }
    if (c == '[') {
      in_class = true;
    } else if (c == ')' && i + 1 < pattern.size()) {
      char next = pattern[i + 1];
      if (next == '*' || next == '+' || next == '?' || next == '{') return false;
    }
  }
  return true;
}

using RegexCache = std::unordered_map<std::string, std::regex>;

RegexCache& pattern_cache(const std::vector<std::string>& patterns, bool short_texts) {
  thread_local RegexCache polynomial, backtracking;
  RegexCache& cache = short_texts ? backtracking : polynomial;
  for (const auto& p : patterns) {
    if (cache.count(p)) continue;
    try {
      if (short_texts && backtracking_safe(p))
        cache.emplace(p, std::regex(p, std::regex::ECMAScript));
      else
        cache.emplace(p, std::regex(p, std::regex::ECMAScript | std::regex_constants::__polynomial));
    } catch (const std::regex_error&) {
    }
  }
  return cache;
}

// Whether every string and key in `v` is at most kShortText bytes; false too when `v` nests deeper than a
// document worth walking for this.
bool short_texts(const json& v, int depth = 0) {
  if (v.is_string()) return v.get_ref<const std::string&>().size() <= kShortText;
  if (depth > 64) return false;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      if (it.key().size() > kShortText || !short_texts(it.value(), depth + 1)) return false;
  } else if (v.is_array()) {
    for (const auto& item : v)
      if (!short_texts(item, depth + 1)) return false;
  }
  return true;
}

}  // namespace

JsonSchema::JsonSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;
JsonSchema::~JsonSchema() = default;

JsonSchema JsonSchema::compile(const json& schema) {
  auto impl = std::make_unique<Impl>();
  impl->source = schema;
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(impl->source);
    parser.populateSchema(adapter, impl->schema);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("invalid JSON Schema: ") + e.what());
  }
  collect_patterns(impl->source, impl->patterns);
  return JsonSchema(std::move(impl));
}

std::vector<SchemaViolation> JsonSchema::validate(const json& doc) const {
  // What valijson::Validator::validate does, with the regex cache ours: one per thread, filled with the
  // schema's patterns in polynomial mode before valijson would build them its own way.
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  valijson::ValidationVisitor<valijson::adapters::NlohmannJsonAdapter> visitor(
      target, std::vector<std::string>(1, "<root>"), true, &results,
      pattern_cache(impl_->patterns, short_texts(doc)));
  std::vector<SchemaViolation> out;
  if (visitor.validateSchema(impl_->schema)) return out;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    if (is_wrapper(e.description)) continue;
    SchemaViolation v;
    v.pointer = to_pointer(e.context);
    v.rule = refine(rule_of(e.description), e.description);
    v.message = e.description;
    if (!v.message.empty() && v.message.back() == '.') v.message.pop_back();
    v.expected = expected_of(impl_->source, v.pointer, v.rule, e.description);
    if (v.rule == "required") {
      // Point at the missing property (its line is the enclosing object's) and say only what is missing.
      auto a = v.message.find('\'');
      auto b = v.message.rfind('\'');
      if (a != std::string::npos && b > a) {
        std::string name = v.message.substr(a + 1, b - a - 1);
        std::string esc;
        for (char c : name)
          esc += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
        std::string parent = v.pointer;
        v.pointer += "/" + esc;
        v.message = "missing required property '" + name + "'";
        const json* ps = subschema_at(impl_->source, parent);
        v.expected = "add \"" + name + "\"";
        if (ps && ps->contains("properties") && (*ps)["properties"].contains(name)) {
          const json* prop = resolve_ref(impl_->source, &(*ps)["properties"][name]);
          if (prop && prop->contains("description") && (*prop)["description"].is_string())
            v.expected += ": " + (*prop)["description"].get<std::string>();
          else if (prop && prop->contains("type") && (*prop)["type"].is_string())
            v.expected += " (" + (*prop)["type"].get<std::string>() + ")";
        }
      }
    }
    if (v.rule == "additionalProperties") {
      // Point at the unknown property itself, not at the object that holds it.
      auto q = v.message.rfind(": '");
      if (q != std::string::npos && v.message.size() > q + 4) {
        std::string name = v.message.substr(q + 3, v.message.size() - q - 4);
        std::string esc;
        for (char c : name)
          esc += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
        v.pointer += "/" + esc;
        v.message = "unknown property '" + name + "'";
      }
    }
    out.push_back(std::move(v));
  }
  if (out.empty()) out.push_back({"", "schema", "document does not match the schema", ""});
  return out;
}

}  // namespace cp::core
