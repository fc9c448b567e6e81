// The browser runner end to end: the cp-host binary, Debian's headless chromium, pages served by real
// loopback servers. Security tests prove the bad thing did not happen: the server a blocked request was
// meant for saw nothing, no download file exists, no chromium process is left.
#include "integration/browser_support.hpp"

#include <chrono>
#include <thread>

using namespace cp::test;
using std::chrono::milliseconds;

namespace {

const char* kPage = R"HTML(<!doctype html><html><head><title>Greeting page</title>
<meta name="description" content="Where greetings live"></head>
<body><main><h1 id="title">Hello, reader</h1><h2>Details</h2>
<p class="item">first</p><p class="item">second</p><a href="/a">a</a><a href="/b">b</a>
<div style="width:400px;height:300px;background:linear-gradient(90deg,#c00,#00c)"></div>
<input id="name"><button id="go" onclick="document.getElementById('out').textContent = 'hi ' + document.getElementById('name').value">go</button>
<p id="out"></p></main></body></html>)HTML";

json task_doc(const std::string& origin, json script, json extra = json::object()) {
  json t{{"id", "home"}, {"url", origin + "/"}, {"script", std::move(script)}};
  for (auto it = extra.begin(); it != extra.end(); ++it) t[it.key()] = it.value();
  return t;
}

json tasks_of(const std::string& origin, json task, json more = json::object()) {
  json bt{{"browser_policy", {{"allowed_origins", json::array({origin})}}},
          {"tasks", json::array({std::move(task)})}};
  for (auto it = more.begin(); it != more.end(); ++it) bt[it.key()] = it.value();
  return bt;
}

std::vector<json> events_of(const RunProject::Result& r, const std::string& type) {
  std::vector<json> out;
  for (const auto& e : r.events())
    if (e["type"] == type) out.push_back(e);
  return out;
}

std::string task_reason(const RunProject::Result& r) {
  return r.read("reports/task_result.json").value("reason", "");
}

}  // namespace

TEST(BrowserRunner, NavigatesExtractsEvaluatesTypesClicksAndTakesARealScreenshot) {
  PageServer site;
  site.route("/", {200, "text/html", kPage, {}, false});
  BrowserProject p({site.port()});
  json script = json::array({
      {{"action", "wait_for"}, {"selector", "#title"}},
      {{"action", "extract"}, {"selector", "#title"}, {"key", "title"}},
      {{"action", "extract"}, {"selector", ".item"}, {"key", "items"}, {"all", true}},
      {{"action", "extract"},
       {"selector", "a"},
       {"key", "href"},
       {"what", "attribute"},
       {"attribute", "href"}},
      {{"action", "evaluate"}, {"expression", "Promise.resolve(6 * 7)"}, {"name", "answer"}},
      {{"action", "type"}, {"selector", "#name"}, {"text", "Ada"}},
      {{"action", "click"}, {"selector", "#go"}},
      {{"action", "assert"}, {"text_contains", "hi Ada"}},
      {{"action", "assert"}, {"title_matches", "^Greeting"}, {"http_status", 200}},
      {{"action", "screenshot"}},
  });
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  ASSERT_EQ(r.manifest.value("verdict", ""), "success") << r.ran.out << r.ran.err << task_reason(r);
  fs::path dir = r.bundle / "artifacts/browser/home";
  json extract = json::parse(read_file(dir / "extract.json"));
  EXPECT_EQ(extract["title"], "Hello, reader");
  EXPECT_EQ(extract["items"], json::array({"first", "second"}));
  EXPECT_EQ(extract["href"], "/a");
  EXPECT_EQ(extract["answer"], 42);
  PngInfo png = read_png(read_file(dir / "screenshot.png"));
  ASSERT_TRUE(png.valid);
  EXPECT_GE(png.width, 400u);
  EXPECT_GE(png.height, 300u);
  EXPECT_GT(png.distinct_pixels, 50u) << "the screenshot is blank";
  EXPECT_NE(read_file(dir / "dom.html").find("hi Ada"), std::string::npos);
  std::string network = read_file(dir / "network.jsonl");
  EXPECT_NE(network.find("\"status\":200"), std::string::npos) << network;
  EXPECT_EQ(events_of(r, "BROWSER_NAVIGATED").size(), 1u);
  EXPECT_EQ(events_of(r, "BROWSER_STEP").size(), 11u);  // the opening navigation and ten steps
  expect_bundle_valid(p, r);
  EXPECT_TRUE(chromium_of_run(r.manifest["run_id"]).empty());
  EXPECT_EQ(p.runs({"verify", r.manifest["run_id"]}).exit_code, 0);
}

