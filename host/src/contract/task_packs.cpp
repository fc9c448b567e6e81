#include "contract/task_packs.hpp"
#include "core/ascii.hpp"
#include "core/json_text.hpp"

#include "core/json_depth.hpp"
#include "core/json_locator.hpp"
#include "core/runtime_paths.hpp"
#include "core/schema_catalog.hpp"
#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <re2/re2.h>

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>

namespace cp::contract {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A pack is a page of settings and templates; anything near this size is not one.
constexpr uint64_t kMaxTaskPackBytes = 1u << 20;

bool pack_name_ok(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// The {{name}} references of a template text, in order.
std::vector<std::string> template_refs(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = text.find("{{"); at != std::string::npos; at = text.find("{{", at + 2)) {
    size_t end = text.find("}}", at + 2);
    if (end == std::string::npos) break;
    out.push_back(text.substr(at + 2, end - at - 2));
  }
  return out;
}

// Every string of `node` with its pointer.
void each_string(const json& node, const std::string& pointer,
                 const std::function<void(const std::string&, const std::string&)>& fn) {
  if (node.is_string()) {
    fn(pointer, node.get<std::string>());
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) each_string(node[i], pointer + "/" + std::to_string(i), fn);
  } else if (node.is_object()) {
    for (auto it = node.begin(); it != node.end(); ++it)
      each_string(it.value(), pointer + "/" + core::pointer_token(it.key()), fn);
  }
}

// A string member of an object, or "" (the checks below also run on documents of any shape).
bool compiles(const std::string& pattern, std::string& why) {
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(pattern, o);
  if (!re.ok()) why = re.error();
  return re.ok();
}

// Whether one path segment, a literal or a glob of '*' and '?' within the segment, names `reserved`
// (lower case), ignoring letter case. Dynamic programming: no backtracking over the stars.
bool reserved_segment(const std::string& segment, const std::string& reserved) {
  std::vector<char> next(reserved.size() + 1, 0), cur(reserved.size() + 1, 0);
  next[reserved.size()] = 1;
  for (size_t i = segment.size(); i-- > 0;) {
    const char c =
        segment[i] >= 'A' && segment[i] <= 'Z' ? static_cast<char>(segment[i] - 'A' + 'a') : segment[i];
    cur[reserved.size()] = c == '*' ? next[reserved.size()] : 0;
    for (size_t j = reserved.size(); j-- > 0;) {
      if (c == '*')
        cur[j] = next[j] || cur[j + 1];
      else
        cur[j] = (c == '?' || c == reserved[j]) && next[j + 1];
    }
    std::swap(cur, next);
  }
  return next[0];
}

bool line_ok(const std::string& s, size_t max, std::string& why) {
  if (s.find_first_not_of(" \t") == std::string::npos) return why = "an empty text", false;
  if (s.size() > max) return why = "longer than " + std::to_string(max) + " characters", false;
  if (s.find('\n') != std::string::npos || s.find('\r') != std::string::npos)
    return why = "more than one line", false;
  return true;
}

Diagnostic diag(const std::string& file, const std::string& text, const json& doc, const std::string& pointer,
                const std::string& rule, const std::string& message, const std::string& expected) {
  Diagnostic d;
  d.file = file;
  d.line = text.empty() ? 1 : core::line_of_pointer(text, pointer);
  d.pointer = pointer;
  d.rule = rule;
  d.message = message;
  d.expected = expected;
  d.schema = "task_pack";
  if (!doc.is_discarded() && !pointer.empty() && rule != "required") {
    try {
      std::string v = doc.at(json::json_pointer(pointer)).dump();
      d.value = v.size() > 200 ? v.substr(0, 197) + "..." : v;
    } catch (...) {
    }
  }
  return d;
}

