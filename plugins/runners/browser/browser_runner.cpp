// Runner `browser`: drives Debian's chromium over the DevTools protocol to run the contract's
// runtime_options.browser_tasks (schemas/browser_tasks.schema.json). The browser is the run's own process
// (started through the host, so it lives in the run's sandbox, process group and cgroup) unless the
// contract attaches to a loopback DevTools endpoint. Every request its pages make is judged against the
// URL policy inside the browser (CDP Fetch interception); evidence goes to artifacts/browser/<task>/.
#include "../../common/threaded_run.hpp"
#include "browser_session.hpp"
#include "chromium_process.hpp"
#include "effective_policy.hpp"
#include "task_steps.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using namespace cp::browser;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "binary": {"type": "string", "pattern": "^[A-Za-z0-9._/+-]+$", "description": "The chromium program, looked up in PATH without a '/' (default chromium)."},
    "start_timeout_ms": {"type": "integer", "minimum": 1000, "maximum": 300000, "description": "How long chromium may take to listen for DevTools (default 30000)."},
    "default_wall_sec": {"type": "integer", "minimum": 1, "maximum": 86400, "description": "Wall time of a run's tasks when the contract sets no budgets.wall_sec (default 600)."}
  }
})";

// Holds <shared>/<name>.lock with flock while a persistent profile is in use: two live runs never share
// a profile. The kernel drops the lock when the holder dies, so a crashed host leaves no stale lock.
class ProfileLock {
 public:
  ProfileLock(const fs::path& lock_file, std::chrono::seconds wait, const std::atomic<bool>& cancelled) {
    fd_ = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open the profile lock " + lock_file.filename().string());
    auto until = Clock::now() + wait;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (Clock::now() >= until || cancelled)
        throw std::runtime_error(
            "browser profile '" + lock_file.stem().string() + "' is in use by another live run (waited " +
            std::to_string(wait.count()) +
            " s, profile.wait_sec); run again when that run ends, or use another profile name");
      std::this_thread::sleep_for(milliseconds(100));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0 && ::write(fd_, pid.data(), pid.size()) < 0) {
      // The pid is only a hint for people; the flock is the lock.
    }
  }
  ~ProfileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

class BrowserRun : public cp::plugins::ThreadedRun {
 public:
  BrowserRun(cp::Context ctx, json run, const json& config)
      : ctx_(ctx), run_(std::move(run)), config_(config) {
    launch();
  }
  ~BrowserRun() override { stop_and_join(); }

 private:
  json result(const std::string& status, const std::string& reason) {
    json browser{{"mode", mode_}, {"tasks", tasks_}};
    if (session_) browser["counts"] = session_->summary();
    if (!allowed_.is_null()) browser["allowed_origins"] = allowed_;
    return {{"status", status},
            {"reason", reason},
            {"commands", json::array()},
            {"browser", browser},
            {"usage", {{"turns", tasks_.size()}}}};
  }

  void execute() override {
    try {
      finish(run_tasks());
    } catch (const PolicyRefusal& e) {
      finish(result("denied", std::string("browser policy: ") + e.what() + " (at " + e.pointer + ")"));
    } catch (const std::exception& e) {
      finish(result("error", blame_browser(std::string("browser runner: ") + e.what())));
    }
    shutdown();
  }

  // When chromium died, that is the reason to give, whatever step noticed it first. Its end reaches us
  // through the closed socket first and the host's reaping a moment later.
  std::string blame_browser(const std::string& what) {
    if (!chromium_ || cancelled_) return what;
    if (!session_ || !session_->connected())
      for (int i = 0; i < 300 && !chromium_->exited(); ++i) std::this_thread::sleep_for(milliseconds(50));
    if (!chromium_->exited()) return what;
    return "chromium ended during the run (" + chromium_->describe_exit() + "): " + what;
  }

  json run_tasks() {
    const json& contract = run_["contract"];
    const json rt = contract.value("runtime_options", json::object());
    if (!rt.contains("browser_tasks") || !rt["browser_tasks"].is_object())
      return result("error", "the contract has no runtime_options.browser_tasks for the browser runner");
    const json& bt = rt["browser_tasks"];
    bool network = contract.value("tool_permissions", json::object()).value("network", "deny") == "allow";
    json op = run_.value("policies", json::object()).value("browser_policy", json());
    json policy = effective_policy(op, bt, network);
    allowed_ = policy["allowed_origins"];
    UrlPolicy urls(policy);
    Budgets budgets;
    json b = bt.value("budgets", json::object());
    budgets.max_pages = b.value("max_pages", op.is_object() ? op.value("max_pages", 50) : 50);
    budgets.max_requests = b.value("max_requests", op.is_object() ? op.value("max_requests", 5000) : 5000);
    auto wall = std::chrono::seconds(b.value("wall_sec", config_.value("default_wall_sec", 600)));
    auto deadline = Clock::now() + wall;

    json profile = bt.value("profile", json::object());
    mode_ = profile.value("mode", "ephemeral");
    std::string ws_url = start_browser(profile, bt.value("headless", true), wall);
    session_ = std::make_unique<BrowserSession>(ctx_, urls, budgets);
    session_->open(ws_url, mode_ == "attach", milliseconds(10000));

    fs::path root = fs::path(ctx_.bundle_dir()) / "artifacts" / "browser";
    for (const auto& task : bt["tasks"]) {
      if (cancelled_ || ctx_.cancelled())
        return result("cancelled", "cancelled before task " + task.value("id", "?"));
      TaskOutcome t = run_task(*session_, ctx_, task, root / task.value("id", "task"), deadline);
      tasks_.push_back(t.report);
      if (t.status != "completed") {
        if (chromium_ && !cancelled_ && !ctx_.cancelled()) {
          std::string why = blame_browser(t.reason);
          if (why != t.reason) return result("error", why);
        }
        if (cancelled_ || ctx_.cancelled()) return result("cancelled", t.reason);
        return result(t.status, t.reason);
      }
    }
    return result("completed", "all " + std::to_string(tasks_.size()) + " browser task(s) passed");
  }

