// Intake sessions against a real `cp-host serve` on 127.0.0.1 with the shipped planners and task packs:
// a PM's request -> the template planner's questions for what is missing -> answers -> a plan whose chain
// validates -> run -> the chain's steps run under serve (the fake codex fixes the greeting, the tool
// runner's test step starts from that fix) -> the chain sealed with its report; the command tower's session
// shows the runs, their metrics and the conversation. A request no pack fits; the llm planner against the
// fake provider (a good plan; a plan that breaks its schema, refused and kept; a refused key and a failing
// provider: a clear error and nothing queued); the CLI twins; answers and runs the session's state refuses.
#include "core/runtime_paths.hpp"
#include "integration/fake_provider.hpp"
#include "integration/serve_fixture.hpp"
#include "store/event_log.hpp"

#include <gtest/gtest.h>

namespace cp::test {
namespace {

const std::string kBug = "The greeting in src/greeting.sh says Helo instead of Hello; please fix the bug.";

struct Intake : ::testing::Test {
  RunProject p;
  std::string op, viewer;
  std::unique_ptr<ServeProcess> serve;

  std::vector<std::string> env() const {
    return {"PATH=" + std::string(CP_SOURCE_DIR) +
                "/tests/fakes:" + (std::getenv("PATH") ? std::getenv("PATH") : ""),
            "FAKE_CODEX_SCENARIO=success", "CP_PLUGIN_WORKER=" + std::string(CP_WORKER_BIN)};
  }
  void start(std::vector<std::string> extra_env = {}) {
    if (op.empty()) op = add_token(p, "pm", "operator");
    if (viewer.empty()) viewer = add_token(p, "watcher", "viewer");
    auto e = env();
    e.insert(e.end(), extra_env.begin(), extra_env.end());
    serve = std::make_unique<ServeProcess>(
        p, std::vector<std::string>{"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()},
        e);
    ASSERT_NE(serve->port(), 0) << serve->output();
  }
  HttpResponse call(const std::string& method, const std::string& target, const json& body = nullptr,
                    const std::string& token = "") {
    return http(serve->port(), method, target, bearer(token.empty() ? op : token),
                body.is_null() ? std::string() : body.dump());
  }
  json ok(const HttpResponse& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  json wait_chain_ended(const std::string& chain_id) {
    json v;
    EXPECT_TRUE(wait_until(
        [&] {
          auto r = call("GET", "/api/chains/" + chain_id, nullptr, viewer);
          v = json::parse(r.body, nullptr, false);
          return r.status == 200 && v.value("status", "") == "sealed";
        },
        std::chrono::seconds(180)))
        << v.dump(2) << serve->output();
    return v;
  }
  size_t queued_count() const {
    return json::parse(host({"--root", p.dir.path().string(), "queue", "list", "--json"}).out)["items"]
        .size();
  }
  Ran cli(std::vector<std::string> args) const {
    std::vector<std::string> a{"--root", p.dir.path().string()};
    a.insert(a.end(), args.begin(), args.end());
    return host(a);
  }
};

TEST_F(Intake, RequestQuestionsAnswersPlanRunAndEveryStepRunsUnderServe) {
  start();
  json s = ok(call("POST", "/api/intake", {{"request", kBug}}), 201);
  const std::string id = s["intake_id"];
  expect_valid("intake_session", s, "the new session");
  EXPECT_EQ(s["state"], "asking");
  EXPECT_EQ(s["task_pack"], "fix-bug");
  ASSERT_EQ(s["questions"].size(), 1u) << s.dump(2);
  const std::string q = s["questions"][0]["id"];
  EXPECT_EQ(s["questions"][0]["field"], "test_command");

  // An answer to no open question is refused with its pointer; nothing changes.
  auto bad = call("POST", "/api/intake/" + id + "/answers", {{"answers", {{"nope", "x"}}}});
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(json::parse(bad.body)["error"]["details"]["pointer"], "/answers/nope");
  // Running before there is a plan is a conflict.
  EXPECT_EQ(call("POST", "/api/intake/" + id + "/run").status, 409);

  json planned = ok(
      call("POST", "/api/intake/" + id + "/answers", {{"answers", {{q, "sh tests/test_greeting.sh"}}}}), 200);
  ASSERT_EQ(planned["state"], "planned") << planned.dump(2);
  ASSERT_TRUE(planned["chain"].is_object());
  EXPECT_EQ(planned["chain"]["steps"].size(), 3u);
  // More answers after the plan: the session is no longer asking.
  EXPECT_EQ(call("POST", "/api/intake/" + id + "/answers", {{"answers", {{q, "x"}}}}).status, 409);
  // A viewer may read but not run.
  EXPECT_EQ(call("POST", "/api/intake/" + id + "/run", nullptr, viewer).status, 403);

  json queued = ok(call("POST", "/api/intake/" + id + "/run"), 202);
  ASSERT_EQ(queued["state"], "queued") << queued.dump(2);
  const std::string chain_id = queued["chain_id"];
  // A second run of the same session queues nothing more.
  EXPECT_EQ(call("POST", "/api/intake/" + id + "/run").status, 409);

  json chain = wait_chain_ended(chain_id);
  EXPECT_EQ(chain["verdict"], "success") << chain.dump(2);
  for (const auto& st : chain["steps"])
    if (st.value("kind", "") == "task") {
      EXPECT_EQ(st["verdict"], "success") << st.dump(2);
    }

  // The chain report is in the chain's bundle, and the fix reached the chain branch, not the checkout.
  fs::path bundle = core::runs_dir(p.dir.path()) / chain_id;
  json report = json::parse(read_file(bundle / "reports/chain_report.json"));
  EXPECT_EQ(report["verdict"], "success") << report.dump(2);
  EXPECT_NE(read_file(p.repo / "src/greeting.sh").find("Helo"), std::string::npos)
      << "the checkout is untouched";
  EXPECT_EQ(sh("git show cp-chain/" + chain_id + ":src/greeting.sh", p.repo).out.find("Helo"),
            std::string::npos);

  // The session: its log verifies, every event fits the schema, and the conversation is in order.
  auto check = store::verify_event_log(core::intake_dir(p.dir.path()) / id / "events.jsonl");
  EXPECT_TRUE(check.ok) << check.reason;
  json shown = ok(call("GET", "/api/intake/" + id, nullptr, viewer), 200);
  std::vector<std::string> kinds;
  for (const auto& line : shown["conversation"]) kinds.push_back(line["kind"]);
  EXPECT_EQ(kinds, (std::vector<std::string>{"request", "questions", "answers", "plan", "run"}));
  EXPECT_EQ(shown["conversation"][0]["who"], "pm");
  EXPECT_EQ(shown["conversation"][2]["answers"][q], "sh tests/test_greeting.sh");

  // The command tower's session: the runs of the chain with their metrics and events.
  json all = ok(call("GET", "/api/command-tower/sessions", nullptr, viewer), 200);
  ASSERT_EQ(all["count"], 1) << all.dump(2);
  EXPECT_EQ(all["sessions"][0]["chain_state"], chain["state"]);
  EXPECT_GE(all["sessions"][0]["runs"].get<int>(), 2);
  EXPECT_GT(all["sessions"][0]["metrics"]["duration_ms"].get<long long>(), 0);
  json one = ok(call("GET", "/api/command-tower/sessions/" + id + "?events=5", nullptr, viewer), 200);
  ASSERT_GE(one["runs"].size(), 2u);
  for (const auto& r : one["runs"]) {
    EXPECT_EQ(r["verdict"], "success") << r.dump(2);
    EXPECT_GE(r["metrics"]["duration_ms"].get<long long>(), 0);
    EXPECT_TRUE(r["metrics"]["gate_failures"].empty());
    EXPECT_LE(r["events"].size(), 5u);
    EXPECT_GT(r["events_total"].get<int>(), 5);
    // The last events, in order: the seal among them (a step whose change the chain carried has its
    // EVIDENCE_PROMOTED after the seal).
    bool sealed = false;
    for (const auto& e : r["events"]) sealed = sealed || e["type"] == "RUN_SEALED";
    EXPECT_TRUE(sealed) << r["events"].dump(2);
  }
  EXPECT_EQ(one["intake"]["conversation"].size(), 5u);
  EXPECT_EQ(call("GET", "/api/command-tower/sessions/intake-none", nullptr, viewer).status, 404);
  EXPECT_EQ(call("GET", "/api/command-tower/sessions/" + id + "?events=x", nullptr, viewer).status, 400);

  // The CLI twins read the same store.
  Ran listed = cli({"intake", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(json::parse(listed.out)["intakes"][0]["intake_id"], id);
  Ran tower = cli({"tower", "sessions", id, "--json"});
  ASSERT_EQ(tower.exit_code, 0) << tower.err;
  EXPECT_EQ(json::parse(tower.out)["runs"].size(), one["runs"].size());
}

TEST_F(Intake, ARequestNoPackFitsIsSaidClearlyAndNothingCanBeQueued) {
  start();
  json s = ok(
      call("POST", "/api/intake", {{"request", "Order a pizza with extra cheese for the team lunch"}}), 201);
  EXPECT_EQ(s["state"], "no_match");
  EXPECT_NE(s["no_match"]["reason"].get<std::string>().find("fits no task pack"), std::string::npos)
      << s.dump(2);
  EXPECT_EQ(call("POST", "/api/intake/" + s["intake_id"].get<std::string>() + "/run").status, 409);
  // Bad input: an empty request, an unknown pack or planner, a repository serve may not run on.
  EXPECT_EQ(call("POST", "/api/intake", {{"request", "  "}}).status, 422);
  EXPECT_EQ(call("POST", "/api/intake", {{"request", kBug}, {"task_pack", "no-such"}}).status, 422);
  auto unk = call("POST", "/api/intake", {{"request", kBug}, {"planner", "no_such_planner"}});
  EXPECT_EQ(unk.status, 422) << unk.body;
  EXPECT_EQ(json::parse(unk.body)["error"]["details"]["pointer"], "/planner");
  EXPECT_EQ(call("POST", "/api/intake", {{"request", kBug}, {"repo", "/"}}).status, 422);
  EXPECT_EQ(call("POST", "/api/intake", {{"request", kBug}, {"extra", 1}}).status, 422);
  EXPECT_EQ(call("POST", "/api/intake", {{"request", kBug}}, viewer).status, 403);
  // Nothing reached the queue.
  json q = json::parse(host({"--root", p.dir.path().string(), "queue", "list", "--json"}).out);
  EXPECT_TRUE(q["items"].empty()) << q.dump(2);
}

TEST_F(Intake, TheCliAsksAnswersAndQueuesWithDistinctExitCodes) {
  Ran made = cli({"intake", "new", kBug, "--repo", p.repo.string(), "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  json s = json::parse(made.out);
  const std::string id = s["intake_id"], q = s["questions"][0]["id"];
  EXPECT_EQ(cli({"intake", "run", id}).exit_code, 4) << "not planned yet";
  EXPECT_EQ(cli({"intake", "answer", id, "no-equals-sign"}).exit_code, 2);
  EXPECT_EQ(cli({"intake", "answer", id, "other=x"}).exit_code, 2);
  EXPECT_EQ(cli({"intake", "answer", "intake-none", q + "=x"}).exit_code, 1);
  Ran ans = cli({"intake", "answer", id, q + "=sh tests/test_greeting.sh"});
  ASSERT_EQ(ans.exit_code, 0) << ans.out << ans.err;
  EXPECT_NE(ans.out.find("planned"), std::string::npos) << ans.out;
  Ran run = cli({"intake", "run", id, "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json queued = json::parse(run.out);
  EXPECT_EQ(queued["state"], "queued");
  json q2 = json::parse(host({"--root", p.dir.path().string(), "queue", "list", "--json"}).out);
  EXPECT_FALSE(q2["items"].empty()) << "the chain's items are in the queue for a serve to run";
  EXPECT_EQ(cli({"intake", "run", id}).exit_code, 4) << "queued already";
  EXPECT_EQ(cli({"intake", "new", "Order a pizza for the team", "--repo", p.repo.string()}).exit_code, 5);
  EXPECT_EQ(cli({"intake", "new", "  ", "--repo", p.repo.string()}).exit_code, 2);
}

// A run that died after the queue took its chain, before the session recorded it (kill -9 between the two):
// the next run finds that chain and records it, and queues nothing more, so no step runs twice.
TEST_F(Intake, ARunThatDiedAfterQueueingFindsItsChainAndQueuesNothingTwice) {
  Ran made = cli({"intake", "new", kBug, "--repo", p.repo.string(), "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.out << made.err;
  json s = json::parse(made.out);
  const std::string id = s["intake_id"], q = s["questions"][0]["id"];
  ASSERT_EQ(cli({"intake", "answer", id, q + "=sh tests/test_greeting.sh"}).exit_code, 0);
  json planned = json::parse(cli({"intake", "show", id, "--json"}).out);
  ASSERT_EQ(planned["state"], "planned") << planned.dump(2);
  // What the dead run had done: its chain queued with the session as origin.
  write_file(p.dir / "planned.chain.json", planned["chain"].dump(2));
  Ran sub = cli({"chain", "submit", (p.dir / "planned.chain.json").string(), "--repo", p.repo.string(),
                 "--origin", "intake:" + id});
  ASSERT_EQ(sub.exit_code, 0) << sub.out << sub.err;
  const std::string first = sub.out.substr(0, sub.out.find('\n'));
  const size_t items = queued_count();

  Ran run = cli({"intake", "run", id, "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  json queued = json::parse(run.out);
  EXPECT_EQ(queued["state"], "queued");
  EXPECT_EQ(queued["chain_id"], first) << "the chain the dead run queued";
  EXPECT_EQ(queued_count(), items) << "nothing queued twice";
  EXPECT_EQ(cli({"intake", "run", id}).exit_code, 4);
}

// The llm planner against the fake OpenAI-compatible provider, configured in policies/plugins.json (serve
// reads it at start, so each provider behaviour gets its own serve).
struct LlmIntake : Intake {
  FakeProvider fake;
  void use_llm(const std::string& model, const std::string& key) {
    json cfg{{"base_url", fake.base_url()},
             {"model", model},
             {"api_key_env", "CP_TEST_PROVIDER_KEY"},
             {"request_timeout_sec", 10}};
    json pol = json::parse(read_file(p.dir / "policies/plugins.json"));
    pol["plugins"]["provider_capability"] = {{"config", cfg}};
    cfg["retries"] = 0;
    pol["plugins"]["llm"] = {{"config", cfg}};
    write_file(p.dir / "policies/plugins.json", pol.dump(2));
    serve.reset();
    start({"CP_TEST_PROVIDER_KEY=" + key});
  }
  json events_of(const std::string& id) const {
    json out = json::array();
    std::istringstream in(read_file(core::intake_dir(p.dir.path()) / id / "events.jsonl"));
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
};

TEST_F(LlmIntake, AGoodPlanIsPlannedAndRuns) {
  use_llm("planner-model", "test-key");
  json s = ok(call("POST", "/api/intake", {{"request", kBug}, {"planner", "llm"}}), 201);
  const std::string id = s["intake_id"];
  ASSERT_EQ(s["state"], "asking") << s.dump(2);
  EXPECT_EQ(s["questions"][0]["field"], "test_command");
  json answers{{s["questions"][0]["id"].get<std::string>(), "sh tests/test_greeting.sh"}};
  json planned = ok(call("POST", "/api/intake/" + id + "/answers", {{"answers", answers}}), 200);
  ASSERT_EQ(planned["state"], "planned") << planned.dump(2);
  EXPECT_EQ(planned["planner"], "llm");
  json queued = ok(call("POST", "/api/intake/" + id + "/run"), 202);
  json chain = wait_chain_ended(queued["chain_id"]);
  EXPECT_EQ(chain["verdict"], "success") << chain.dump(2);
}

// Within the pack the request named, the model words the plan but the person's answers are the person's: a
// faithful rendering is planned; the same rendering with the model's own governance and test command in
// place of what the person answered is refused, kept as evidence, and nothing can be queued.
TEST_F(LlmIntake, APlanOfTheNamedPackKeepsThePersonsAnswersOrIsRefused) {
  auto ask = [&](const std::string& model) {
    use_llm(model, "test-key");
    json s = ok(
        call("POST", "/api/intake", {{"request", kBug}, {"planner", "llm"}, {"task_pack", "fix-bug"}}), 201);
    EXPECT_EQ(s["state"], "asking") << s.dump(2);
    json answers = json::object();
    for (const auto& q : s["questions"])
      answers[q["id"].get<std::string>()] =
          q["field"] == "governance" ? "high" : std::string("sh tests/test_greeting.sh");
    return ok(
        call("POST", "/api/intake/" + s["intake_id"].get<std::string>() + "/answers", {{"answers", answers}}),
        200);
  };
  json faithful = ask("packplan-model");
  ASSERT_EQ(faithful["state"], "planned") << faithful.dump(2);
  EXPECT_EQ(faithful["plan"]["fields"]["governance"], "high");
  for (const auto& st : faithful["chain"]["steps"])
    if (st.contains("contract")) {
      EXPECT_EQ(st["contract"]["runtime_options"]["pack"], "high") << st.dump(2);
    }

  json overruled = ask("overrule-model");
  EXPECT_EQ(overruled["state"], "refused") << overruled.dump(2);
  const std::string why = overruled["error"]["message"];
  EXPECT_NE(why.find("but the person answered"), std::string::npos) << why;
  EXPECT_NE(why.find("field 'test_command'"), std::string::npos) << why;
  json evs = events_of(overruled["intake_id"]);
  ASSERT_EQ(evs.back()["type"], "INTAKE_REFUSED");
  EXPECT_NE(evs.back()["payload"]["raw"].get<std::string>().find("\"low\""), std::string::npos)
      << "the model's plan is kept as evidence";
  EXPECT_EQ(call("POST", "/api/intake/" + overruled["intake_id"].get<std::string>() + "/run").status, 409);
  EXPECT_EQ(queued_count(), 0u);
}

TEST_F(LlmIntake, APlanBreakingTheSchemaIsRefusedKeptAsEvidenceAndNothingQueued) {
  use_llm("badplan-model", "test-key");
  json s = ok(call("POST", "/api/intake", {{"request", "Fix the greeting"}, {"planner", "llm"}}), 201);
  EXPECT_EQ(s["state"], "refused") << s.dump(2);
  EXPECT_NE(s["error"]["message"].get<std::string>().find("plan_bundle.schema.json"), std::string::npos)
      << s.dump(2);
  json evs = events_of(s["intake_id"]);
  ASSERT_EQ(evs.back()["type"], "INTAKE_REFUSED");
  EXPECT_NE(evs.back()["payload"]["raw"].get<std::string>().find("fix the bug"), std::string::npos)
      << "the model's own words are kept";
  EXPECT_FALSE(evs.back()["payload"]["problems"].empty());
  EXPECT_EQ(call("POST", "/api/intake/" + s["intake_id"].get<std::string>() + "/run").status, 409);
  EXPECT_EQ(queued_count(), 0u);
}

TEST_F(LlmIntake, ARefusedKeyOrAFailingProviderIsAClearErrorAndNothingQueued) {
  use_llm("planner-model", "wrong-key");
  json s = ok(call("POST", "/api/intake", {{"request", kBug}, {"planner", "llm"}}), 201);
  EXPECT_EQ(s["state"], "error") << s.dump(2);
  EXPECT_NE(s["error"]["message"].get<std::string>().find("HTTP 401"), std::string::npos) << s.dump(2);
  use_llm("error-model", "test-key");
  json e = ok(call("POST", "/api/intake", {{"request", kBug}, {"planner", "llm"}}), 201);
  EXPECT_EQ(e["state"], "error") << e.dump(2);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("HTTP 500"), std::string::npos) << e.dump(2);
  EXPECT_EQ(call("POST", "/api/intake/" + e["intake_id"].get<std::string>() + "/run").status, 409);
  EXPECT_EQ(queued_count(), 0u);
}

}  // namespace
}  // namespace cp::test
