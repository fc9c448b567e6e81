#include "chain/chain_spec.hpp"
#include "core/json_file.hpp"

#include "core/json_depth.hpp"
#include "core/json_locator.hpp"
#include "core/schema_catalog.hpp"
#include "queue/path_locks.hpp"
#include "store/atomic_file.hpp"
#include "store/bundle.hpp"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace cp::chain {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr std::uintmax_t kMaxChainBytes = 16u << 20;  // as for contracts (`cp-host validate`)
// Runs one chain may start in all (task steps + reviewers): each is checked, queued and run; a small
// document naming one contract file 8,000 times would otherwise hold serve for minutes.
constexpr size_t kMaxChainRuns = 256;

// Collects diagnostics about one chain document.
struct SpecDiagnostics {
  const ChainSource& src;
  std::vector<contract::Diagnostic>& out;
  void add(const std::string& pointer, const std::string& rule, const std::string& message,
           const std::string& expected) {
    contract::Diagnostic d;
    d.file = src.display;
    d.pointer = src.pointer_prefix + pointer;
    d.line = src.text.empty() ? 1 : core::line_of_pointer(src.text, pointer);
    d.rule = rule;
    d.message = message;
    d.expected = expected;
    d.schema = "task_chain";
    out.push_back(d);
  }
};

// A contract file named by the chain, resolved against the base folder; empty with the reason when the
// source confines paths and this one leaves the base (or is not a regular file inside it).
fs::path resolve_contract_file(const ChainSource& src, const std::string& rel, std::string& why) {
  fs::path p(rel);
  if (!src.confine_paths) return p.is_absolute() ? p : src.base_dir / p;
  if (p.is_absolute()) {
    why = "an absolute path; name a contract file relative to the project";
    return {};
  }
  for (const auto& part : p)
    if (part == "..") {
      why = "a path with '..'; name a contract file inside the project";
      return {};
    }
  std::error_code ec;
  fs::path base = fs::weakly_canonical(src.base_dir, ec);
  fs::path real = fs::weakly_canonical(base / p, ec);
  auto inside = real.lexically_relative(base);
  if (ec || inside.empty() || *inside.begin() == "..") {
    why = "a path that leads out of the project (through a link)";
    return {};
  }
  return real;
}

