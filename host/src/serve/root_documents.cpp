#include "serve/root_documents.hpp"

#include "contract/file_kind.hpp"
#include "contract/validation.hpp"
#include "core/clock.hpp"
#include "core/json_depth.hpp"
#include "core/sha256.hpp"
#include "store/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <system_error>
#include <vector>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One .json file (or link) found beneath a folder of the root, from lstat alone.
struct Found {
  enum class Kind { regular, symlink, other };
  std::string rel;  // relative to the root, '/'-separated: "contracts/fix.json"
  Kind kind = Kind::other;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string link;  // a symlink's target as written
  bool link_inside_root = false;

  std::string key() const {
    return std::to_string(static_cast<int>(kind)) + "|" + std::to_string(size) + "|" +
           std::to_string(mtime_ns) + "|" + link;
  }
};

struct Scan {
  std::vector<Found> files;
  bool truncated = false;
};

bool json_name(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
}

// A role's prompt (policies/role_config.json's prompt_ref): copied beside the policies so the role config
// validates against the prompts it names, never listed itself.
bool prompt_name(const std::string& name) {
  return name.size() > 3 && name.compare(name.size() - 3, 3, ".md") == 0;
}

Found found_at(const fs::path& root, const fs::path& full, std::string rel, const struct stat& st) {
  Found f;
  f.rel = std::move(rel);
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) {
    f.kind = Found::Kind::regular;
  } else if (S_ISLNK(st.st_mode)) {
    f.kind = Found::Kind::symlink;
    std::error_code ec;
    fs::path target = fs::read_symlink(full, ec);
    f.link = target.string();
    // Where it leads, resolved only to say so; what it leads to is never opened.
    fs::path resolved = fs::weakly_canonical(target.is_absolute() ? target : full.parent_path() / target, ec);
    fs::path inside = resolved.lexically_relative(root);
    f.link_inside_root = !ec && !inside.empty() && *inside.begin() != "..";
  }
  return f;
}

// The .json files beneath <root>/<folder>, recursively (as `cp-host validate` collects them: folders whose
// name starts with '.' are skipped), never descending through a link. A link named *.json, or leading to a
// folder, is listed so the answer can say it was not followed.
Scan scan(const fs::path& root, const std::string& folder, const RootDocumentLimits& lim,
          bool (*wanted)(const std::string&) = json_name) {
  Scan s;
  fs::path dir = root / folder;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return s;
  if (S_ISLNK(st.st_mode)) {
    s.files.push_back(found_at(root, dir, folder, st));
    return s;
  }
  if (!S_ISDIR(st.st_mode)) return s;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    struct stat est {};
    if (::lstat(p.c_str(), &est) != 0) continue;
    if (S_ISDIR(est.st_mode)) {
      if (!name.empty() && name[0] == '.') {
        it.disable_recursion_pending();
      } else if (it.depth() + 1 >= lim.max_depth) {
        it.disable_recursion_pending();
        s.truncated = true;
      }
      continue;
    }
    bool listed = wanted(name);
    if (!listed && S_ISLNK(est.st_mode)) {
      std::error_code dec;
      listed = fs::is_directory(p, dec);  // a linked folder: said, not entered
    }
    if (!listed) continue;
    if (s.files.size() >= lim.max_files) {
      s.truncated = true;
      break;
    }
    s.files.push_back(found_at(root, p, folder + "/" + p.lexically_relative(dir).generic_string(), est));
  }
  std::sort(s.files.begin(), s.files.end(), [](const Found& a, const Found& b) { return a.rel < b.rel; });
  return s;
}

json base_entry(const Found& f) {
  return {{"path", f.rel}, {"size", f.size}, {"modified_at", core::iso_from_ms(f.mtime_ns / 1000000)}};
}

json error_entry(const Found& f, const std::string& code, const std::string& message) {
  json e = base_entry(f);
  e["state"] = "error";
  e["error"] = {{"code", code}, {"message", message}};
  return e;
}

