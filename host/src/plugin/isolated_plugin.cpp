#include "plugin/isolated_plugin.hpp"

#include "core/clock.hpp"
#include "os/confinement.hpp"
#include "plugin/host_services.hpp"

#include "plugin/worker_protocol.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace cp::plugin {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Consecutive worker failures per plugin, shared by every IsolatedPlugin of this process.
struct Breaker {
  struct Entry {
    std::string plugin_id;
    fs::path library;
    int failures = 0;
    int64_t opened_ms = 0;
  };
  std::mutex mu;
  std::map<std::string, Entry> by_key;
};
Breaker& breaker() {
  static Breaker b;
  return b;
}
int failures_of(const std::string& key) {
  std::lock_guard lock(breaker().mu);
  auto it = breaker().by_key.find(key);
  return it == breaker().by_key.end() ? 0 : it->second.failures;
}
void record(const std::string& key, const PluginInfo& info, bool ok) {
  std::lock_guard lock(breaker().mu);
  auto& e = breaker().by_key[key];
  e.plugin_id = info.id;
  e.library = info.library_path;
  e.failures = ok ? 0 : e.failures + 1;
  if (e.failures == IsolatedPlugin::kBreakerThreshold) e.opened_ms = core::now_ms();
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  return "unknown status";
}

}  // namespace

std::vector<OpenCircuit> open_circuits() {
  std::lock_guard lock(breaker().mu);
  std::vector<OpenCircuit> out;
  for (const auto& [key, e] : breaker().by_key)
    if (e.failures >= IsolatedPlugin::kBreakerThreshold)
      out.push_back({e.plugin_id, e.library, e.failures, e.opened_ms});
  return out;
}

fs::path worker_path() {
  if (const char* env = std::getenv("CP_PLUGIN_WORKER"); env && *env) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return self.parent_path() / "cp-plugin-worker";
}

IsolatedPlugin::IsolatedPlugin(PluginInfo info, IsolationLimits limits)
    : info_(std::move(info)), limits_(limits) {}

IsolatedPlugin::~IsolatedPlugin() {
  if (pid_ > 0) {
    wire::write_frame(fd_, {{"op", "destroy"}});
    json ignored;
    wire::read_frame(fd_, ignored, Clock::now() + std::chrono::seconds(2));
    stop(true);
  }
  std::error_code ec;
  if (!log_.empty()) fs::remove(log_, ec);
}

std::string IsolatedPlugin::stderr_tail() const {
  std::ifstream in(log_, std::ios::binary | std::ios::ate);
  if (!in) return "";
  auto size = static_cast<size_t>(in.tellg());
  size_t start = size > 1500 ? size - 1500 : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string s(size - start, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string IsolatedPlugin::stop(bool graceful) {
  if (pid_ <= 0) return "";
  if (fd_ >= 0) ::close(fd_), fd_ = -1;
  int status = 0;
  auto reaped = [&](std::chrono::milliseconds within) {
    auto until = Clock::now() + within;
    while (Clock::now() < until) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  };
  std::string how;
  if (graceful && reaped(std::chrono::milliseconds(500))) {
    how = describe_status(status);
  } else {
    ::kill(-pid_, SIGTERM);
    if (!reaped(std::chrono::seconds(1))) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    how = describe_status(status);
  }
  ::kill(-pid_, SIGKILL);  // anything the plugin forked
  pid_ = -1;
  return how;
}

bool IsolatedPlugin::start(std::string& why) {
  std::string key = info_.library_path.string() + "#" + info_.id;
  int failures = failures_of(key);
  if (failures >= kBreakerThreshold) {
    why = "circuit open: the worker failed " + std::to_string(failures) + " times in a row";
    return false;
  }
  if (failures > 0)  // back off before restarting a worker that just failed
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2000, 100 << (failures - 1))));
  auto t0 = Clock::now();
  fs::path worker = worker_path();
  if (::access(worker.c_str(), X_OK) != 0) {
    why = "plugin worker not found at " + worker.string() + " (set CP_PLUGIN_WORKER)";
    return false;
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  log_ = fs::temp_directory_path() / ("cp-plugin-worker-" + std::to_string(rng()) + ".log");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    why = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::string exe = worker.string(), plugin = info_.library_path.string(), log = log_.string();
  const char* args[] = {exe.c_str(), "--fd", "3", "--plugin", plugin.c_str(), nullptr};
  const std::vector<std::string> env = environment_without_store_secrets();
  std::vector<const char*> envp;
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  [[maybe_unused]] rlimit as{limits_.address_space_mb << 20, limits_.address_space_mb << 20};
  rlimit cpu{limits_.cpu_seconds, limits_.cpu_seconds};
  rlimit files{limits_.open_files, limits_.open_files};
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    why = std::string("fork: ") + std::strerror(errno);
    ::close(sv[0]);
    ::close(sv[1]);
    return false;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // A fresh file, never one found in the shared temporary folder under this name, nor a link there.
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(out, 2) < 0 ||
        ::dup2(sv[1], 3) < 0)
      ::_exit(126);
#if !defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer reserves terabytes of shadow memory up front, so an address-space cap would stop
    // a sanitizer-built worker from starting; those builds rely on ASAN_OPTIONS=hard_rss_limit_mb instead.
    ::setrlimit(RLIMIT_AS, &as);