// The file's bytes, bounded; nullopt when it cannot be read.
std::optional<std::string> read_bounded(const fs::path& f) {
  std::error_code ec;
  auto size = fs::file_size(f, ec);
  if (ec || size > kMaxChainBytes) return std::nullopt;
  std::ifstream in(f, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A staged contract: where it was copied, and how its diagnostics are named again.
struct Staged {
  fs::path file;
  std::string display;         // the chain (inline) or the contract file it was copied from
  std::string pointer_prefix;  // inline: where the contract sits in the chain document, as reported
  std::string line_prefix;     // the same within `text` (without the source's own prefix)
  std::string text;            // the text diagnostics count lines in (the contract file's, when copied)
};

}  // namespace

const std::vector<std::string>& pm_loop() {
  static const std::vector<std::string> loop{"PM",      "TECH_LEAD", "WORKER", "REVIEWER",
                                             "TESTING", "TECH_LEAD", "PM"};
  return loop;
}

bool closes_pm_loop(const std::vector<std::string>& roles) {
  if (roles.empty() || roles.front() != "PM" || roles.back() != "PM") return false;
  size_t k = 0;
  for (const auto& r : roles)
    if (k < pm_loop().size() && r == pm_loop()[k]) ++k;
  return k == pm_loop().size();
}

namespace {

// The order of the task and review steps: implicit and explicit waits, then cycles, then the overlap
// rule. Fills each step's depends_on/ordered_after and spec.order; diagnostics for what is wrong.
void resolve_order(ChainSpec& spec, SpecDiagnostics& diag) {
  const json& doc = spec.doc;
  auto& steps = spec.steps;
  const size_t n = steps.size();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i) index.emplace(steps[i].id, i);

  // Implicit waits, group by group.
  std::vector<std::vector<std::string>> implicit(n);
  std::vector<std::string> preceding;
  std::set<std::string> groups_seen;
  for (size_t i = 0; i < n;) {
    if (steps[i].kind == "handoff") {
      ++i;
      continue;
    }
    const std::string group = steps[i].parallel_group;
    if (group.empty()) {
      implicit[i] = preceding;
      preceding = {steps[i].id};
      ++i;
      continue;
    }
    if (!groups_seen.insert(group).second)
      diag.add("/steps/" + std::to_string(i) + "/parallel_group", "parallel_group",
               "parallel_group '" + group + "' was used by earlier steps that this one does not follow",
               "the steps of a group one after another in the chain, or another group name");
    std::vector<std::string> members;
    size_t j = i;
    for (; j < n && steps[j].kind != "handoff" && steps[j].parallel_group == group; ++j) {
      implicit[j] = preceding;
      members.push_back(steps[j].id);
    }
    preceding = members;
    i = j;
  }

  // Explicit waits replace the implicit ones.
  bool bad_ids = false;
  for (size_t i = 0; i < n; ++i) {
    Step& st = steps[i];
    if (st.kind == "handoff") continue;
    const json& s = doc["steps"][i];
    if (!s.contains("depends_on")) {
      st.depends_on = implicit[i];
      continue;
    }
    st.depends_explicit = true;
    for (size_t k = 0; k < s["depends_on"].size(); ++k) {
      const std::string dep = s["depends_on"][k];
      const std::string ptr = "/steps/" + std::to_string(i) + "/depends_on/" + std::to_string(k);
      auto it = index.find(dep);
      if (it == index.end()) {
        diag.add(ptr, "xref:step", "depends_on names step '" + dep + "', which the chain does not have",
                 "the step_id of a task or review step of this chain");
        bad_ids = true;
      } else if (it->second == i) {
        diag.add(ptr, "cycle", "step '" + dep + "' depends on itself", "the ids of other steps");
        bad_ids = true;
      } else if (steps[it->second].kind == "handoff") {
        diag.add(ptr, "xref:step",
                 "depends_on names handoff step '" + dep + "'; a handoff only marks the way between steps",
                 "the step_id of a task or review step (the one before the handoff)");
        bad_ids = true;
      } else {
        st.depends_on.push_back(dep);
      }
    }
  }
  if (bad_ids) return;

  // Cycles: a depth-first walk; an edge back into the walk's own path closes one. Only an explicit
  // depends_on can point forward, so the edge that closes a cycle is reported where it is written.
  std::vector<int> mark(n, 0);  // 0 new, 1 on the path, 2 done
  std::vector<size_t> path;
  bool cyclic = false;
  std::function<void(size_t)> visit = [&](size_t u) {
    mark[u] = 1;
    path.push_back(u);
    for (size_t k = 0; k < steps[u].depends_on.size() && !cyclic; ++k) {
      size_t v = index.at(steps[u].depends_on[k]);
      if (mark[v] == 1) {
        // The cycle's edges, from v round to u -> v; reported at the first one a depends_on writes.
        std::vector<size_t> cycle(std::find(path.begin(), path.end(), v), path.end());
        std::string loop;
        for (size_t p : cycle) loop += steps[p].id + " -> ";
        loop += steps[v].id;
        std::string ptr = "/steps/" + std::to_string(u);
        for (size_t c = 0; c < cycle.size(); ++c) {
          size_t from = cycle[c], to = c + 1 < cycle.size() ? cycle[c + 1] : v;
          if (!steps[from].depends_explicit) continue;
          const json& deps = doc["steps"][from]["depends_on"];
          for (size_t e = 0; e < deps.size(); ++e)
            if (deps[e] == steps[to].id)
              ptr = "/steps/" + std::to_string(from) + "/depends_on/" + std::to_string(e);
          break;
        }
        diag.add(ptr, "cycle", "the steps wait for each other in a cycle (" + loop + ")",
                 "depends_on that names only steps which do not, in turn, wait for this one");
        cyclic = true;
      } else if (mark[v] == 0) {
        visit(v);
      }
    }
    path.pop_back();
    mark[u] = 2;
  };
  for (size_t i = 0; i < n && !cyclic; ++i)
    if (steps[i].kind != "handoff" && mark[i] == 0) visit(i);
  if (cyclic) return;

  // A dependency order, file order where free (Kahn's algorithm, smallest index first).
  auto topo = [&] {
    std::vector<size_t> order, waiting(n, 0);
    std::vector<std::vector<size_t>> dependents(n);
    for (size_t i = 0; i < n; ++i)
      for (const auto& d : steps[i].depends_on) {
        ++waiting[i];
        dependents[index.at(d)].push_back(i);
      }
    std::set<size_t> ready;
    for (size_t i = 0; i < n; ++i)
      if (steps[i].kind != "handoff" && waiting[i] == 0) ready.insert(i);
    while (!ready.empty()) {
      size_t u = *ready.begin();
      ready.erase(ready.begin());
      order.push_back(u);
      for (size_t v : dependents[u])
        if (--waiting[v] == 0) ready.insert(v);
    }
    return order;
  };
  std::vector<size_t> order = topo();

  // Steps that could run at once but lock overlapping paths: the later in that order waits for the
  // earlier, so a task step's change is on the chain branch before the other starts (a path lock alone
  // would only keep them apart, not say which goes first or make the second start from the first's result).
  std::vector<std::vector<bool>> reaches(n, std::vector<bool>(n, false));  // reaches[a][b]: a waits for b
  auto close_over = [&] {
    for (size_t u : order)
      for (const auto& d : steps[u].depends_on) {
        size_t v = index.at(d);
        reaches[u][v] = true;
        for (size_t w = 0; w < n; ++w)
          if (reaches[v][w]) reaches[u][w] = true;
      }
  };
  close_over();
  auto overlap = [&](const Step& a, const Step& b) {
    for (const auto& x : a.lock_paths)
      for (const auto& y : b.lock_paths)
        if (queue::paths_overlap(x, y)) return true;
    return false;
  };
  bool added = false;
  for (size_t oi = 0; oi < order.size(); ++oi)
    for (size_t oj = oi + 1; oj < order.size(); ++oj) {
      size_t a = order[oi], b = order[oj];
      if (reaches[a][b] || reaches[b][a]) continue;
      if (steps[a].kind != "task" && steps[b].kind != "task") continue;
      if (!overlap(steps[a], steps[b])) continue;
      steps[b].depends_on.push_back(steps[a].id);
      steps[b].ordered_after.push_back(steps[a].id);
      reaches[b][a] = true;
      for (size_t w = 0; w < n; ++w)
        if (reaches[a][w]) reaches[b][w] = true;
      for (size_t u = 0; u < n; ++u)
        if (reaches[u][b])
          for (size_t w = 0; w < n; ++w)
            if (reaches[b][w]) reaches[u][w] = true;
      added = true;
    }
  spec.order = added ? topo() : order;
}

}  // namespace

