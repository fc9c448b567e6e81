// `cp-host intake new|answer|show|list|run`: intake sessions from the command line, the twins of the
// API's (intake/intake_service.hpp) — a request, the planner's questions, the answers, the plan, the chain
// queued. And `cp-host intake preview CONTRACT`: what a run of this contract would start from, without
// running it — the advisory execution_plan_report (compiled contract hash, pack, gates, predicted outputs,
// runtime capability summary from the runner's probes) with its role_contract_summary. Fails closed like a
// run would.
#include "cli/commands.hpp"
#include "cli/diagnostic_output.hpp"
#include "cli/json_fields.hpp"
#include "cli/read_views.hpp"
#include "cli/remote_client.hpp"
#include "cli/remote_commands.hpp"
#include "contract/validation.hpp"
#include "control/actor.hpp"
#include "control/intake_preview.hpp"
#include "intake/intake_service.hpp"
#include "plugin/registry.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

namespace cp::cli {

using nlohmann::json;

namespace {

// The browser section of a preview: tasks, the URL policy the run gets, profile, budgets.
void print_browser(const json& b) {
  const json& pol = b["policy"];
  std::cout << "browser   " << b["tasks"].size() << " task(s), profile " << b["profile"].value("mode", "")
            << (b["profile"].contains("name") ? " " + b["profile"]["name"].get<std::string>() : std::string())
            << (b.value("headless", true) ? ", headless" : ", headed") << "\n";
  for (const auto& t : b["tasks"]) {
    std::cout << "  task    " << t["id"].get<std::string>() << "  "
              << (t["url"].is_string() ? t["url"].get<std::string>() : std::string("(no url)")) << "  "
              << t["steps"].get<size_t>() << " step(s)";
    if (t["template"].is_string()) std::cout << "  template " << t["template"].get<std::string>();
    std::cout << "\n";
  }
  std::cout << "  origins " << pol["allowed_origins"].dump() << " (" << pol["source"].get<std::string>()
            << "; network " << pol["network"].get<std::string>() << ")\n";
  if (!pol["allowed_url_patterns"].empty())
    std::cout << "  urls    " << pol["allowed_url_patterns"].dump() << "\n";
  if (pol.contains("dropped_without_network"))
    std::cout << "  dropped " << pol["dropped_without_network"].dump()
              << " (not loopback, the run has no network)\n";
  std::cout << "  downloads " << b["downloads"].get<std::string>() << ", file URLs "
            << b["file_urls"].get<std::string>() << "\n"
            << "  budgets " << b["budgets"].dump() << "\n";
}

// Exit codes of the session commands (docs/cli.md).
constexpr int kNoPlan =
    5;  // the planner could not plan: no task pack fits, its output was refused, it failed
constexpr int kConflict = 4;  // the session's state does not allow it

// Printed from the session, local or a server's: every field read through json_fields.hpp (what a planner
// wrote, the request, the answers are text from outside).
void print_session(const json& s) {
  const std::string pack = text_of(s, "task_pack");
  std::cout << "intake    " << text_of(s, "intake_id") << "   state " << text_of(s, "state") << "   planner "
            << text_of(s, "planner") << (pack.empty() ? std::string() : "   pack " + pack) << "\n"
            << "request   " << text_of(s, "request") << "\n";
  for (const auto& line : array_of(s, "conversation"))
    if (text_of(line, "kind") == "answers")
      for (const auto& [k, v] : object_of(line, "answers").items())
        std::cout << "answer    " << terminal_safe(k) << " = "
                  << terminal_safe(v.is_string() ? v.get<std::string>() : v.dump()) << "   ("
                  << text_of(line, "who") << ")\n";
  for (const auto& q : array_of(s, "questions")) {
    std::cout << "question  " << text_of(q, "id") << ": " << text_of(q, "text");
    if (q.is_object() && q.contains("choices")) std::cout << "  " << terminal_safe(q["choices"].dump());
    std::cout << "\n";
  }
  const std::string state = text_of(s, "state");
  if (state == "asking")
    std::cout << "next      cp-host intake answer " << text_of(s, "intake_id") << " ID=ANSWER ...\n";
  const json& chain = object_of(s, "chain");
  if (state == "planned" && !chain.empty()) {
    for (const auto& st : array_of(chain, "steps"))
      std::cout << "step      " << text_of(st, "step_id") << "  " << text_of(st, "kind") << "  "
                << text_of(st, "role") << "\n";
    std::cout << "next      cp-host intake run " << text_of(s, "intake_id") << "\n";
  }
  if (state == "queued") std::cout << "chain     " << text_of(s, "chain_id") << "\n";
  const json& no_match = object_of(s, "no_match");
  if (!no_match.empty()) std::cout << "no match  " << text_of(no_match, "reason") << "\n";
  const json& error = object_of(s, "error");
  if (!error.empty())
    std::cout << "error     " << text_of(error, "code") << ": " << text_of(error, "message") << "\n";
}

int session_exit(const intake::IntakeResult& r, bool as_json) {
  using O = intake::IntakeResult::Outcome;
  if (r.outcome == O::ok) {
    if (as_json)
      std::cout << r.session.dump(2) << "\n";
    else
      print_session(r.session);
    const std::string st = r.session.value("state", "");
    return st == "no_match" || st == "refused" || st == "error" ? kNoPlan : kOk;
  }
  if (!r.diagnostics.empty()) print_diagnostics(r.diagnostics);
  std::cerr << "cp-host intake: " << r.message << (r.pointer.empty() ? "" : " (at " + r.pointer + ")")
            << "\n";
  switch (r.outcome) {
    case O::invalid:
    case O::unavailable:
      return kUsage;
    case O::not_found:
      return kInvalid;
    case O::conflict:
      return kConflict;
    default:
      return kInternal;
  }
}

void add_intake_sessions(CLI::App* intake, Globals& g, Runner& run) {
  struct Opts {
    std::string request, repo = ".", task_pack, planner, id;
    std::vector<std::string> answers;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  // The planner plugins are loaded for the commands that call one; show and list read the store only.
  auto service = [&g](plugin::Registry* reg) { return intake::IntakeService(g.root, g.plugins_dir, reg); };
  auto loaded = [&g](plugin::Registry& reg) { return load_plugins(g, reg); };

  auto* add =
      intake->add_subcommand("new",
                             "Start an intake session: a planner reads REQUEST (a task pack's planner: "
                             "`template`, or `llm`) and asks "
                             "about what is missing, or plans at once. Exit 0 asking or planned, 2 bad "
                             "input, 5 no plan (no task pack "
                             "fits, the planner's output was refused, or it failed: the session says why).");
  add->add_option("request", o->request, "What should be done, in words")->required();
  add->add_option("--repo", o->repo, "The repository the chain will run in (default: .)");
  add->add_option("--pack", o->task_pack, "A task pack under packs/tasks/ (default: the planner chooses)");
  add->add_option("--planner", o->planner, "The planner plugin (default: template)");
  add->add_flag("--json", o->json, "Print the session as JSON");
  add->callback([&run, o, service, loaded] {
    run = [o, service, loaded]() -> int {
      plugin::Registry reg;
      if (!loaded(reg)) return kUsage;
      std::error_code ec;
      auto repo = std::filesystem::weakly_canonical(o->repo, ec);
      if (ec || !std::filesystem::is_directory(repo)) {
        std::cerr << "cp-host intake new: --repo " << o->repo << " is not a folder\n";
        return kUsage;
      }
      return session_exit(
          service(&reg).create({o->request, repo.string(), o->task_pack, o->planner, control::os_user().by}),
          o->json);
    };
  });

  auto* ans = intake->add_subcommand(
      "answer",
      "Answer a session's open questions (ID=TEXT each); the planner then asks more or plans. Exit 0, "
      "1 no such session, 2 bad answer, 4 nothing to answer, 5 no plan.");
  ans->add_option("intake", o->id, "The intake id")->required();
  ans->add_option("answers", o->answers, "QUESTION_ID=ANSWER, one per open question")->required();
  ans->add_flag("--json", o->json, "Print the session as JSON");
  ans->callback([&run, o, service, loaded] {
    run = [o, service, loaded]() -> int {
      json answers = json::object();
      for (const auto& a : o->answers) {
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0) {
          std::cerr << "cp-host intake answer: '" << a << "' is not QUESTION_ID=ANSWER\n";
          return kUsage;
        }
        answers[a.substr(0, eq)] = a.substr(eq + 1);
      }
      plugin::Registry reg;
      if (!loaded(reg)) return kUsage;
      return session_exit(service(&reg).answer(o->id, answers, control::os_user().by), o->json);
    };
  });

  auto* runs = intake->add_subcommand(
      "run",
      "Queue a planned session's chain (a running `cp-host serve` runs it). Exit 0 queued, 1 no such "
      "session, 2 the chain does not validate now, 4 not planned or queued already.");
  runs->add_option("intake", o->id, "The intake id")->required();
  runs->add_flag("--json", o->json, "Print the session as JSON");
  runs->callback([&run, o, service, loaded] {
    run = [o, service, loaded]() -> int {
      plugin::Registry reg;
      if (!loaded(reg)) return kUsage;
      return session_exit(service(&reg).run(o->id, control::os_user().by), o->json);
    };
  });

  auto* show = intake->add_subcommand("show", "A session with its conversation. Exit 0, 1 no such session.");
  show->add_option("intake", o->id, "The intake id")->required();
  show->add_flag("--json", o->json, "Print what GET /api/intake/{id} answers");
  show->callback([&g, &run, o, service] {
    run = [&g, o, service]() -> int {
      if (!g.server.empty())
        return remote_view(g, "/api/intake/" + url_encode(o->id), "intake session " + o->id, o->json,
                           print_session);
      auto s = service(nullptr).show(o->id);
      if (!s) {
        std::cerr << "cp-host intake show: no intake session '" << o->id << "'\n";
        return kInvalid;
      }
      if (o->json)
        std::cout << s->dump(2) << "\n";
      else
        print_session(*s);
      return kOk;
    };
  });

  auto* list = intake->add_subcommand("list", "The intake sessions, newest first.");
  list->add_flag("--json", o->json, "Print what GET /api/intakes answers");
  list->callback([&g, &run, o, service] {
    run = [&g, o, service]() -> int {
      auto print = [](const json& all) {
        for (const auto& s : array_of(all, "intakes"))
          std::cout << text_of(s, "intake_id") << "  " << text_of(s, "state") << "  "
                    << text_of(s, "task_pack", "-") << "  " << text_of(s, "request") << "\n";
        if (array_of(all, "intakes").empty()) std::cout << "no intake sessions\n";
      };
      if (!g.server.empty()) return remote_view(g, "/api/intakes", "the intake sessions", o->json, print);
      json all = service(nullptr).list();
      if (o->json)
        std::cout << all.dump(2) << "\n";
      else
        print(all);
      return kOk;
    };
  });
}

}  // namespace

void add_intake(CLI::App& app, Globals& g, Runner& run) {
  struct Opts {
    std::string contract;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* intake = app.add_subcommand(
      "intake",
      "Turn a request into a planned, queued task chain (new, answer, run, show, list), or look at a "
      "contract before running it (preview)");
  intake->require_subcommand(1);
  add_intake_sessions(intake, g, run);
  auto* preview =
      intake->add_subcommand("preview",
                             "Validate and compile a contract and run its runner's probes, without running "
                             "it. Exit 0 it would run, 1 it "
                             "would be refused before running or is invalid (the reason is printed), 2 the "
                             "contract file cannot be read.");
  preview->add_option("contract", o->contract, "Task contract JSON file")->required();
  preview->add_flag("--json", o->json, "Machine-readable output");
  preview->callback([&g, &run, o] {
    run = [&g, o]() -> int {
      auto r = control::intake_preview(o->contract, g.root, g.plugins_dir);
      if (!r.ok) {
        print_diagnostics(r.diagnostics);
        std::cerr << "cp-host intake preview: " << r.error << "\n";
        return r.diagnostics.empty() ? kUsage : kInvalid;
      }
      const json& out = r.report;
      bool would_run = out["would_run"].get<bool>();
      if (o->json) {
        std::cout << out.dump(2) << "\n";
      } else {
        json gates = json::array();
        for (const auto& gt : out["gates"]) gates.push_back(gt["plugin"]);
        const json& rb = out["role_contract_summary"]["role_binding_summary"];
        std::cout << "task      " << out["task_id"].get<std::string>()
                  << "   (advisory preview: nothing runs)\n"
                  << "runner    " << out["runner"].get<std::string>() << "   pack "
                  << out["pack"]["pack_id"].get<std::string>()
                  << (out["pack"]["requires_approval"].get<bool>() ? " (requires approval)" : "") << "\n"
                  << "roles     owner " << rb["owner"].value("role", "") << ", assigned "
                  << rb["assigned"].value("role", "")
                  << (rb["assigned"].value("runner_allowed", true) ? ""
                                                                   : " (runner not allowed for this role)")
                  << "\n";
        if (rb["assigned"].contains("prompt_ref"))
          std::cout << "prompt    " << rb["assigned"].value("prompt_ref", "") << " (sha256 "
                    << rb["assigned"].value("prompt_sha256", "").substr(0, 12) << ")\n";
        std::cout << "gates     " << gates.dump() << "\n"
                  << "outputs   " << out["predicted_outputs"]["bundle"].size() << " bundle files, then "
                  << out["predicted_outputs"]["terminal_status"].get<std::string>() << "\n"
                  << "contract  sha256 " << out["contract_sha256"].get<std::string>() << "\n";
        if (out.contains("browser")) print_browser(out["browser"]);
        for (const auto& [k, v] : out["runtime_capability_summary"].items())
          std::cout << "capability " << k << ": " << v.dump() << "\n";
        std::cout << (would_run ? "would run\n" : "would be refused: " + out.value("refusal", "") + "\n");
      }
      return would_run ? kOk : kInvalid;
    };
  });
}

}  // namespace cp::cli