TEST(BrowserRunner, AFailingAssertionFailsTheRunNamingTheTaskAndStep) {
  PageServer site;
  site.route("/", {200, "text/html", kPage, {}, false});
  BrowserProject p({site.port()});
  json script = json::array({{{"action", "assert"}, {"name", "has footer"}, {"selector_exists", "footer"}},
                             {{"action", "screenshot"}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_EQ(r.manifest.value("verdict", ""), "failure") << r.ran.out;
  std::string reason = task_reason(r);
  EXPECT_NE(reason.find("task home, step 1 (has footer)"), std::string::npos) << reason;
  EXPECT_NE(reason.find("an element matching footer"), std::string::npos) << reason;
  auto asserts = events_of(r, "BROWSER_ASSERTION");
  ASSERT_EQ(asserts.size(), 1u);
  EXPECT_EQ(asserts[0]["payload"]["passed"], false);
  EXPECT_EQ(asserts[0]["payload"]["seen"], "none");
  // The steps after the failing one did not run.
  EXPECT_FALSE(fs::exists(r.bundle / "artifacts/browser/home/screenshot.png"));
  EXPECT_TRUE(fs::exists(r.bundle / "artifacts/browser/home/dom.html"));
  expect_bundle_valid(p, r);
}

TEST(BrowserRunner, ConsoleErrorsAreCapturedAndFailNoConsoleErrors) {
  PageServer site;
  site.route(
      "/",
      {200, "text/html", "<title>c</title><script>console.error('broken widget', 42)</script>", {}, false});
  BrowserProject p({site.port()});
  json script = json::array({{{"action", "assert"}, {"no_console_errors", true}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_EQ(r.manifest.value("verdict", ""), "failure");
  auto errors = events_of(r, "BROWSER_CONSOLE_ERROR");
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0]["payload"]["text"], "broken widget 42");
  EXPECT_NE(read_file(r.bundle / "artifacts/browser/home/console.jsonl").find("broken widget 42"),
            std::string::npos);
  EXPECT_NE(task_reason(r).find("console error"), std::string::npos) << task_reason(r);
}

TEST(BrowserRunner, ASecondOriginsImageAndScriptAreBlockedAndNeverReachIt) {
  PageServer site, other;
  other.route("/pixel.png", {200, "image/png", "x", {}, false});
  other.route("/tracker.js", {200, "text/javascript", "document.title = 'tracked'", {}, false});
  site.route("/ok.js", {200, "text/javascript", "document.body.dataset.ok = 'yes'", {}, false});
  site.route("/", {200,
                   "text/html",
                   "<title>mixed</title><body><img src='" + other.origin() + "/pixel.png'><script src='" +
                       other.origin() +
                       "/tracker.js'></script><script src='/ok.js'></script>"
                       "<script>fetch('" +
                       other.origin() + "/xhr').catch(() => {})</script></body>",
                   {},
                   false});
  // The kernel would let chromium reach both ports: only the browser's own policy stands in the way.
  BrowserProject p({site.port(), other.port()});
  json script =
      json::array({{{"action", "wait_for"}, {"network_idle", true}},
                   {{"action", "evaluate"}, {"expression", "document.body.dataset.ok"}, {"name", "ok"}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  ASSERT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  EXPECT_TRUE(other.seen().empty()) << "the disallowed origin was reached: " << other.seen().front();
  EXPECT_EQ(json::parse(read_file(r.bundle / "artifacts/browser/home/extract.json"))["ok"], "yes");
  std::set<std::string> blocked;
  for (const auto& e : events_of(r, "BROWSER_REQUEST_BLOCKED"))
    blocked.insert(e["payload"]["url"].get<std::string>());
  EXPECT_TRUE(blocked.count(other.origin() + "/pixel.png"));
  EXPECT_TRUE(blocked.count(other.origin() + "/tracker.js"));
  EXPECT_TRUE(blocked.count(other.origin() + "/xhr"));
  std::string network = read_file(r.bundle / "artifacts/browser/home/network.jsonl");
  EXPECT_NE(network.find("\"blocked\":true"), std::string::npos);
  EXPECT_NE(network.find(site.origin() + "/ok.js"), std::string::npos);
}

TEST(BrowserRunner, ARedirectToADisallowedOriginIsBlocked) {
  PageServer site, other;
  other.route("/landing", {200, "text/html", "<title>elsewhere</title>", {}, false});
  site.route("/", {200, "text/html", "<title>start</title>", {}, false});
  site.route("/go", {302, "text/plain", "", {{"Location", other.origin() + "/landing"}}, false});
  BrowserProject p({site.port(), other.port()});
  json script = json::array({{{"action", "navigate"}, {"url", site.origin() + "/go"}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_NE(r.manifest.value("verdict", ""), "success");
  EXPECT_TRUE(other.seen().empty()) << "the redirect reached " << other.seen().front();
  bool recorded = false;
  for (const auto& e : events_of(r, "BROWSER_REQUEST_BLOCKED"))
    recorded = recorded || e["payload"]["url"] == other.origin() + "/landing";
  EXPECT_TRUE(recorded);
  EXPECT_NE(task_reason(r).find("step 1"), std::string::npos) << task_reason(r);
}

TEST(BrowserRunner, DownloadsAndFileUrlsAreRefused) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>dl</title><a id='d' href='/file.bin'>get</a>", {}, false});
  site.route("/file.bin", {200,
                           "application/octet-stream",
                           std::string(4096, 'x'),
                           {{"Content-Disposition", "attachment; filename=file.bin"}},
                           false});
  BrowserProject p({site.port()});
  cp::test::write_file(p.dir / "secret.txt", "top secret");
  json script = json::array({{{"action", "click"}, {"selector", "#d"}},
                             {{"action", "wait_for"}, {"network_idle", true}},
                             {{"action", "navigate"}, {"url", "file://" + (p.dir / "secret.txt").string()}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_EQ(r.manifest.value("verdict", ""), "denied") << task_reason(r);
  EXPECT_NE(task_reason(r).find("file://"), std::string::npos) << task_reason(r);
  // No downloaded file anywhere in the bundle or the run's state.
  for (const auto& e : fs::recursive_directory_iterator(p.dir.path()))
    EXPECT_NE(e.path().filename(), "file.bin") << e.path();
  std::string dom = read_file(r.bundle / "artifacts/browser/home/dom.html");
  EXPECT_EQ(dom.find("top secret"), std::string::npos);
  bool download_blocked = false, file_blocked = false;
  for (const auto& e : events_of(r, "BROWSER_REQUEST_BLOCKED")) {
    download_blocked = download_blocked || e["payload"]["initiator"] == "download";
    file_blocked = file_blocked || e["payload"]["url"].get<std::string>().rfind("file://", 0) == 0;
  }
  EXPECT_TRUE(download_blocked);
  EXPECT_TRUE(file_blocked);
}

TEST(BrowserRunner, APageThatNeverLoadsTimesOutAndLeavesNoChromium) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>slow</title><img src='/never.png'>", {}, false});
  site.route("/never.png", {200, "image/png", "", {}, true});
  BrowserProject p({site.port()});
  json task{{"id", "home"},
            {"script",
             json::array({{{"action", "navigate"}, {"url", site.origin() + "/"}, {"timeout_ms", 2000}}})}};
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task)));
  EXPECT_EQ(r.manifest.value("verdict", ""), "timeout") << task_reason(r);
  EXPECT_NE(task_reason(r).find("did not finish loading"), std::string::npos) << task_reason(r);
  auto left = chromium_of_run(r.manifest.value("run_id", "?"));
  EXPECT_TRUE(left.empty()) << left.front();
}

TEST(BrowserRunner, ChromiumKilledMidRunIsAnErrorThatSaysSo) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>wait</title>", {}, false});
  BrowserProject p({site.port()});
  json script = json::array({{{"action", "wait_for"}, {"selector", "#never"}, {"timeout_ms", 60000}}});
  json c = p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script)));
  std::vector<std::string> argv = p.run_argv(c);
  argv.insert(argv.end() - 1, "--json");
  Ran ran;
  std::thread runner([&] { ran = cp::test::run(argv, p.dir.path()); });
  // The browser process (the one without --type=) of the run, once the page is up.
  int browser = -1;
  for (int i = 0; i < 1200 && browser < 0; ++i) {
    for_each_live_process([&](const fs::path& proc) {
      std::string cmd = proc_file(proc, "cmdline");
      std::error_code ec;
      std::string exe = fs::read_symlink(proc / "exe", ec).string();  // not a shell on its way to exec
      if (exe.size() >= 9 && exe.compare(exe.size() - 9, 9, "/chromium") == 0 &&
          cmd.find("--type=") == std::string::npos && cmd.find(p.dir.path().string()) != std::string::npos &&
          cmd.find("--remote-debugging-port") != std::string::npos &&
          proc_file(proc, "environ").find("CP_RUN_ID=") != std::string::npos)
        browser = std::stoi(proc.filename().string());
    });
    if (browser < 0) std::this_thread::sleep_for(milliseconds(25));
  }
  if (browser <= 0) {
    runner.join();  // the run ends by itself (its step times out); the thread must not be left joinable
    FAIL() << "the run's browser process was never found: " << ran.out;
  }
  // The page is open and the wait_for step running once the navigation is logged.
  for (int i = 0; i < 1200; ++i) {
    bool navigated = false;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(p.dir / ".runtime-cache/cortexpilot/runs", ec))
      navigated =
          navigated || read_file(e.path() / "events.jsonl").find("BROWSER_NAVIGATED") != std::string::npos;
    if (navigated) break;
    std::this_thread::sleep_for(milliseconds(25));
  }
  std::string killed = proc_file("/proc/" + std::to_string(browser), "cmdline");
  ::kill(browser, SIGKILL);
  runner.join();
  for (auto& ch : killed)
    if (ch == '\0') ch = ' ';
  SCOPED_TRACE("killed " + std::to_string(browser) + ": " + killed.substr(0, 300));
  json out = json::parse(ran.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << ran.out << ran.err;
  json m = out.value("manifest", json::object());
  EXPECT_EQ(m.value("verdict", ""), "error");
  EXPECT_NE(m.value("reason", "").find("chromium ended during the run (killed by signal 9)"),
            std::string::npos)
      << m.value("reason", "");
  EXPECT_TRUE(chromium_of_run(out.value("run_id", "?")).empty());
}

TEST(BrowserRunner, RecoveryAfterAHostKilledMidRunLeavesNoChromiumAndSealsError) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>wait</title>", {}, false});
  BrowserProject p({site.port()});
  json script = json::array({{{"action", "wait_for"}, {"selector", "#never"}, {"timeout_ms", 120000}}});
  pid_t host_pid = p.spawn_run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  // The run's id is its bundle's folder. Its browser is up once the navigation is logged: a chromium
  // process carrying the id before that may be a short-lived one, not yet the browser.
  std::string run_id;
  for (int i = 0; i < 1200; ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(p.runs_dir(), ec))
      if (e.path().filename().string()[0] != '.') run_id = e.path().filename().string();
    if (!run_id.empty() &&
        read_file(p.runs_dir() / run_id / "events.jsonl").find("BROWSER_NAVIGATED") != std::string::npos &&
        !chromium_of_run(run_id).empty())
      break;
    std::this_thread::sleep_for(milliseconds(25));
  }
  ASSERT_FALSE(run_id.empty());
  ASSERT_FALSE(chromium_of_run(run_id).empty()) << "the run's chromium never started";
  std::this_thread::sleep_for(milliseconds(500));
  ::kill(host_pid, SIGKILL);
  int status = 0;
  ::waitpid(host_pid, &status, 0);
  // The browser may or may not have outlived its host (it dies on a write to the host's closed pipes);
  // either way nothing of it may be left once the run is recovered.
  Ran r = p.runs({"recover"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("recovered " + run_id + ": error (host_interrupted)"), std::string::npos) << r.out;
  for (int i = 0; i < 100 && !chromium_of_run(run_id).empty(); ++i)
    std::this_thread::sleep_for(milliseconds(50));
  auto left = chromium_of_run(run_id);
  EXPECT_TRUE(left.empty()) << left.front();
  json m = json::parse(read_file(p.runs_dir() / run_id / "manifest.json"));
  EXPECT_EQ(m["status"], "sealed");
  EXPECT_EQ(m["verdict"], "error");
  EXPECT_EQ(p.runs({"verify", run_id}).exit_code, 0);
}

TEST(BrowserRunner, APortThePackDoesNotListIsUnreachableEvenWhenThePolicyAllowsIt) {
  PageServer site, other;
  other.route("/data", {200, "text/plain", "leak", {}, false});
  site.route("/", {200, "text/html", "<title>k</title>", {}, false});
  // The browser policy allows both origins; the pack lets the run reach only the first port.
  BrowserProject p({site.port()});
  json script = json::array(
      {{{"action", "evaluate"},
        {"name", "fetched"},
        {"expression", "fetch('" + other.origin() + "/data').then(r => r.text()).catch(e => 'refused')"}}});
  json bt = tasks_of(site.origin(), task_doc(site.origin(), script));
  bt["browser_policy"]["allowed_origins"].push_back(other.origin());
  auto r = p.run(p.browser_contract(bt));
  ASSERT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  EXPECT_EQ(json::parse(read_file(r.bundle / "artifacts/browser/home/extract.json"))["fetched"], "refused");
  EXPECT_TRUE(other.seen().empty()) << "the kernel let chromium reach a port the pack does not list";
}

TEST(BrowserRunner, AContractOriginBeyondTheOperatorPolicyOrOffLoopbackIsDenied) {
  BrowserProject p;
  json bt{{"browser_policy", {{"allowed_origins", json::array({"https://example.com"})}}},
          {"tasks", json::array({{{"id", "x"}, {"url", "https://example.com/"}}})}};
  auto r = p.run(p.browser_contract(bt));
  // Refused before anything starts: no bundle, no browser, the place named.
  EXPECT_EQ(r.ran.exit_code, 1) << r.ran.out << r.ran.err;
  EXPECT_NE((r.ran.out + r.ran.err).find("/runtime_options/browser_tasks/browser_policy/allowed_origins/0"),
            std::string::npos)
      << r.ran.out << r.ran.err;
  EXPECT_FALSE(fs::exists(p.runs_dir()));
  for (const auto& c : chromium_of_run("")) EXPECT_EQ(c.find(p.dir.path().string()), std::string::npos) << c;
}

TEST(BrowserRunner, PopupsWebSocketsWorkersAndBeaconsToADisallowedOriginNeverReachIt) {
  PageServer site, other;
  site.route("/", {200,
                   "text/html",
                   "<title>sneaky</title><a id='pop' target='_blank' href='" + other.origin() +
                       "/tab'>tab</a><script>"
                       "window.open('" +
                       other.origin() +
                       "/popup');"
                       "try { new WebSocket('ws://127.0.0.1:" +
                       std::to_string(other.port()) +
                       "/ws'); } catch (e) {}"
                       "navigator.sendBeacon('" +
                       other.origin() +
                       "/beacon', 'x');"
                       "new Worker('/worker.js');"
                       "document.body.insertAdjacentHTML('beforeend', \"<iframe src='" +
                       other.origin() +
                       "/frame'></iframe>"
                       "<link rel=prefetch href='" +
                       other.origin() +
                       "/prefetch'>\");"
                       "</script>",
                   {},
                   false});
  site.route("/worker.js", {200,
                            "text/javascript",
                            "fetch('" + other.origin() + "/from-worker').catch(() => {});" +
                                "try { new WebSocket('ws://127.0.0.1:" + std::to_string(other.port()) +
                                "/worker-ws'); } catch (e) {}; new Worker('/nested.js');",
                            {},
                            false});
  // A worker's own worker fetches its script past every interception: its WebSocket is guarded in its realm.
  site.route("/nested.js", {200,
                            "text/javascript",
                            "try { new WebSocket('ws://127.0.0.1:" + std::to_string(other.port()) +
                                "/nested-ws'); } catch (e) {}",
                            {},
                            false});
  BrowserProject p({site.port(), other.port()});
  json script = json::array(
      {{{"action", "click"}, {"selector", "#pop"}},  // a real click: no popup blocker
       {{"action", "wait_for"}, {"network_idle", true}},
       {{"action", "evaluate"}, {"expression", "new Promise(r => setTimeout(() => r(1), 1500))"}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  auto seen = other.seen();
  EXPECT_TRUE(seen.empty()) << "the disallowed origin was reached: " << seen.front();
  std::set<std::string> ws;
  for (const auto& e : events_of(r, "BROWSER_REQUEST_BLOCKED"))
    if (e["payload"]["resource_type"] == "WebSocket") ws.insert(e["payload"]["url"].get<std::string>());
  const std::string at = "ws://127.0.0.1:" + std::to_string(other.port());
  EXPECT_TRUE(ws.count(at + "/ws"));
  EXPECT_TRUE(ws.count(at + "/worker-ws"));
  EXPECT_TRUE(ws.count(at + "/nested-ws"));
}

TEST(BrowserRunner, PageBriefWritesABriefValidAgainstItsSchema) {
  PageServer site;
  site.route("/", {200, "text/html", kPage, {}, false});
  BrowserProject p({site.port()});
  json task{
      {"id", "brief"}, {"url", site.origin() + "/"}, {"task_template", "page_brief"}, {"focus", "greetings"}};
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task)));
  ASSERT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  json brief = json::parse(read_file(r.bundle / "artifacts/browser/brief/brief.json"));
  expect_valid("page_brief", brief, "brief.json");
  EXPECT_EQ(brief["title"], "Greeting page");
  EXPECT_EQ(brief["description"], "Where greetings live");
  EXPECT_EQ(brief["link_count"], 2);
  EXPECT_EQ(brief["http_status"], 200);
  ASSERT_GE(brief["headings"].size(), 2u);
  EXPECT_EQ(brief["headings"][0], json({{"level", 1}, {"text", "Hello, reader"}}));
  EXPECT_NE(brief["excerpt"].get<std::string>().find("first"), std::string::npos);
  EXPECT_TRUE(read_png(read_file(r.bundle / "artifacts/browser/brief/screenshot.png")).valid);
}

TEST(BrowserRunner, TwoLiveRunsNeverShareAPersistentProfile) {
  PageServer site;
  site.route(
      "/",
      {200, "text/html", "<title>p</title><script>localStorage.setItem('seen', 'yes')</script>", {}, false});
  BrowserProject p({site.port()});
  json profile{{"mode", "persistent"}, {"name", "shared"}, {"wait_sec", 1}};
  json slow = json::array(
      {{{"action", "evaluate"}, {"expression", "new Promise(r => setTimeout(() => r(1), 5000))"}}});
  pid_t first = p.spawn_run(
      p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), slow), {{"profile", profile}})));
  fs::path profiles = p.dir / ".runtime-cache/cortexpilot/browser-profiles";
  // The first run holds the profile once its chromium is up.
  bool up = false;
  for (int i = 0; i < 400 && !up; ++i) {
    for (const auto& e : chromium_of_run(""))
      up = up || e.find(profiles.string() + "/shared") != std::string::npos;
    if (!up) std::this_thread::sleep_for(milliseconds(25));
  }
  ASSERT_TRUE(up) << "the first run's chromium never started on the profile";
  auto second = p.run(p.browser_contract(
      tasks_of(site.origin(), task_doc(site.origin(), json::array()), {{"profile", profile}})));
  EXPECT_EQ(second.manifest.value("verdict", ""), "error");
  EXPECT_NE(second.manifest.value("reason", "")
                .find("browser profile 'shared' is in use by another live run (waited 1 s"),
            std::string::npos)
      << second.manifest.value("reason", "");
  EXPECT_TRUE(chromium_of_run(second.manifest.value("run_id", "?")).empty());
  int status = 0;
  ASSERT_EQ(::waitpid(first, &status, 0), first);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the first run did not succeed";
  // The profile outlives its run, and a later run uses it.
  EXPECT_TRUE(fs::is_directory(profiles / "shared"));
  json check = json::array(
      {{{"action", "evaluate"}, {"expression", "localStorage.getItem('seen')"}, {"name", "seen"}}});
  json t{{"id", "again"}, {"url", site.origin() + "/none"}, {"script", check}};
  auto third = p.run(p.browser_contract(tasks_of(site.origin(), t, {{"profile", profile}})));
  ASSERT_EQ(third.manifest.value("verdict", ""), "success") << task_reason(third);
  EXPECT_EQ(json::parse(read_file(third.bundle / "artifacts/browser/again/extract.json"))["seen"], "yes");
}