LoadResult load_chain_document(const json& doc, const ChainSource& src, const fs::path& root,
                               const fs::path& plugins_dir, const plugin::Registry* registry) {
  LoadResult out;
  SpecDiagnostics diag{src, out.diagnostics};
  if (!doc.is_object()) {
    diag.add("", "type", "the chain must be a JSON object", "a task chain (schemas/task_chain.schema.json)");
    out.error = "the chain is invalid";
    return out;
  }
  for (const auto& v : core::schema("task_chain").validate(doc))
    diag.add(v.pointer, v.rule, v.message, v.expected);
  if (!out.diagnostics.empty()) {
    out.error = "the chain is invalid";
    return out;
  }

  // Each task step and each reviewer is a run of its own (and a queue item): the schema bounds steps and
  // reviewers apart, this bounds their product, before any contract is read or checked.
  size_t runs = 0;
  for (const auto& s : doc["steps"])
    runs += s.value("kind", "") == "review" ? s.value("reviewers", json::array()).size()
            : s.value("kind", "") == "task" ? 1
                                            : 0;
  if (runs > kMaxChainRuns) {
    diag.add(
        "/steps", "maxRuns",
        "the chain would start " + std::to_string(runs) + " runs (task steps and reviewers); at most " +
            std::to_string(kMaxChainRuns) + " are taken",
        "at most " + std::to_string(kMaxChainRuns) + " task steps and reviewers in all: split the chain");
    out.error = "the chain is invalid";
    return out;
  }

  ChainSpec& spec = out.spec;
  spec.doc = doc;
  spec.chain_id = doc["chain_id"];
  spec.workflow_id = doc.value("workflow_id", "");
  spec.require_pm_loop = doc.value("lifecycle", json::object()).value("require_pm_loop", true);

  // Where contracts are copied: the caller's folder, or a fresh temporary one when an inline contract needs
  // one.
  bool needs_staging = src.stage_all;
  for (const auto& s : doc["steps"]) {
    if (s.contains("contract") && s["contract"].is_object()) needs_staging = true;
    for (const auto& r : s.value("reviewers", json::array()))
      if (r.is_object()) needs_staging = true;
  }
  if (needs_staging) {
    if (!src.staging.empty()) {
      spec.staging = src.staging;
      fs::create_directories(spec.staging);
    } else {
      std::string tmpl = (fs::temp_directory_path() / "cp-chain-XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) {
        out.error = "cannot make a folder for the chain's inline contracts under " +
                    fs::temp_directory_path().string();
        return out;
      }
      spec.staging = tmpl;
    }
  }

  std::vector<Staged> staged;
  std::vector<fs::path> to_check;
  std::vector<std::pair<std::string, size_t>> role_checks;  // pointer of the role, step index
  for (size_t i = 0; i < doc["steps"].size(); ++i) {
    const json& s = doc["steps"][i];
    const std::string ptr = "/steps/" + std::to_string(i);
    Step st;
    st.id = s["step_id"];
    st.kind = s["kind"];
    st.role = s.value("role", "");
    st.parallel_group = s.value("parallel_group", "");
    st.continue_on_fail = s.value("continue_on_fail", false);
    st.exclusive_paths = s.value("exclusive_paths", std::vector<std::string>{});
    for (const auto& prev : spec.steps)
      if (prev.id == st.id)
        diag.add(ptr + "/step_id", "unique", "step_id '" + st.id + "' is used twice", "a unique id");
    bool all_read = true;
    // One contract of the step: `c` is the chain's entry (a path or the contract itself), `p` its pointer,
    // `name` the file it is staged as.
    auto take = [&](const json& c, const std::string& p, const std::string& name) {
      if (c.is_object()) {
        fs::path f = spec.staging / name;
        store::write_json_atomic(f, c);
        staged.push_back({f, src.display, src.pointer_prefix + p, p, src.text});
        st.contracts.push_back(f);
        st.contract_docs.push_back(c);
        to_check.push_back(f);
        return;
      }
      std::string why;
      fs::path file = resolve_contract_file(src, c.get<std::string>(), why);
      if (file.empty()) {
        diag.add(p, "xref:contract", "contract file '" + c.get<std::string>() + "' is refused: " + why,
                 "a task contract path relative to the project, or the contract inline");
        all_read = false;
        return;
      }
      if (!fs::is_regular_file(file)) {
        diag.add(p, "xref:contract", "contract file " + file.string() + " does not exist",
                 "a task contract path, relative to the chain file");
        all_read = false;
        return;
      }
      auto text = read_bounded(file);
      json parsed = text && core::json_depth_ok(*text) ? json::parse(*text, nullptr, false) : json();
      if (!src.stage_all || !parsed.is_object()) {
        // Checked in place: the validator reports what is wrong with the file (not JSON, too large...).
        st.contracts.push_back(file);
        st.contract_docs.push_back(parsed.is_object() ? parsed : json());
        to_check.push_back(file);
        if (src.stage_all) all_read = false;  // a copy is what runs: nothing to copy
        return;
      }
      fs::path f = spec.staging / name;
      store::write_json_atomic(f, parsed);
      staged.push_back({f, file.string(), "", "", *text});
      st.contracts.push_back(f);
      st.contract_docs.push_back(parsed);
      to_check.push_back(f);
    };
    if (st.kind == "task") {
      take(s["contract"], ptr + "/contract", st.id + ".json");
    } else if (st.kind == "review") {
      for (size_t j = 0; j < s["reviewers"].size(); ++j)
        take(s["reviewers"][j], ptr + "/reviewers/" + std::to_string(j),
             st.id + ".r" + std::to_string(j + 1) + ".json");
      st.quorum = s.value("quorum", static_cast<int>(s["reviewers"].size()));
      if (st.quorum > static_cast<int>(s["reviewers"].size()))
        diag.add(ptr + "/quorum", "quorum",
                 "quorum " + std::to_string(st.quorum) + " is more than the " +
                     std::to_string(s["reviewers"].size()) + " reviewers",
                 "at most the number of reviewers");
    } else {
      st.handoff = {{"from_role", s["from_role"]},
                    {"to_role", s["to_role"]},
                    {"summary", s["summary"]},
                    {"risks", s.value("risks", json::array())},
                    {"next_role_context", s.value("next_role_context", "")}};
    }
    if (st.kind != "handoff" && all_read) role_checks.emplace_back(ptr + "/role", i);
    // What the step locks: its contracts' allowed_paths and its exclusive_paths.
    if (st.kind != "handoff") {
      std::set<std::string> locks;
      for (const auto& c : st.contract_docs)
        if (c.is_object()) try {
            for (auto& l : queue::lock_paths_of(c.value("allowed_paths", json::array()))) locks.insert(l);
          } catch (const std::exception&) {
            // The contract's own validation names the entry.
          }
      for (size_t k = 0; k < st.exclusive_paths.size(); ++k) {
        std::string why;
        auto l = queue::normalise_lock_path(st.exclusive_paths[k], &why);
        if (!l)
          diag.add(ptr + "/exclusive_paths/" + std::to_string(k), "path",
                   "'" + st.exclusive_paths[k] + "' names no place inside the repository: " + why,
                   "a path relative to the repository, without '..'");
        else
          locks.insert(*l);
      }
      st.lock_paths.assign(locks.begin(), locks.end());
    }
    spec.steps.push_back(std::move(st));
  }

  // Each contract must be valid on its own, exactly as `cp-host validate` says; a copy's diagnostics name
  // what was copied: the chain (inline, under the contract's pointer) or the contract file.
  if (!to_check.empty()) {
    contract::ValidateOptions vo;
    vo.paths = to_check;
    vo.root = root;
    vo.plugins_dir = plugins_dir;
    vo.registry = registry;
    vo.check_plugins = registry != nullptr;
    vo.forced_schema = "task_contract";
    vo.jobs = 1;
    auto rep = contract::validate(vo);
    for (auto d : rep.diagnostics) {
      std::error_code ec;
      fs::path file = fs::weakly_canonical(fs::absolute(d.file), ec);
      for (const auto& sc : staged)
        if (fs::weakly_canonical(sc.file, ec) == file) {
          d.file = sc.display;
          d.line = sc.text.empty() ? 1 : core::line_of_pointer(sc.text, sc.line_prefix + d.pointer);
          d.pointer = sc.pointer_prefix + d.pointer;
          break;
        }
      out.diagnostics.push_back(d);
    }
  }
  // A step's role is the role its contract assigns: the chain cannot give a contract another role.
  for (const auto& [ptr, i] : role_checks) {
    const Step& st = spec.steps[i];
    const json& role = doc.at(json::json_pointer(ptr));
    for (size_t j = 0; j < st.contract_docs.size(); ++j) {
      const json& c = st.contract_docs[j];
      if (!c.is_object()) continue;
      std::string assigned = c.contains("assigned_agent") && c["assigned_agent"].is_object()
                                 ? c["assigned_agent"].value("role", "")
                                 : "";
      const json& entry = st.kind == "task" ? doc["steps"][i]["contract"] : doc["steps"][i]["reviewers"][j];
      std::string what =
          entry.is_string() ? fs::path(entry.get<std::string>()).filename().string() : "its inline contract";
      if (role.is_string() && role.get<std::string>() != assigned)
        diag.add(ptr, "xref:role",
                 "the step's role is " + role.get<std::string>() + " but " + what + " assigns " +
                     (assigned.empty() ? "no role" : assigned),
                 "the role in the contract's /assigned_agent/role");
    }
  }
  // Handoffs join the roles either side of them.
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    const Step& st = spec.steps[i];
    if (st.kind != "handoff") continue;
    const std::string ptr = "/steps/" + std::to_string(i);
    std::string before, after;
    for (size_t k = i; k-- > 0;)
      if (spec.steps[k].kind != "handoff") {
        before = spec.steps[k].role;
        break;
      }
    for (size_t k = i + 1; k < spec.steps.size(); ++k)
      if (spec.steps[k].kind != "handoff") {
        after = spec.steps[k].role;
        break;
      }
    if (st.handoff["from_role"] != before)
      diag.add(ptr + "/from_role", "handoff",
               "the handoff is from " + st.handoff["from_role"].get<std::string>() +
                   " but the step before it is " + (before.empty() ? "none" : before),
               "the role of the step before the handoff");
    if (st.handoff["to_role"] != after)
      diag.add(ptr + "/to_role", "handoff",
               "the handoff is to " + st.handoff["to_role"].get<std::string>() +
                   " but the step after it is " + (after.empty() ? "none" : after),
               "the role of the step after the handoff");
  }
  if (spec.require_pm_loop) {
    std::vector<std::string> roles;
    for (const auto& st : spec.steps)
      if (st.kind != "handoff") roles.push_back(st.role);
    if (!closes_pm_loop(roles)) {
      std::string seq;
      for (const auto& r : roles) seq += (seq.empty() ? "" : " -> ") + r;
      diag.add("/steps", "lifecycle", "the step roles (" + seq + ") do not close the PM loop",
               "PM -> TECH_LEAD -> WORKER -> REVIEWER -> TESTING -> TECH_LEAD -> PM in order, or set "
               "/lifecycle/require_pm_loop to false");
    }
  }
  // The order last: a duplicate id would make it ambiguous.
  bool duplicate = false;
  for (const auto& d : out.diagnostics) duplicate = duplicate || d.rule == "unique";
  if (!duplicate) resolve_order(spec, diag);
  if (!out.diagnostics.empty()) {
    out.error = "the chain is invalid";
    return out;
  }
  out.ok = true;
  return out;
}

LoadResult load_chain(const fs::path& chain_file, const fs::path& root, const fs::path& plugins_dir,
                      const plugin::Registry* registry) {
  LoadResult out;
  std::error_code size_ec;
  if (auto size = fs::file_size(chain_file, size_ec); !size_ec && size > kMaxChainBytes) {
    out.error = chain_file.string() + " is " + std::to_string(size >> 20) + " MiB; refused unread (limit " +
                std::to_string(kMaxChainBytes >> 20) + " MiB)";
    return out;
  }
  std::ifstream in(chain_file, std::ios::binary);
  if (!in) {
    out.error = "cannot read chain file " + chain_file.string();
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const std::string display = chain_file.string();
  if (!core::json_depth_ok(text)) {
    out.error = display + " nests deeper than " + std::to_string(core::kMaxJsonDepth) +
                " levels of arrays and objects; refused unparsed";
    return out;
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    out.error = display + " is not valid JSON (run `cp-host validate " + display + "` for the position)";
    return out;
  }
  ChainSource src;
  src.display = display;
  src.text = text;
  src.base_dir = chain_file.parent_path();
  return load_chain_document(doc, src, root, plugins_dir, registry);
}

}  // namespace cp::chain
