// The remote client: with --server URL and a token, the read commands, queue submit|cancel, approve|reject
// and runs follow talk to a real `cp-host serve` on 127.0.0.1 and print what the local files would; a
// viewer's token is refused a write, and the refused write did not happen.
#include "integration/page_server.hpp"
#include "integration/serve_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

using namespace cp::test;
using nlohmann::json;

namespace {

struct RemoteProject : RunProject {
  Ran local(std::vector<std::string> args) const {
    std::vector<std::string> a{"--root", dir.path().string()};
    a.insert(a.end(), args.begin(), args.end());
    return host(a, dir.path());
  }
  Ran remote(uint16_t port, const std::string& token, std::vector<std::string> args) const {
    // From an empty folder elsewhere: nothing local can answer.
    std::vector<std::string> a{CP_HOST_BIN, "--server", "http://127.0.0.1:" + std::to_string(port)};
    a.insert(a.end(), args.begin(), args.end());
    return run_env(a, {"CP_HOST_TOKEN=" + token}, elsewhere.path());
  }
  TempDir elsewhere;
};

json without_bundles(json list) {
  for (auto& r : list["runs"]) r.erase("bundle");  // the local folder, which only a local listing knows
  return list;
}

}  // namespace

TEST(RemoteCli, TheReadCommandsAnswerAsTheLocalFilesDo) {
  RemoteProject p;
  auto done = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(done.ran.exit_code, 0) << done.ran.err;
  json high = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  high["runtime_options"]["pack"] = "high";
  auto waiting = p.run(high);
  ASSERT_EQ(waiting.ran.exit_code, 9) << waiting.ran.err;
  const std::string run_id = done.manifest["run_id"];
  const std::string token = add_token(p, "viewer", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});

  auto same_json = [&](std::vector<std::string> args, bool strip = false) {
    Ran l = p.local(args), r = p.remote(serve.port(), token, args);
    EXPECT_EQ(l.exit_code, 0) << l.err;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json lj = json::parse(l.out, nullptr, false), rj = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(rj.is_discarded()) << r.out;
    EXPECT_EQ(strip ? without_bundles(lj) : lj, rj) << args[0] << " " << args[1];
  };
  same_json({"runs", "list", "--json"}, true);
  same_json({"runs", "list", "--json", "--verdict", "awaiting_approval"}, true);
  same_json({"runs", "show", run_id, "--json"});
  same_json({"queue", "list", "--json"});
  same_json({"approvals", "list", "--json"});
  same_json({"locks", "list", "--json"});
  // The run awaiting approval keeps its worktree: the same listing, but for the age, which ticks.
  auto ages_out = [](json l) {
    for (auto& w : l["worktrees"]) w.erase("age_sec");
    return l;
  };
  json lw = json::parse(p.local({"worktrees", "list", "--json"}).out);
  json rw = json::parse(p.remote(serve.port(), token, {"worktrees", "list", "--json"}).out, nullptr, false);
  ASSERT_EQ(lw["count"], 1) << lw.dump(2);
  EXPECT_EQ(ages_out(lw), ages_out(rw));
  Ran wt = p.remote(serve.port(), token, {"worktrees", "list"});
  EXPECT_NE(wt.out.find("awaiting_approval"), std::string::npos) << wt.out;
  // Events are JSON Lines: the same lines.
  Ran le = p.local({"runs", "events", run_id, "--json"}),
      re = p.remote(serve.port(), token, {"runs", "events", run_id, "--json"});
  EXPECT_EQ(re.exit_code, 0) << re.err;
  std::vector<json> lev, rev;
  std::istringstream ls(le.out), rs(re.out);
  for (std::string l; std::getline(ls, l);) lev.push_back(json::parse(l));
  for (std::string l; std::getline(rs, l);) rev.push_back(json::parse(l));
  EXPECT_EQ(lev, rev);
  EXPECT_GT(rev.size(), 5u);
  // Text too: the same table of runs, the same run view but for where its bundle is.
  EXPECT_EQ(p.remote(serve.port(), token, {"runs", "list"}).out, p.local({"runs", "list"}).out);
  // A run that is not there: 1 both ways; a wrong token: 2 and a hint.
  EXPECT_EQ(p.remote(serve.port(), token, {"runs", "show", "no-such-run"}).exit_code, 1);
  Ran bad = p.remote(serve.port(), "cpt_wrong", {"runs", "list"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("CP_HOST_TOKEN"), std::string::npos) << bad.err;
  // --server on a command that reads local files only is refused, not answered from the wrong place.
  Ran keys = p.remote(serve.port(), token, {"keys", "show"});
  EXPECT_EQ(keys.exit_code, 2);
  EXPECT_NE(keys.err.find("works on the local files only"), std::string::npos) << keys.err;
  // The token on the command line is nearer than the environment's.
  write_file(p.elsewhere / "token", token + "\n");
  ::chmod((p.elsewhere / "token").c_str(), 0600);
  Ran by_file = run_env({CP_HOST_BIN, "--server", "http://127.0.0.1:" + std::to_string(serve.port()),
                         "--token-file", (p.elsewhere / "token").string(), "runs", "list"},
                        {"CP_HOST_TOKEN=cpt_wrong"}, p.elsewhere.path());
  EXPECT_EQ(by_file.exit_code, 0) << by_file.err;
}