std::string mib(uint64_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

// The bytes of `f`, read beneath the root without following any link, or nullopt with its error entry.
std::optional<std::string> read_found(const fs::path& root, const Found& f, const RootDocumentLimits& lim,
                                      uint64_t& budget, json& refused) {
  if (f.kind == Found::Kind::symlink) {
    refused = error_entry(f, "symlink",
                          "a symbolic link to " + f.link + (f.link_inside_root ? " (inside" : " (outside") +
                              " the runtime root); links are never followed here. Put the file itself "
                              "in its place");
    return std::nullopt;
  }
  if (f.kind == Found::Kind::other) {
    refused = error_entry(f, "not_regular", "not a regular file (a FIFO, socket or device); not read");
    return std::nullopt;
  }
  if (f.size > lim.max_file_bytes) {
    refused = error_entry(f, "too_large",
                          "the file is " + mib(f.size) + "; refused unread (at most " +
                              mib(lim.max_file_bytes) + ", as `cp-host validate` reads)");
    return std::nullopt;
  }
  if (f.size > budget) {
    refused = error_entry(f, "over_budget",
                          "not read: one answer reads at most " + mib(lim.max_read_bytes) +
                              " of files, and the files before this one took it. Run `cp-host validate " +
                              f.rel + "`");
    return std::nullopt;
  }
  store::FileRead r = store::read_regular_file_beneath(root, f.rel, lim.max_file_bytes);
  if (r.status == store::FileRead::Status::too_large) {
    refused =
        error_entry(f, "too_large", "the file grew past " + mib(lim.max_file_bytes) + "; refused unread");
    return std::nullopt;
  }
  if (r.status != store::FileRead::Status::ok) {
    refused = error_entry(f, "unreadable",
                          "not readable as a regular file beneath the root (it changed while listed, is not "
                          "readable, or a folder on its way is a link)");
    return std::nullopt;
  }
  budget -= std::min<uint64_t>(budget, r.bytes.size());
  return std::move(r.bytes);
}

json parse_document(const std::string& bytes) {
  if (!core::json_depth_ok(bytes)) return json(json::value_t::discarded);
  try {
    return json::parse(bytes, nullptr, false);
  } catch (const std::exception&) {
    return json(json::value_t::discarded);
  }
}

// A private folder holding copies of what was read, the only files the validator opens; removed after.
class Mirror {
 public:
  Mirror() {
    std::string t = (fs::temp_directory_path() / "cp-host-views-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::system_error(errno, std::generic_category(), "make " + t);
    dir_ = fs::absolute(t);  // TMPDIR may be relative; the validator's names are mapped back from this
  }
  ~Mirror() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  void put(const std::string& rel, const std::string& bytes) const {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write a copy to validate: " + p.string());
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

// How the validator names a file it was given (contract/validation.cpp: relative to the working folder
// when below it, else as given), so its diagnostics can be mapped back to the root's paths.
std::string validator_name(const fs::path& p) {
  fs::path cwd = fs::current_path();
  fs::path rel = p.lexically_normal().lexically_relative(cwd);
  if (!rel.empty() && rel.native().rfind("..", 0) != 0) return rel.string();
  return p.string();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size())
    s.replace(at, from.size(), to);
}

// `cp-host validate` over the copies of `rels`: each path's diagnostics, as `validate --format json` gives
// them, named by their path under the root (the copy's folder never shows).
std::map<std::string, json> validate_copies(const Mirror& m, const std::vector<std::string>& rels,
                                            const plugin::Registry* registry) {
  contract::ValidateOptions o;
  o.root = m.dir();
  for (const auto& r : rels) o.paths.push_back(m.dir() / r);
  o.check_plugins = registry != nullptr;
  o.registry = registry;
  o.jobs = 2;
  std::map<std::string, std::string> by_name;
  for (const auto& r : rels) by_name[validator_name(m.dir() / r)] = r;
  const std::string abs_prefix = m.dir().string() + "/", rel_prefix = validator_name(m.dir()) + "/";
  auto clean = [&](std::string s) {
    replace_all(s, abs_prefix, "");
    replace_all(s, rel_prefix, "");
    return s;
  };
  std::map<std::string, json> out;
  for (const auto& r : rels) out[r] = json::array();
  for (auto& d : contract::validate(o).diagnostics) {
    auto at = by_name.find(d.file);
    if (at == by_name.end()) continue;  // a file only read for references (a contract's invalid pack)
    d.file = at->second;
    d.message = clean(d.message);
    d.expected = clean(d.expected);
    out[at->second].push_back(contract::diagnostic_json(d));
  }
  return out;
}

std::string text_at(const json& doc, const json::json_pointer& ptr) {
  try {
    const json& v = doc.at(ptr);
    return v.is_string() ? v.get<std::string>() : std::string();
  } catch (const std::exception&) {
    return "";
  }
}

json contract_entry(const Found& f, const std::string& bytes, json diagnostics) {
  json e = base_entry(f);
  json doc = parse_document(bytes);
  e["kind"] = doc.is_discarded() ? std::string() : contract::detect_schema(fs::path(f.rel), doc);
  e["task_id"] = text_at(doc, json::json_pointer("/task_id"));
  e["runner"] = text_at(doc, json::json_pointer("/runtime_options/runner"));
  e["pack"] = text_at(doc, json::json_pointer("/runtime_options/pack"));
  e["role"] = text_at(doc, json::json_pointer("/assigned_agent/role"));
  e["state"] = diagnostics.empty() ? "valid" : "invalid";
  e["diagnostics"] = std::move(diagnostics);
  return e;
}

json reference_entry(const Found& f, const std::string& bytes, json diagnostics) {
  json e = base_entry(f);
  json doc = parse_document(bytes);
  e["kind"] = doc.is_discarded() ? std::string() : contract::detect_schema(fs::path(f.rel), doc);
  e["sha256"] = core::sha256_hex(bytes);
  e["state"] = diagnostics.empty() ? "valid" : "invalid";
  e["diagnostics"] = std::move(diagnostics);
  e["content"] = doc.is_discarded() ? json(nullptr) : std::move(doc);
  return e;
}

json tally(const json& entries, json out) {
  long long valid = 0, invalid = 0, errors = 0;
  for (const auto& e : entries) {
    std::string st = e.value("state", "");
    (st == "valid" ? valid : st == "invalid" ? invalid : errors)++;
  }
  out["valid"] = valid;
  out["invalid"] = invalid;
  out["errors"] = errors;
  return out;
}

fs::path canonical_root(const fs::path& root) {
  std::error_code ec;
  fs::path c = fs::canonical(root, ec);
  return ec ? root : c;
}

}  // namespace

void RootDocuments::refresh_references(const fs::path& root, const plugin::Registry* registry,
                                       uint64_t& budget) {
  Scan packs = scan(root, "packs", limits_), policies = scan(root, "policies", limits_),
       prompts = scan(root, "policies", limits_, prompt_name);
  std::string stamp = std::to_string(packs.truncated) + std::to_string(policies.truncated);
  for (const Scan* s : {&packs, &policies, &prompts})
    for (const auto& f : s->files) stamp += "\n" + f.rel + "|" + f.key();
  if (stamp == references_stamp_ && references_.is_object()) return;

  std::map<std::string, std::string> bytes;
  std::map<std::string, json> refused;
  for (const Scan* s : {&packs, &policies})
    for (const auto& f : s->files) {
      json no;
      if (auto b = read_found(root, f, limits_, budget, no))
        bytes[f.rel] = std::move(*b);
      else
        refused[f.rel] = std::move(no);
    }
  for (const auto& f : prompts.files) {
    json no;  // a prompt that cannot be read is left out: the role config then says it is missing
    if (auto b = read_found(root, f, limits_, budget, no)) bytes[f.rel] = std::move(*b);
  }
  std::map<std::string, json> diagnostics;
  if (!bytes.empty()) {
    Mirror m;
    std::vector<std::string> rels;
    for (const auto& [rel, b] : bytes) {
      m.put(rel, b);
      if (json_name(rel)) rels.push_back(rel);
    }
    diagnostics = validate_copies(m, rels, registry);
  }
  auto entries = [&](const Scan& s) {
    json list = json::array();
    for (const auto& f : s.files)
      list.push_back(refused.count(f.rel) ? refused[f.rel]
                                          : reference_entry(f, bytes[f.rel], diagnostics[f.rel]));
    return list;
  };
  references_ = {{"packs", entries(packs)},
                 {"policies", entries(policies)},
                 {"truncated", packs.truncated || policies.truncated}};
  reference_bytes_ = std::move(bytes);
  // A refusal that depends on this request's byte budget is not kept: the next request may read the file.
  bool budget_cut = false;
  for (const auto& [rel, no] : refused) budget_cut |= no["error"].value("code", "") == "over_budget";
  references_stamp_ = budget_cut ? std::string() : std::move(stamp);
}

json RootDocuments::policies(const fs::path& root_in, const plugin::Registry* registry) {
  const fs::path root = canonical_root(root_in);
  std::lock_guard lock(mu_);
  uint64_t budget = limits_.max_read_bytes;
  refresh_references(root, registry, budget);
  json all = json::array();
  for (const char* k : {"policies", "packs"})
    for (const auto& e : references_[k]) all.push_back(e);
  json out{{"policies", references_["policies"]},
           {"packs", references_["packs"]},
           {"count", all.size()},
           {"truncated", references_["truncated"]}};
  return tally(all, std::move(out));
}

json RootDocuments::contracts(const fs::path& root_in, const plugin::Registry* registry) {
  const fs::path root = canonical_root(root_in);
  std::lock_guard lock(mu_);
  uint64_t budget = limits_.max_read_bytes;
  refresh_references(root, registry, budget);
  Scan found = scan(root, "contracts", limits_);

  std::map<std::string, Cached> next;
  std::vector<const Found*> stale;
  for (const auto& f : found.files) {
    std::string key = f.key() + "|" + references_stamp_;
    auto at = contracts_.find(f.rel);
    if (at != contracts_.end() && at->second.key == key)
      next[f.rel] = at->second;
    else
      stale.push_back(&f);
  }
  // Read what changed; validate it in one pass against copies of the packs and policies just listed.
  std::map<std::string, std::string> bytes;
  for (const Found* f : stale) {
    json no;
    if (auto b = read_found(root, *f, limits_, budget, no)) {
      bytes[f->rel] = std::move(*b);
      continue;
    }
    // A refusal that depends on this request's byte budget is not kept: the next request may read it.
    std::string code = no["error"].value("code", "");
    Cached c{code == "over_budget" ? std::string() : f->key() + "|" + references_stamp_, std::move(no)};
    next[f->rel] = std::move(c);
  }
  if (!bytes.empty()) {
    std::map<std::string, json> diagnostics;
    try {
      Mirror m;
      for (const auto& [rel, b] : reference_bytes_) m.put(rel, b);
      std::vector<std::string> rels;
      for (const auto& [rel, b] : bytes) {
        m.put(rel, b);
        rels.push_back(rel);
      }
      diagnostics = validate_copies(m, rels, registry);
    } catch (const std::exception& e) {
      for (const Found* f : stale)
        if (bytes.count(f->rel))
          next[f->rel] = {std::string(),
                          error_entry(*f, "internal", std::string("cannot validate: ") + e.what())};
      bytes.clear();
    }
    for (const Found* f : stale)
      if (bytes.count(f->rel))
        next[f->rel] = {f->key() + "|" + references_stamp_,
                        contract_entry(*f, bytes[f->rel], std::move(diagnostics[f->rel]))};
  }
  contracts_ = std::move(next);

  json list = json::array();
  for (const auto& f : found.files) list.push_back(contracts_[f.rel].entry);
  json out{{"contracts", list}, {"count", list.size()}, {"truncated", found.truncated}};
  return tally(list, std::move(out));
}

}  // namespace cp::serve