TEST(BrowserRunner, AttachModeDrivesABrowserItDidNotStartAndLeavesItRunning) {
  PageServer site, other;
  site.route(
      "/", {200, "text/html", "<title>attached</title><img src='" + other.origin() + "/x.png'>", {}, false});
  BrowserProject p({site.port()});
  // A browser someone started, with DevTools on loopback.
  TempDir profile;
  pid_t browser = -1;
  {
    std::vector<std::string> args{"/usr/bin/chromium",
                                  "--headless",
                                  "--no-sandbox",
                                  "--disable-gpu",
                                  "--disable-dev-shm-usage",
                                  "--remote-debugging-port=0",
                                  "--user-data-dir=" + profile.path().string(),
                                  "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    ASSERT_EQ(posix_spawn(&browser, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  std::string port;
  for (int i = 0; i < 400 && port.empty(); ++i) {
    std::ifstream in(profile / "DevToolsActivePort");
    std::getline(in, port);
    if (port.empty()) std::this_thread::sleep_for(milliseconds(25));
  }
  ASSERT_FALSE(port.empty());
  json attach{{"mode", "attach"}, {"endpoint", "http://127.0.0.1:" + port}};
  json script = json::array({{{"action", "extract"}, {"selector", "title"}, {"key", "title"}}});
  auto r = p.run(
      p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script), {{"profile", attach}})));
  EXPECT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  EXPECT_EQ(json::parse(read_file(r.bundle / "artifacts/browser/home/extract.json"))["title"], "attached");
  EXPECT_TRUE(other.seen().empty()) << "the policy did not hold in an attached browser";
  EXPECT_TRUE(process_alive(browser)) << "the run stopped a browser it did not start";
  ::kill(browser, SIGKILL);
  int status = 0;
  ::waitpid(browser, &status, 0);
  // An attach endpoint off loopback is refused before anything starts.
  json far{{"mode", "attach"}, {"endpoint", "http://192.0.2.1:9341"}};
  auto refused =
      p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script), {{"profile", far}})));
  EXPECT_EQ(refused.ran.exit_code, 1) << refused.ran.out << refused.ran.err;
  EXPECT_NE((refused.ran.out + refused.ran.err).find("/runtime_options/browser_tasks/profile/endpoint"),
            std::string::npos)
      << refused.ran.out << refused.ran.err;
}