TEST(RemoteCli, TheRunViewsAgentsTowerWorkflowsAndIntakesAnswerAsTheLocalFilesDo) {
  RemoteProject p;
  auto done = p.run(p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}));
  ASSERT_EQ(done.ran.exit_code, 0) << done.ran.err;
  const std::string run_id = done.manifest["run_id"];
  const std::string token = add_token(p, "viewer", "viewer");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
  auto both = [&](const std::vector<std::string>& args) {
    Ran l = p.local(args), r = p.remote(serve.port(), token, args);
    EXPECT_EQ(l.exit_code, 0) << l.err;
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::make_pair(l, r);
  };
  // The same JSON document, and the same text, from the files and from the server.
  for (const char* view : {"contract", "reports", "artifacts", "diff"}) {
    auto [lj, rj] = both({"runs", view, run_id, "--json"});
    EXPECT_EQ(json::parse(lj.out, nullptr, false), json::parse(rj.out, nullptr, false)) << view;
    auto [lt, rt] = both({"runs", view, run_id});
    EXPECT_EQ(lt.out, rt.out) << view;
    EXPECT_FALSE(rt.out.empty()) << view;
  }
  auto [lp, rp] = both({"runs", "diff", run_id, "--patch"});
  EXPECT_EQ(lp.out, rp.out);
  EXPECT_NE(rp.out.find("+echo \"Hello, world\""), std::string::npos) << rp.out;
  // verify: a viewer gets the server's check of the bundle as it is; the same answer as the local check.
  auto [lv, rv] = both({"runs", "verify", run_id, "--json"});
  json lvj = json::parse(lv.out), rvj = json::parse(rv.out);
  for (const char* k :
       {"run_id", "ok", "state", "status", "verdict", "events", "last_hash", "key_id", "problems"})
    EXPECT_EQ(lvj[k], rvj[k]) << k;
  EXPECT_EQ(rvj["ok"], true);
  auto [lvt, rvt] = both({"runs", "verify", run_id});
  EXPECT_EQ(lvt.out, rvt.out);
  EXPECT_EQ(p.remote(serve.port(), token, {"runs", "verify", "--all"}).exit_code, 2);
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"agents", "list", "--json"},
                                             {"workflows", "list", "--json"},
                                             {"intake", "list", "--json"},
                                             {"tower", "sessions", "--json"}}) {
    auto [l, r] = both(args);
    EXPECT_EQ(json::parse(l.out, nullptr, false), json::parse(r.out, nullptr, false)) << args[0];
  }
  EXPECT_EQ(both({"agents", "list"}).second.out, both({"agents", "list"}).first.out);
  // The live runs and the tower: what the server keeps has the local document's keys (times differ).
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"agents", "status", "--json"}, {"tower", "overview", "--json"}, {"tower", "alerts", "--json"}}) {
    auto [l, r] = both(args);
    json lj = json::parse(l.out, nullptr, false), rj = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(rj.is_object()) << r.out;
    for (const auto& [k, v] : lj.items())
      EXPECT_TRUE(rj.contains(k)) << args[0] << " " << args[1] << ": " << k;
  }
  Ran overview = p.remote(serve.port(), token, {"tower", "overview"});
  EXPECT_EQ(overview.exit_code, 0) << overview.err;
  EXPECT_NE(overview.out.find("runs        1 total"), std::string::npos) << overview.out;
  // A run or a session that is not there: 1, as locally.
  EXPECT_EQ(p.remote(serve.port(), token, {"runs", "diff", "no-such-run"}).exit_code, 1);
  EXPECT_EQ(p.remote(serve.port(), token, {"intake", "show", "in-nothing"}).exit_code, 1);
  EXPECT_EQ(p.local({"runs", "diff", "no-such-run"}).exit_code, 1);
}

