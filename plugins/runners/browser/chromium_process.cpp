#include "chromium_process.hpp"

#include "url_policy.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>

namespace cp::browser {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

ChromiumProcess::ChromiumProcess(cp::Context ctx, std::vector<std::string> argv, std::vector<std::string> env,
                                 fs::path user_data_dir, std::string stderr_path, uint64_t timeout_ms,
                                 bool shared_profile)
    : ctx_(ctx), user_data_dir_(std::move(user_data_dir)) {
  // A port file left by an earlier browser of this profile would point at nothing, or at someone else.
  std::error_code ignored;
  fs::remove(user_data_dir_ / "DevToolsActivePort", ignored);
  thread_ = std::thread(
      [this, argv = std::move(argv), env = std::move(env), stderr_path, timeout_ms, shared_profile] {
        cp::SpawnOptions opt;
        opt.argv = argv;
        opt.env = env;
        opt.cwd = user_data_dir_.string();
        opt.timeout_ms = timeout_ms;
        opt.stderr_path = stderr_path;
        opt.capture_limit = 16384;
        opt.flags = CP_SPAWN_LOOPBACK_LISTENER | (shared_profile ? CP_SPAWN_SHARED_STATE : 0u);
        opt.keep_running = [this] { return !stop_.load(); };
        try {
          cp::SpawnResult r = ctx_.spawn(opt);
          std::lock_guard lock(mu_);
          result_ = std::move(r);
        } catch (const std::exception& e) {
          std::lock_guard lock(mu_);
          spawn_error_ = e.what();
        }
        exited_ = true;
      });
}

ChromiumProcess::~ChromiumProcess() {
  stop(milliseconds(0));
}

std::string ChromiumProcess::wait_endpoint(milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (exited_)
      throw std::runtime_error("chromium ended before it listened for DevTools (" + describe_exit() + ")");
    std::ifstream in(user_data_dir_ / "DevToolsActivePort");
    std::string port, path;
    if (in && std::getline(in, port) && std::getline(in, path) && !port.empty() &&
        path.rfind("/devtools/", 0) == 0 && port.find_first_not_of("0123456789") == std::string::npos)
      return "ws://127.0.0.1:" + port + path;
    std::this_thread::sleep_for(milliseconds(25));
  }
  throw std::runtime_error("chromium did not listen for DevTools within " + std::to_string(timeout.count()) +
                           " ms");
}

std::string ChromiumProcess::describe_exit() const {
  std::lock_guard lock(mu_);
  if (!spawn_error_.empty()) return "not started: " + spawn_error_;
  if (!exited_) return "running";
  if (!result_.started) return "did not start";
  if (stop_ && result_.cancelled) return "stopped by the run";
  if (result_.timed_out) return "stopped at the run's wall time";
  if (result_.cancelled) return "stopped: the run was cancelled";
  if (result_.term_signal) return "killed by signal " + std::to_string(result_.term_signal);
  return "exit " + std::to_string(result_.exit_code);
}

void ChromiumProcess::stop(milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (!exited_ && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> chromium_argv(const std::string& binary, const fs::path& user_data_dir,
                                       bool headless) {
  std::vector<std::string> a{binary};
  if (headless) a.push_back("--headless");
  for (const char* flag :
       {"--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--disable-default-apps", "--disable-breakpad",
        "--disable-crash-reporter", "--metrics-recording-only", "--password-store=basic",
        "--use-mock-keychain", "--mute-audio", "--hide-scrollbars", "--window-size=1280,800",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
        // Speculative loads and bare preconnects bypass request interception.
        "--disable-features=Prerender2,SpeculationRulesPrefetchFuture,NoStatePrefetch",
        "--dns-prefetch-disable"})
    a.emplace_back(flag);
  a.push_back("--user-data-dir=" + user_data_dir.string());
  a.emplace_back("about:blank");
  return a;
}

std::string discover_endpoint(const std::string& endpoint, milliseconds timeout) {
  auto origin = origin_of(endpoint);
  if (!origin || (origin->scheme != "http" && origin->scheme != "ws"))
    throw std::invalid_argument("attach endpoint " + endpoint +
                                " is not http://host:port or ws://host:port/...");
  if (!is_loopback_host(origin->host))
    throw std::invalid_argument("attach endpoint " + endpoint +
                                " is not on loopback: a run attaches only to a browser on this machine's "
                                "127.0.0.1, [::1] or localhost");
  if (origin->scheme == "ws") return endpoint;
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  asio::io_context io;
  beast::tcp_stream stream(io);
  std::string host = origin->host == "::1" ? "::1" : origin->host;
  try {
    asio::ip::tcp::resolver resolver(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host, std::to_string(origin->port)));
    http::request<http::empty_body> req(http::verb::get, "/json/version", 11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(origin->port));
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    http::read(stream, buf, parser);
    auto doc = nlohmann::json::parse(parser.get().body(), nullptr, false);
    std::string ws = doc.is_object() ? doc.value("webSocketDebuggerUrl", "") : "";
    auto ws_origin = origin_of(ws);
    if (!ws_origin || !is_loopback_host(ws_origin->host))
      throw std::runtime_error("its /json/version names no loopback webSocketDebuggerUrl");
    return ws;
  } catch (const std::exception& e) {
    throw std::runtime_error("no DevTools browser answers at " + endpoint + ": " + e.what());
  }
}

}  // namespace cp::browser