  // Starts (or finds) the browser; returns its DevTools WebSocket URL.
  std::string start_browser(const json& profile, bool headless, std::chrono::seconds wall) {
    if (mode_ == "attach")
      return discover_endpoint(profile.value("endpoint", "http://127.0.0.1:9341"), milliseconds(5000));
    fs::path state = ctx_.state_dir();
    if (state.empty()) throw std::runtime_error("the host gave this run no state folder (cp-host too old?)");
    fs::path user_data;
    if (mode_ == "persistent") {
      fs::path shared = ctx_.shared_state_dir();
      if (shared.empty()) throw std::runtime_error("the host gave this run no browser-profiles folder");
      std::string name = profile.value("name", "default");
      lock_ = std::make_unique<ProfileLock>(shared / (name + ".lock"),
                                            std::chrono::seconds(profile.value("wait_sec", 30)), cancelled_);
      user_data = shared / name;
    } else {
      user_data = state / "profile";
      ephemeral_dir_ = user_data;
    }
    fs::create_directories(user_data);
    no_preloading(user_data);
    fs::create_directories(state / "home");
    const char* path = std::getenv("PATH");
    std::vector<std::string> env{"PATH=" + std::string(path ? path : "/usr/bin:/bin"),
                                 "HOME=" + (state / "home").string(),
                                 "XDG_CONFIG_HOME=" + (state / "home" / ".config").string(),
                                 "XDG_CACHE_HOME=" + (state / "home" / ".cache").string(), "LANG=C.UTF-8"};
    fs::path logs = fs::path(ctx_.bundle_dir()) / "artifacts" / "browser";
    fs::create_directories(logs);
    // chromium binds a unix socket under $TMPDIR, and the run's own TMPDIR can be longer than a socket
    // path may be (108 bytes). A short link in /tmp to a folder of the run's state keeps it bindable; the
    // sandbox judges the folder the link leads to, which the run may write.
    fs::create_directories(state / "tmp");
    char short_dir[] = "/tmp/cpbXXXXXX";
    if (!::mkdtemp(short_dir)) throw std::runtime_error("cannot make a folder in /tmp for chromium's socket");
    short_tmp_ = short_dir;
    fs::create_symlink(state / "tmp", short_tmp_ / "t");
    std::vector<std::string> argv{"/bin/sh", "-c", "TMPDIR=\"$0\" exec \"$@\"", (short_tmp_ / "t").string()};
    for (auto& a : chromium_argv(config_.value("binary", "chromium"), user_data, headless)) argv.push_back(a);
    chromium_ = std::make_unique<ChromiumProcess>(
        ctx_, argv, env, user_data, (logs / "chromium.stderr.log").string(),
        static_cast<uint64_t>(wall.count()) * 1000 + 30000, mode_ == "persistent");
    return chromium_->wait_endpoint(milliseconds(config_.value("start_timeout_ms", 30000)));
  }

  // Speculation rules and link prediction fetch from the browser process, past request interception:
  // the profile's "preload pages" setting is turned off before chromium reads it.
  static void no_preloading(const fs::path& user_data) {
    fs::path file = user_data / "Default" / "Preferences";
    fs::create_directories(file.parent_path());
    json prefs = json::object();
    std::error_code ec;
    if (fs::is_regular_file(file, ec) && fs::file_size(file, ec) < (8u << 20)) {
      std::ifstream in(file);
      prefs = json::parse(in, nullptr, false);
      if (!prefs.is_object()) prefs = json::object();
    }
    prefs["net"]["network_prediction_options"] = 2;  // never
    std::ofstream(file, std::ios::trunc) << prefs.dump();
  }

  // The browser goes before the run reports done: nothing of it outlives the run.
  void shutdown() {
    if (session_) session_->close(chromium_ != nullptr);
    if (chromium_) chromium_->stop(milliseconds(3000));
    session_.reset();
    chromium_.reset();
    lock_.reset();
    std::error_code ignored;
    if (!ephemeral_dir_.empty()) fs::remove_all(ephemeral_dir_, ignored);
    if (!short_tmp_.empty()) fs::remove_all(short_tmp_, ignored);  // the link and its folder, not its target
  }

  cp::Context ctx_;
  json run_;
  json config_;
  std::string mode_ = "ephemeral";
  json tasks_ = json::array();
  json allowed_;
  fs::path ephemeral_dir_;
  fs::path short_tmp_;
  std::unique_ptr<ProfileLock> lock_;
  std::unique_ptr<ChromiumProcess> chromium_;
  std::unique_ptr<BrowserSession> session_;
};

}  // namespace

CP_PLUGIN(
    "cp-runner-browser", "0.1.0",
    cp::runner<cp::plugins::ConfiguredRunner<BrowserRun>>(
        "browser", "0.1.0",
        "Drives headless chromium over the DevTools protocol through the contract's browser tasks, with the "
        "URL policy enforced inside the browser",
        kConfigSchema, R"(["spawn", "cdp", "probe:chromium", "shared_state:browser-profiles"])"))