TEST(BrowserRunner, AFailingProbeRefusesTheRunBeforeAnyWorktree) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>x</title>", {}, false});
  BrowserProject p({site.port()});
  // Every program of /usr/bin but chromium.
  TempDir bin;
  for (const auto& e : fs::directory_iterator("/usr/bin"))
    if (e.path().filename() != "chromium") fs::create_symlink(e.path(), bin / e.path().filename().string());
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), json::array()))),
                 {"PATH=" + bin.path().string()});
  EXPECT_EQ(r.manifest.value("verdict", ""), "error") << r.ran.out << r.ran.err;
  EXPECT_NE(r.manifest.value("reason", "").find("probe chromium"), std::string::npos)
      << r.manifest.value("reason", "");
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/worktrees" / r.manifest.value("run_id", "?")));
  EXPECT_TRUE(site.seen().empty());
  EXPECT_EQ(r.read("reports/task_result.json").value("status", ""), "error");
}

TEST(BrowserRunner, OnlyChromiumMayWriteTheSharedProfilesNeverTheRunsOwnCommands) {
  PageServer site;
  site.route("/", {200, "text/html", "<title>p</title>", {}, false});
  BrowserProject p({site.port()});
  fs::path profiles = p.dir / ".runtime-cache/cortexpilot/browser-profiles";
  fs::create_directories(profiles / "victim");
  // The run's acceptance test tries to plant a file in another profile.
  p.commit("scripts/plant.sh", "echo x > \"" + (profiles / "victim/PLANTED").string() + "\" || true\n");
  json c = p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), json::array()),
                                       {{"profile", {{"mode", "persistent"}, {"name", "mine"}}}}));
  c["acceptance_tests"] = json::array({{{"name", "plant"}, {"cmd", "sh scripts/plant.sh"}}});
  auto r = p.run(c);
  EXPECT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  EXPECT_FALSE(fs::exists(profiles / "victim/PLANTED")) << "a run's command wrote into a shared profile";
  EXPECT_TRUE(fs::exists(profiles / "mine/Default")) << "chromium could not write its own profile";
}