#endif
    ::setrlimit(RLIMIT_CPU, &cpu);
    ::setrlimit(RLIMIT_NOFILE, &files);
    ::execve(exe.c_str(), const_cast<char* const*>(args), const_cast<char* const*>(envp.data()));
    ::_exit(127);
  }
  ::close(sv[1]);
  fd_ = sv[0];
  pid_ = pid;
  json reply;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  if (!wire::write_frame(fd_, {{"op", "hello"}, {"protocols", {wire::kProtocol}}})) {
    why = "worker did not take the handshake";
  } else if (auto st = wire::read_frame(fd_, reply, deadline);
             st != wire::ReadStatus::ok || reply["op"] != "hello") {
    why = "worker handshake failed: " + std::string(wire::describe(st));
  } else if (reply.contains("error")) {
    why = "worker refused: " + reply["error"].get<std::string>();
  } else if (!wire::write_frame(fd_, {{"op", "create"}, {"id", info_.id}, {"config", info_.config_json}})) {
    why = "worker went away before create";
  } else if (auto st2 = wire::read_frame(fd_, reply, deadline);
             st2 != wire::ReadStatus::ok || reply["op"] != "created") {
    why = "create failed: " + std::string(wire::describe(st2));
  } else if (reply.value("status", -1) != CP_OK) {
    why = "create() of plugin '" + info_.id + "' failed: " + reply.value("error", "");
  }
  if (!why.empty()) {
    std::string how = stop(false);
    why += " (worker " + how + ")";
    std::string tail = stderr_tail();
    if (!tail.empty()) why += "; worker stderr: " + tail;
    record(key, info_, false);
    return false;
  }
  start_time_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  return true;
}

CallOutcome IsolatedPlugin::failure(const std::string& what) {
  std::string how = stop(false);
  std::string tail = stderr_tail();
  record(info_.library_path.string() + "#" + info_.id, info_, false);
  std::string msg = "isolated plugin '" + info_.id + "' " + what + "; worker ended by " + how;
  if (!tail.empty()) msg += "; worker stderr tail: " + tail;
  return {CP_E_FAILED, "", msg};
}

CallOutcome IsolatedPlugin::call(const json& request, CallContext& ctx, std::chrono::milliseconds deadline) {
  if (pid_ <= 0) {
    std::string why;
    if (!start(why)) return {CP_E_FAILED, "", "isolated plugin '" + info_.id + "' could not start: " + why};
  }
  auto until = Clock::now() + deadline;
  if (!wire::write_frame(fd_, request)) return failure("went away before the call");
  while (true) {
    json msg;
    auto st = wire::read_frame(fd_, msg, until);
    if (st == wire::ReadStatus::timeout)
      return failure("did not answer within " + std::to_string(deadline.count()) + " ms");
    if (st == wire::ReadStatus::eof) return failure("crashed during the call");
    if (st != wire::ReadStatus::ok)
      return failure("broke the protocol (" + std::string(wire::describe(st)) + ")");
    std::string op = msg["op"];
    if (op == "event") {
      ctx.emit(msg.value("type", ""), msg.value("payload", "{}"));
    } else if (op == "log") {
      // Plugin log lines are already in the worker's stderr log.
    } else if (op == "result") {
      if (!msg.contains("status") || !msg["status"].is_number_integer())
        return failure("broke the protocol (result without a status)");
      record(info_.library_path.string() + "#" + info_.id, info_, true);
      return {msg["status"].get<int>(), msg.value("output", ""), msg.value("error", "")};
    } else {
      return failure("broke the protocol (unexpected op '" + op + "')");
    }
  }
}

CallOutcome IsolatedPlugin::evaluate(CallContext& ctx, const std::string& input_json,
                                     std::chrono::milliseconds deadline) {
  if (info_.kind != Kind::gate) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a gate"};
  return call({{"op", "evaluate"},
               {"input", input_json},
               {"workspace", ctx.workspace()},
               {"bundle_dir", ctx.bundle_dir()},
               {"run_id", ctx.run_id()},
               {"confinement", ctx.confinement() ? ctx.confinement()->to_wire() : json()}},
              ctx, deadline);
}

CallOutcome IsolatedPlugin::start_run(CallContext& ctx, const std::string& run_json) {
  if (info_.kind != Kind::runner) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a runner"};
  return call({{"op", "start"},
               {"input", run_json},
               {"workspace", ctx.workspace()},
               {"bundle_dir", ctx.bundle_dir()},
               {"state_dir", ctx.state_dir()},
               {"shared_state_dir", ctx.shared_state_dir()},
               {"run_id", ctx.run_id()},
               {"confinement", ctx.confinement() ? ctx.confinement()->to_wire() : json()}},
              ctx, std::chrono::seconds(60));
}

CallOutcome IsolatedPlugin::wait_run(CallContext& ctx, std::chrono::milliseconds timeout) {
  // The worker answers after at most `timeout`; the margin only covers a worker that stopped answering.
  return call({{"op", "wait"}, {"timeout_ms", timeout.count()}}, ctx, timeout + std::chrono::seconds(30));
}

void IsolatedPlugin::cancel_run(CallContext& ctx, bool force) {
  if (pid_ > 0) call({{"op", "cancel"}, {"force", force}}, ctx, std::chrono::seconds(10));
}

CallOutcome IsolatedPlugin::propose_plan(CallContext& ctx, const std::string& input_json,
                                         std::chrono::milliseconds deadline) {
  if (info_.kind != Kind::planner)
    return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a planner"};
  return call({{"op", "propose"}, {"input", input_json}}, ctx, deadline);
}

CallOutcome IsolatedPlugin::probe(CallContext& ctx, std::chrono::milliseconds deadline) {
  if (info_.kind != Kind::probe) return {CP_E_UNSUPPORTED, "", "plugin '" + info_.id + "' is not a probe"};
  return call({{"op", "probe"}}, ctx, deadline);
}

}  // namespace cp::plugin