// Reads and checks <root>/packs/tasks/<name>/pack.json. nullopt with the reasons in `out`.
std::optional<TaskPack> read_pack(const fs::path& root, const std::string& name,
                                  std::vector<Diagnostic>& out) {
  const std::string rel = std::string(kTaskPacksDir) + "/" + name + "/" + kTaskPackFile;
  store::FileRead r = store::read_regular_file_beneath(root, rel, kMaxTaskPackBytes);
  if (r.status == store::FileRead::Status::too_large) {
    out.push_back(
        diag(rel, "", json(json::value_t::discarded), "", "io",
             "the file is larger than " + std::to_string(kMaxTaskPackBytes >> 20) + " MiB; refused unread",
             "a task pack under 1 MiB"));
    return std::nullopt;
  }
  if (r.status != store::FileRead::Status::ok) {
    out.push_back(
        diag(rel, "", json(json::value_t::discarded), "", "io",
             "not readable as a regular file beneath the root (missing, a link, or a folder on its way "
             "is a link)",
             "a regular file " + rel));
    return std::nullopt;
  }
  if (!core::json_depth_ok(r.bytes)) {
    out.push_back(
        diag(rel, "", json(json::value_t::discarded), "", "json",
             "nested more than " + std::to_string(core::kMaxJsonDepth) + " levels deep (refused unparsed)",
             "a task pack of a few levels"));
    return std::nullopt;
  }
  json doc = json::parse(r.bytes, nullptr, false);
  if (doc.is_discarded()) {
    out.push_back(diag(rel, "", doc, "", "json",
                       "not valid JSON (run `cp-host validate " + rel + "` for the position)",
                       "well-formed JSON"));
    return std::nullopt;
  }
  size_t before = out.size();
  for (const auto& v : core::schema("task_pack").validate(doc))
    out.push_back(diag(rel, r.bytes, doc, v.pointer, v.rule, v.message, v.expected));
  if (out.size() == before)
    for (const auto& p : check_task_pack(doc, name))
      out.push_back(diag(rel, r.bytes, doc, p.pointer, p.rule, p.message, p.expected));
  if (out.size() != before) return std::nullopt;
  return TaskPack{name, root / rel, std::move(doc), core::sha256_hex(r.bytes)};
}

}  // namespace

const TaskPack* TaskPackSet::find(std::string_view name) const {
  for (const auto& p : packs)
    if (p.name == name) return &p;
  return nullptr;
}

TaskPackSet load_task_packs(const fs::path& root) {
  TaskPackSet set;
  const fs::path dir = root / kTaskPacksDir;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return set;  // no task packs
  if (!S_ISDIR(st.st_mode)) {
    set.diagnostics.push_back(diag(kTaskPacksDir, "", json(json::value_t::discarded), "", "io",
                                   "not a folder (a link is never followed here)", "a folder of task packs"));
    return set;
  }
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n[0] == '.') continue;
    std::error_code sec;
    auto s = e.symlink_status(sec);
    if (sec || !fs::is_directory(s)) {
      set.diagnostics.push_back(
          diag(std::string(kTaskPacksDir) + "/" + n, "", json(json::value_t::discarded), "", "io",
               fs::is_symlink(s) ? "a symbolic link; links are never followed here" : "not a pack folder",
               "a folder packs/tasks/<name>/ holding pack.json"));
      continue;
    }
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  if (names.size() > kMaxTaskPacks) {
    names.resize(kMaxTaskPacks);
    set.truncated = true;
  }
  for (const auto& n : names) {
    if (!pack_name_ok(n)) {
      set.diagnostics.push_back(diag(std::string(kTaskPacksDir) + "/" + n, "", json(json::value_t::discarded),
                                     "", "name", "the folder's name is not a task pack name",
                                     "[a-z][a-z0-9-]{0,63}: the pack's name"));
      continue;
    }
    if (auto p = read_pack(root, n, set.diagnostics)) set.packs.push_back(std::move(*p));
  }
  return set;
}