TEST(BrowserRunner, AStepMayOpenOnlyPagesOfAllowedOriginsNeverADataDocument) {
  PageServer site, other;
  BrowserProject p({site.port(), other.port()});
  std::string evil = "data:text/html,<script>new WebSocket('ws://127.0.0.1:" + std::to_string(other.port()) +
                     "/x')</script>";
  json task{{"id", "d"}, {"script", json::array({{{"action", "navigate"}, {"url", evil}}})}};
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task)));
  EXPECT_EQ(r.manifest.value("verdict", ""), "denied") << task_reason(r);
  // Nor may a task run steps in the browser's blank page before it opened one.
  json blank{{"id", "b"}, {"script", json::array({{{"action", "evaluate"}, {"expression", "1"}}})}};
  auto r2 = p.run(p.browser_contract(tasks_of(site.origin(), blank)));
  EXPECT_EQ(r2.manifest.value("verdict", ""), "denied") << task_reason(r2);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE(other.seen().empty()) << other.seen().front();
}

TEST(BrowserRunner, SpeculationRulesAndPreconnectsNeverReachADisallowedOrigin) {
  PageServer site, other;
  site.route("/",
             {200,
              "text/html",
              "<title>spec</title><link rel=preconnect href='" + other.origin() +
                  "'><script type=speculationrules>{\"prefetch\": [{\"source\": \"list\", \"urls\": [\"" +
                  other.origin() + "/prefetch\"]}], \"prerender\": [{\"source\": \"list\", \"urls\": [\"" +
                  other.origin() + "/prerender\"]}]}</script>",
              {},
              false});
  BrowserProject p({site.port(), other.port()});
  json script = json::array(
      {{{"action", "evaluate"}, {"expression", "new Promise(r => setTimeout(() => r(1), 2000))"}}});
  auto r = p.run(p.browser_contract(tasks_of(site.origin(), task_doc(site.origin(), script))));
  EXPECT_EQ(r.manifest.value("verdict", ""), "success") << task_reason(r);
  EXPECT_TRUE(other.seen().empty()) << "the disallowed origin was reached: " << other.seen().front();
}