// A server that answers with terminal escape sequences in every text field (a run id, a status, a report
// name, an event type): what the text output shows carries no control character, and nothing crashes on
// answers of the wrong shape.
TEST(RemoteCli, AHostileServersTextNeverReachesTheTerminalRaw) {
  PageServer evil;
  const std::string esc = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r";
  auto page = [](const json& j) { return PageResponse{200, "application/json", j.dump(), {}, false}; };
  evil.route("/api/runs", page({{"runs", json::array({{{"run_id", "r" + esc},
                                                       {"status", "sealed" + esc},
                                                       {"verdict", esc},
                                                       {"runner", esc},
                                                       {"created_at", esc}}})}}));
  evil.route(
      "/api/runs/r1/reports",
      page({{"run_id", "r1"}, {"packs", {{esc, {{"verdict", esc}}}}}, {"reports", 7}, {"skipped", "x"}}));
  evil.route("/api/runs/r1/diff",
             page({{"files", json::array({{{"path", esc}, {"status", esc}, {"added", -3}}})},
                   {"totals", json::array()}}));
  evil.route("/api/runs/r1/contract", page(json::array({esc})));
  evil.route("/api/command-tower/overview", page({{"runs", esc}, {"queue", {{"depth", esc}}}}));
  evil.route("/api/command-tower/alerts", page({{"alerts", json::array({{{"severity", 3}, {"id", esc}}})}}));
  evil.route("/api/agents", page({{"runners", json::array({{{"id", esc}, {"capabilities", esc}}})}}));
  evil.route("/api/intakes", page({{"intakes", json::array({{{"intake_id", esc}, {"request", esc}}})}}));
  evil.route("/api/runs/r1", page({{"manifest", {{"run_id", esc}, {"status", esc}}}, {"verification", esc}}));
  TempDir cwd;
  const std::vector<std::vector<std::string>> commands{
      {"runs", "list"},       {"runs", "reports", "r1"}, {"runs", "diff", "r1"}, {"runs", "contract", "r1"},
      {"tower", "overview"},  {"tower", "alerts"},       {"agents", "list"},     {"intake", "list"},
      {"runs", "show", "r1"}, {"runs", "verify", "r1"}};
  for (const auto& args : commands) {
    std::vector<std::string> a{CP_HOST_BIN, "--server", evil.origin()};
    a.insert(a.end(), args.begin(), args.end());
    Ran r = run_env(a, {"CP_HOST_TOKEN=t"}, cwd.path());
    EXPECT_LT(r.exit_code, 4) << args[0] << " " << args[1] << ": " << r.err;
    for (char c : r.out)
      EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
          << args[0] << " " << args[1] << " wrote control character " << int(c) << " to stdout: " << r.out;
  }
  EXPECT_FALSE(evil.seen().empty());
}