std::optional<TaskPack> load_task_pack(const fs::path& root, std::string_view name,
                                       std::vector<Diagnostic>& diagnostics) {
  if (!pack_name_ok(name)) {
    diagnostics.push_back(diag(kTaskPacksDir, "", json(json::value_t::discarded), "", "name",
                               "'" + std::string(name.substr(0, 100)) + "' is not a task pack name",
                               "[a-z][a-z0-9-]{0,63}"));
    return std::nullopt;
  }
  return read_pack(root, std::string(name), diagnostics);
}

bool planned_path_ok(const std::string& p, std::string& why) {
  static const std::string runtime_folder = core::runtime_cache_dir({}).filename().string();
  if (p.empty()) return why = "an empty path", false;
  if (p.size() > 1000) return why = "a path longer than 1000 characters", false;
  if (p[0] == '/') return why = "'" + p + "' starts with '/': give a path relative to the repo root", false;
  if (p.find_first_of(std::string("\n\r\0", 3)) != std::string::npos)
    return why = "a path holding a line break or a NUL", false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string segment = p.substr(start, end - start);
    if (segment == "..") return why = "'" + p + "' has a '..' segment: give a path inside the repo", false;
    if (segment != "*" && segment != "**")
      for (const std::string& reserved : {std::string(".git"), runtime_folder})
        if (reserved_segment(segment, reserved))
          return why = "'" + p + "' reaches " + reserved +
                       ", which no planned job may change (the repository's git folder, the host's runtime "
                       "folder): name the paths of the work itself",
                 false;
    start = end + 1;
  }
  return true;
}

