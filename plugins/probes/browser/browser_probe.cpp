// Probe `chromium` (plugins/probes/browser/): can the browser runner start a browser here? Finds chromium in
// PATH (config `binary`), reads `--version`, then really starts it headless on about:blank with a fresh
// profile in a temporary folder, within `timeout_ms`, and expects the page's DOM on stdout. Every process
// goes through the host's spawn service, so a browser that hangs is killed with its whole process group.
//
// Status: ok | missing (no such program) | error (it did not start, or not in time); the message says
// what failed and how to fix it. The id is `chromium`, not `browser`: plugin ids are unique across kinds
// and `browser` is the runner's.
#include "../../common/program_lookup.hpp"

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

constexpr const char* kConfigSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "binary": {"type": "string", "minLength": 1, "maxLength": 4096,
               "description": "The browser program: a name looked up in PATH, or a path. Default chromium."},
    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 600000,
                   "description": "Bound of each start (--version, then the headless start). Default 20000."},
    "ttl_seconds": {"type": "integer", "minimum": 0, "description": "How long the answer holds. Default 300."}
  }
})";

constexpr const char* kHowToFix =
    "install Debian's chromium package (scripts/bootstrap.sh installs it), or set the chromium probe's "
    "\"binary\" in policies/plugins.json";

// The last non-empty line of a process's stderr, at most 300 characters: what a failure message quotes.
std::string last_line(const std::string& s) {
  size_t end = s.find_last_not_of("\r\n \t");
  if (end == std::string::npos) return "";
  size_t nl = s.find_last_of('\n', end);
  size_t begin = nl == std::string::npos ? 0 : nl + 1;
  std::string l = s.substr(begin, end + 1 - begin);
  return l.size() > 300 ? l.substr(0, 297) + "..." : l;
}

std::string how_it_ended(const cp::SpawnResult& r, int timeout_ms) {
  if (!r.started) return "could not be started";
  if (r.timed_out) return "did not finish within " + std::to_string(timeout_ms) + " ms (killed)";
  if (r.cancelled) return "was cancelled";
  if (r.term_signal) return "was killed by signal " + std::to_string(r.term_signal);
  return "exited with status " + std::to_string(r.exit_code);
}

// A fresh folder for one start's profile and home, removed with everything in it when the probe ends.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string templ = (base / "cp-chromium-probe-XXXXXX").string();
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data())) path_ = buf.data();
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ChromiumProbe : public cp::Probe {
 public:
  ChromiumProbe(cp::Context&, const std::string& config_json) {
    json cfg = json::parse(config_json);
    binary_ = cfg.value("binary", std::string("chromium"));
    timeout_ms_ = cfg.value("timeout_ms", 20000);
    ttl_ = cfg.value("ttl_seconds", 300);
  }

  std::string probe(cp::Context& ctx) override {
    json caps = json::object();
    std::string path = cp::plugins::find_program(binary_);
    if (path.empty())
      return answer("missing", caps,
                    binary_ + " is not " +
                        (binary_.find('/') == std::string::npos ? "in PATH" : "an executable file") +
                        ": the browser runner cannot start a browser; " + kHowToFix);
    caps["chromium"] = path;

    ScratchDir scratch;
    if (scratch.path().empty())
      return answer("error", caps, "cannot create a temporary folder for the headless start");
    // The browser sees a home of its own, so the probe leaves nothing in the user's.
    std::vector<std::string> env{"PATH=" + std::string(std::getenv("PATH") ? std::getenv("PATH") : ""),
                                 "HOME=" + scratch.path(), "XDG_CONFIG_HOME=" + scratch.path() + "/config",
                                 "XDG_CACHE_HOME=" + scratch.path() + "/cache", "LANG=C.UTF-8"};

    cp::SpawnOptions version;
    version.argv = {path, "--version"};
    version.env = env;
    version.timeout_ms = static_cast<uint64_t>(timeout_ms_);
    version.capture_limit = 4096;
    cp::SpawnResult v = ctx.spawn(version);
    std::string version_line = cp::plugins::trimmed_first_line(v.out);
    if (!v.ok() || version_line.empty()) {
      std::string why = v.ok() ? "printed nothing" : how_it_ended(v, timeout_ms_);
      std::string err = last_line(v.err);
      return answer(
          "error", caps,
          "`" + path + " --version` " + why + (err.empty() ? "" : " (" + err + ")") + "; " + kHowToFix);
    }
    caps["version"] = version_line;

    cp::SpawnOptions start;
    start.argv = {path,
                  "--headless",
                  "--no-sandbox",
                  "--disable-gpu",
                  "--disable-dev-shm-usage",
                  "--user-data-dir=" + scratch.path() + "/profile",
                  "--dump-dom",
                  "about:blank"};
    start.env = env;
    start.cwd = scratch.path();
    start.timeout_ms = static_cast<uint64_t>(timeout_ms_);
    start.capture_limit = 64 * 1024;
    auto t0 = std::chrono::steady_clock::now();
    cp::SpawnResult s = ctx.spawn(start);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    caps["headless_start_ms"] = static_cast<int64_t>(ms.count());
    if (!s.ok() || s.out.find("<html") == std::string::npos) {
      std::string why = s.ok() ? "wrote no page (no <html on stdout)" : how_it_ended(s, timeout_ms_);
      std::string err = last_line(s.err);
      return answer(
          "error", caps,
          "headless start of " + path + " on about:blank " + why +
              (err.empty() ? "" : " (last stderr line: " + err + ")") +
              "; check that the program is Chromium and runs here (`" + path +
              " --headless --no-sandbox --dump-dom about:blank`), raise the probe's timeout_ms, or " +
              kHowToFix);
    }
    return answer("ok", caps, "");
  }

 private:
  std::string answer(const char* status, const json& caps, const std::string& message) const {
    json out{{"status", status}, {"capabilities", caps}, {"ttl_seconds", ttl_}};
    if (!message.empty()) out["message"] = message;
    return out.dump();
  }

  std::string binary_;
  int timeout_ms_;
  int ttl_;
};

}  // namespace

CP_PLUGIN("cp-probe-chromium", "0.1.0",
          cp::probe<ChromiumProbe>("chromium", "0.1.0",
                                   "Finds chromium, reads its version and starts it headless on about:blank "
                                   "within a bound: what the browser runner needs",
                                   kConfigSchema, R"(["spawn"])"))