TEST(RemoteCli, WritesGoThroughTheServerWithTheTokensRole) {
  RemoteProject p;
  json high = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  high["runtime_options"]["pack"] = "high";
  auto waiting = p.run(high);
  ASSERT_EQ(waiting.ran.exit_code, 9) << waiting.ran.err;
  const std::string run_id = waiting.manifest["run_id"];
  const std::string viewer = add_token(p, "viewer", "viewer"), op = add_token(p, "op", "operator");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--repo", p.repo.string()});
  write_file(p.elsewhere / "task.json", p.contract({"true"}).dump(2));

  // A viewer may not approve, nor submit: refused, and nothing changed.
  Ran no = p.remote(serve.port(), viewer, {"approve", run_id, "--reason", "looks fine"});
  EXPECT_EQ(no.exit_code, 2) << no.err;
  EXPECT_EQ(json::parse(read_file(waiting.bundle / "manifest.json"))["status"], "awaiting_approval");
  Ran no_submit = p.remote(serve.port(), viewer, {"queue", "submit", "task.json"});
  EXPECT_EQ(no_submit.exit_code, 2) << no_submit.err;
  EXPECT_EQ(json::parse(p.local({"queue", "list", "--json"}).out)["items"].size(), 0u);

  // An operator's submit queues it on the server (its default repository), and cancel ends it.
  // Not before 2099: it stays queued, so the test sees it.
  Ran sub = p.remote(serve.port(), op,
                     {"queue", "submit", "task.json", "--run-after", "2099-01-01T00:00:00Z", "--json"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string item = json::parse(sub.out)["item_id"];
  json items = json::parse(p.local({"queue", "list", "--json"}).out)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["item_id"], item);
  Ran cancel = p.remote(serve.port(), op, {"queue", "cancel", item});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(json::parse(p.local({"queue", "list", "--json"}).out)["items"][0]["state"], "cancelled");
  // An invalid contract is 1, as locally, with the problem's pointer.
  json broken = p.contract({"true"});
  broken["allowed_paths"] = 7;
  write_file(p.elsewhere / "broken.json", broken.dump(2));
  Ran inv = p.remote(serve.port(), op, {"queue", "submit", "broken.json"});
  EXPECT_EQ(inv.exit_code, 1) << inv.err;
  EXPECT_NE(inv.err.find("/allowed_paths"), std::string::npos) << inv.err;

  // The operator approves: the run seals success, and follow ends at once with 0.
  Ran yes = p.remote(serve.port(), op, {"approve", run_id, "--reason", "reviewed", "--json"});
  EXPECT_EQ(yes.exit_code, 0) << yes.err;
  EXPECT_EQ(json::parse(yes.out)["outcome"], "approved") << yes.out;
  json m = json::parse(read_file(waiting.bundle / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "success");
  Ran follow = p.remote(serve.port(), viewer, {"runs", "follow", run_id, "--json", "--interval", "50"});
  EXPECT_EQ(follow.exit_code, 0) << follow.err;
  EXPECT_NE(follow.out.find("RUN_SEALED"), std::string::npos);

  // queue watch follows an item the server runs until it ends, with its run's code; locally the same.
  write_file(p.elsewhere / "fix.json", p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"}).dump(2));
  Ran quick = p.remote(serve.port(), op, {"queue", "submit", "fix.json", "--json"});
  ASSERT_EQ(quick.exit_code, 0) << quick.err;
  const std::string quick_item = json::parse(quick.out)["item_id"];
  Ran watched = p.remote(serve.port(), viewer, {"queue", "watch", quick_item, "--interval", "50"});
  EXPECT_EQ(watched.exit_code, 0) << watched.out << watched.err;
  EXPECT_NE(watched.out.find(quick_item + "  done -> success"), std::string::npos) << watched.out;
  Ran local_watch = p.local({"queue", "watch", quick_item});
  EXPECT_EQ(local_watch.exit_code, 0) << local_watch.err;
  EXPECT_EQ(p.local({"queue", "watch", "q-no-such-item"}).exit_code, 1);
}

// A decision sent to a server from inside a run's process tree is refused before anything is sent: the
// listener saw no request at all.
TEST(RemoteCli, ADecisionFromInsideARunIsRefusedBeforeAnythingIsSent) {
  PageServer listener;
  TempDir cwd;
  for (const char* decision : {"approve", "reject"}) {
    Ran r = run_env({CP_HOST_BIN, "--server", listener.origin(), decision, "some-run", "--reason", "x"},
                    {"CP_HOST_TOKEN=t", "CP_RUN_ID=run-that-asks"}, cwd.path());
    EXPECT_EQ(r.exit_code, 11) << decision << ": " << r.err;
  }
  Ran by_env =
      run_env({CP_HOST_BIN, "approve", "some-run", "--reason", "x"},
              {"CP_HOST_URL=" + listener.origin(), "CP_HOST_TOKEN=t", "CP_RUN_ID=run-that-asks"}, cwd.path());
  EXPECT_EQ(by_env.exit_code, 11) << by_env.err;
  EXPECT_TRUE(listener.seen().empty()) << listener.seen().front();
}