namespace {

std::string trimmed_answer(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

json answer_list(const std::string& text, bool paths) {
  json out = json::array();
  std::string cur;
  auto flush = [&] {
    std::string t = trimmed_answer(cur);
    if (!t.empty()) out.push_back(t);
    cur.clear();
  };
  for (char c : text) {
    if (c == '\n' || (paths && (c == ',' || c == ' ' || c == '\t')))
      flush();
    else
      cur += c;
  }
  flush();
  return out;
}

}  // namespace

json field_value_from_answer(const json& field, const json& answer) {
  if (!answer.is_string()) return answer;
  const std::string type = field.contains("type") ? core::text_of(field, "type") : "string";
  const std::string t = trimmed_answer(answer.get<std::string>());
  if (type == "paths" || type == "commands") return answer_list(answer.get<std::string>(), type == "paths");
  if (type == "integer" && !t.empty() && t.size() < 18 &&
      t.find_first_not_of("0123456789") == std::string::npos)
    return std::stoll(t);
  if (type == "boolean") {
    const std::string l = core::ascii_lower(t);
    if (l == "yes" || l == "y" || l == "true") return true;
    if (l == "no" || l == "n" || l == "false") return false;
  }
  if (type == "choice" && field.contains("choices") && field["choices"].is_array())
    for (const auto& c : field["choices"])
      if (c.is_string() && core::ascii_lower(c.get<std::string>()) == core::ascii_lower(t)) return c;
  return t;
}

bool field_value_ok(const json& field, const json& value, std::string& why) {
  const std::string type = field.contains("type") ? core::text_of(field, "type") : "string";
  const size_t max = field.contains("max_length") && field["max_length"].is_number_unsigned()
                         ? std::min<size_t>(field["max_length"].get<size_t>(), 20000)
                         : (type == "text" ? 20000 : 2000);
  std::vector<std::string> texts;
  if (type == "integer") {
    if (!value.is_number_integer()) return why = "expected an integer", false;
  } else if (type == "boolean") {
    if (!value.is_boolean()) return why = "expected true or false", false;
  } else if (type == "paths" || type == "commands") {
    if (!value.is_array() || value.empty() || value.size() > 64)
      return why = "expected a list of 1 to 64 " + std::string(type == "paths" ? "paths" : "commands"), false;
    for (const auto& v : value) {
      if (!v.is_string()) return why = "every item must be a text", false;
      texts.push_back(v.get<std::string>());
      if (type == "paths" ? !planned_path_ok(texts.back(), why) : !line_ok(texts.back(), max, why))
        return false;
    }
  } else {
    if (!value.is_string()) return why = "expected a text", false;
    texts.push_back(value.get<std::string>());
    const std::string& s = texts.back();
    if (type == "path") {
      if (!planned_path_ok(s, why)) return false;
    } else if (type == "text") {
      if (s.find_first_not_of(" \t\r\n") == std::string::npos) return why = "an empty text", false;
      if (s.size() > max) return why = "longer than " + std::to_string(max) + " characters", false;
    } else if (!line_ok(s, max, why)) {
      return false;
    }
    if (type == "choice") {
      bool listed = false;
      const json choices = field.contains("choices") ? field["choices"] : json::array();
      for (const auto& c : choices) listed = listed || c == value;
      if (!listed) return why = "'" + s.substr(0, 100) + "' is not one of " + choices.dump(), false;
    }
  }
  if (field.contains("pattern") && field["pattern"].is_string()) {
    RE2::Options o;
    o.set_log_errors(false);
    RE2 re(field["pattern"].get<std::string>(), o);
    if (!re.ok()) return why = "the field's pattern does not compile: " + re.error(), false;
    for (const auto& t : texts)
      if (!RE2::FullMatch(t, re))
        return why = "'" + t.substr(0, 100) + "' does not match the pattern " +
                     field["pattern"].get<std::string>(),
               false;
  }
  return true;
}

std::vector<TaskPackProblem> check_task_pack(const json& doc, std::string_view folder_name) {
  std::vector<TaskPackProblem> out;
  if (!doc.is_object()) return out;
  if (!folder_name.empty() && core::text_of(doc, "name") != folder_name)
    out.push_back({"/name", "xref:folder",
                   "the pack is named '" + core::text_of(doc, "name") + "' but its folder is '" +
                       std::string(folder_name) + "'",
                   "the folder's name, " + std::string(folder_name)});
  std::set<std::string> declared;
  const json fields = doc.contains("fields") && doc["fields"].is_array() ? doc["fields"] : json::array();
  for (size_t i = 0; i < fields.size(); ++i) {
    const json& f = fields[i];
    if (!f.is_object()) continue;
    const std::string at = "/fields/" + std::to_string(i);
    const std::string name = core::text_of(f, "name");
    if (name == "task_pack")
      out.push_back({at + "/name", "reserved", "'task_pack' names the pack itself; a field cannot use it",
                     "another field name"});
    if (!declared.insert(name).second)
      out.push_back(
          {at + "/name", "unique", "field '" + name + "' is declared twice", "a unique field name"});
    std::string why;
    if (f.contains("pattern") && f["pattern"].is_string() && !compiles(f["pattern"].get<std::string>(), why))
      out.push_back(
          {at + "/pattern", "pattern", "the pattern does not compile (RE2): " + why, "an RE2 pattern"});
    if (f.contains("extract") && f["extract"].is_object() && f["extract"].contains("pattern") &&
        f["extract"]["pattern"].is_string() && !compiles(f["extract"]["pattern"].get<std::string>(), why))
      out.push_back({at + "/extract/pattern", "pattern", "the pattern does not compile (RE2): " + why,
                     "an RE2 pattern"});
    const std::string type = f.contains("type") ? core::text_of(f, "type") : "string";
    if (type == "choice" && !f.contains("choices"))
      out.push_back(
          {at, "choices", "field '" + name + "' is a choice but lists no choices", "a choices list"});
    if (type != "choice" && f.contains("choices"))
      out.push_back({at + "/choices", "choices", "only a field of type choice lists choices",
                     "type choice, or no choices"});
    if (f.contains("choices") && f["choices"].is_array())
      for (size_t j = 0; j < f["choices"].size(); ++j)
        if (!field_value_ok(f, f["choices"][j], why))
          out.push_back({at + "/choices/" + std::to_string(j), "choices",
                         "the choice is not a valid value: " + why,
                         "a value of the field's type and pattern"});
    if (f.contains("default") && !field_value_ok(f, f["default"], why))
      out.push_back({at + "/default", "default", "the default is not a valid value: " + why,
                     "a value of the field's type and pattern"});
  }
  if (doc.contains("match") && doc["match"].is_object() && doc["match"].contains("patterns") &&
      doc["match"]["patterns"].is_array()) {
    const json& ps = doc["match"]["patterns"];
    for (size_t j = 0; j < ps.size(); ++j) {
      std::string why;
      if (ps[j].is_string() && !compiles(ps[j].get<std::string>(), why))
        out.push_back({"/match/patterns/" + std::to_string(j), "pattern",
                       "the pattern does not compile (RE2): " + why, "an RE2 pattern"});
    }
  }
  if (!doc.contains("chain") || !doc["chain"].is_object()) return out;
  const json& chain = doc["chain"];
  std::string known;
  for (const auto& n : declared) known += (known.empty() ? "" : ", ") + n;
  each_string(chain, "/chain", [&](const std::string& pointer, const std::string& text) {
    for (const auto& ref : template_refs(text))
      if (!declared.count(ref))
        out.push_back({pointer, "xref:field", "{{" + ref + "}} names no field of the pack",
                       known.empty() ? "a declared field" : "one of: " + known});
  });
  std::set<std::string> ids;
  const json steps = chain.contains("steps") && chain["steps"].is_array() ? chain["steps"] : json::array();
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].is_object()) continue;
    const std::string at = "/chain/steps/" + std::to_string(i);
    std::string id = core::text_of(steps[i], "step_id");
    if (!ids.insert(id).second)
      out.push_back({at + "/step_id", "unique", "step_id '" + id + "' is used twice", "a unique step id"});
    if (steps[i].contains("when") && steps[i]["when"].is_string() &&
        !declared.count(steps[i]["when"].get<std::string>()))
      out.push_back({at + "/when", "xref:field",
                     "'" + steps[i]["when"].get<std::string>() + "' is no field of the pack",
                     known.empty() ? "a declared field" : "one of: " + known});
  }
  return out;
}

json task_pack_summary(const TaskPack& pack, const fs::path& root) {
  const json& d = pack.doc;
  json fields = json::array();
  for (const auto& f : d.value("fields", json::array())) {
    json e{{"name", f.value("name", "")},
           {"description", f.value("description", "")},
           {"type", f.value("type", "string")},
           {"required", f.value("required", false)},
           {"question", f.value("question", "")}};
    for (const char* k : {"pattern", "choices", "default", "extract", "max_length"})
      e[k] = f.contains(k) ? f[k] : json(nullptr);
    fields.push_back(std::move(e));
  }
  json steps = json::array();
  for (const auto& s : d["chain"].value("steps", json::array())) {
    json e{{"step_id", s.value("step_id", "")}, {"kind", s.value("kind", "task")}};
    for (const char* k : {"role", "title", "runner", "pack", "when", "parallel_group"})
      e[k] = s.contains(k) && s[k].is_string() ? s[k] : json(nullptr);
    steps.push_back(std::move(e));
  }
  json match = d.value("match", json::object());
  std::error_code ec;
  fs::path rel = pack.file.lexically_relative(root);
  return {{"name", pack.name},
          {"title", d.value("title", "")},
          {"description", d.value("description", "")},
          {"path", rel.empty() ? pack.file.string() : rel.generic_string()},
          {"sha256", pack.sha256},
          {"fields", fields},
          {"match",
           {{"keywords", match.value("keywords", json::array())},
            {"patterns", match.value("patterns", json::array())},
            {"min_score", match.value("min_score", 2)},
            {"examples", match.value("examples", json::array())}}},
          {"chain_title", d["chain"].value("title", "")},
          {"steps", steps}};
}

}  // namespace cp::contract
