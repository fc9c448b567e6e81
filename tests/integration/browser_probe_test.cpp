// The `chromium` probe (plugins/probes/browser/) through `cp-host probe`: the real browser starts headless,
// and a browser that is absent, fails or hangs is reported as such, with nothing left running.
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A root whose plugins.json configures the probe; TMPDIR is a folder of its own, so leftovers show.
struct ProbeProject {
  cp::test::TempDir dir;
  explicit ProbeProject(const json& config = json::object()) {
    json plugins{{"policy", "plugins"}, {"plugins", {{"chromium", {{"config", config}}}}}};
    cp::test::write_file(dir / "policies/plugins.json", plugins.dump());
    fs::create_directories(dir / "tmp");
  }
  Ran probe(const std::string& path_env) const {
    return cp::test::run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", dir.path().string(), "probe",
                              "chromium", "--json"},
                             {"PATH=" + path_env, "TMPDIR=" + (dir / "tmp").string()});
  }
  size_t scratch_left() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir / "tmp"))
      if (e.path().filename().string().rfind("cp-chromium-probe-", 0) == 0) ++n;
    return n;
  }
};

void write_script(const fs::path& p, const std::string& body) {
  cp::test::write_file(p, "#!/bin/sh\n" + body);
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
}

// True once the process is gone (or a zombie nobody can run again).
bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

bool chromium_installed() {
  return cp::test::sh("command -v chromium >/dev/null").exit_code == 0;
}

}  // namespace

TEST(ChromiumProbe, RealChromiumStartsHeadless) {
  if (!chromium_installed()) GTEST_SKIP() << "chromium is not installed (scripts/bootstrap.sh installs it)";
  ProbeProject p;
  auto r = p.probe(std::getenv("PATH"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out)["chromium"];
  EXPECT_EQ(j["status"], "ok") << j.dump();
  EXPECT_TRUE(fs::path(j["capabilities"]["chromium"].get<std::string>()).is_absolute());
  EXPECT_NE(j["capabilities"]["version"].get<std::string>().find("Chromium"), std::string::npos) << j.dump();
  EXPECT_GT(j["capabilities"]["headless_start_ms"].get<int64_t>(), 0);
  EXPECT_FALSE(j.contains("message"));
  EXPECT_EQ(p.scratch_left(), 0u) << "the probe's temporary profile was not removed";
}

TEST(ChromiumProbe, MissingWhenPathHoldsNoChromium) {
  ProbeProject p;
  cp::test::TempDir bin;
  // Other programs, and chromium under another name: only the name the probe looks for is absent.
  fs::create_symlink("/bin/sh", bin / "sh");
  if (chromium_installed()) fs::create_symlink("/usr/bin/chromium", bin / "chromium-renamed");
  auto r = p.probe(bin.path().string());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out)["chromium"];
  EXPECT_EQ(j["status"], "missing");
  std::string m = j["message"];
  EXPECT_NE(m.find("chromium is not in PATH"), std::string::npos) << m;
  EXPECT_NE(m.find("scripts/bootstrap.sh"), std::string::npos) << m;
}

TEST(ChromiumProbe, ErrorWhenTheBrowserExitsNonZero) {
  ProbeProject p;
  cp::test::TempDir bin;
  write_script(bin / "chromium",
               "case \"$1\" in --version) echo 'Chromium 999.0.0.0 fake'; exit 0;; esac\n"
               "echo 'cannot open display: fake failure' >&2\nexit 1\n");
  auto r = p.probe(bin.path().string());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out)["chromium"];
  EXPECT_EQ(j["status"], "error");
  EXPECT_EQ(j["capabilities"]["version"], "Chromium 999.0.0.0 fake");
  std::string m = j["message"];
  EXPECT_NE(m.find("headless start"), std::string::npos) << m;
  EXPECT_NE(m.find("exited with status 1"), std::string::npos) << m;
  EXPECT_NE(m.find("fake failure"), std::string::npos) << m;
  EXPECT_EQ(p.scratch_left(), 0u);
}

TEST(ChromiumProbe, ErrorWhenVersionFails) {
  ProbeProject p;
  cp::test::TempDir bin;
  write_script(bin / "chromium", "echo 'libfoo.so: cannot open shared object' >&2\nexit 127\n");
  auto r = p.probe(bin.path().string());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out)["chromium"];
  EXPECT_EQ(j["status"], "error");
  std::string m = j["message"];
  EXPECT_NE(m.find("--version` exited with status 127"), std::string::npos) << m;
  EXPECT_NE(m.find("libfoo.so"), std::string::npos) << m;
}

TEST(ChromiumProbe, ErrorWhenTheBrowserHangsAndNothingIsLeftRunning) {
  ProbeProject p(json{{"timeout_ms", 1500}});
  cp::test::TempDir bin;
  fs::path pids = bin / "pids";
  // The fake browser starts a child of its own and waits: both must be gone when the probe returns.
  write_script(bin / "chromium",
               "case \"$1\" in --version) echo 'Chromium 999.0.0.0 fake'; exit 0;; esac\n"
               "/bin/sleep 300 &\necho $! >> '" +
                   pids.string() + "'\necho $$ >> '" + pids.string() + "'\nwait\n");
  auto t0 = std::chrono::steady_clock::now();
  auto r = p.probe(bin.path().string());
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_LT(took, std::chrono::seconds(20));
  json j = json::parse(r.out)["chromium"];
  EXPECT_EQ(j["status"], "error");
  std::string m = j["message"];
  EXPECT_NE(m.find("did not finish within 1500 ms"), std::string::npos) << m;
  EXPECT_GE(j["capabilities"]["headless_start_ms"].get<int64_t>(), 1500);
  std::ifstream in(pids);
  std::vector<pid_t> started;
  for (pid_t pid; in >> pid;) started.push_back(pid);
  ASSERT_EQ(started.size(), 2u) << "the fake browser did not start";
  for (pid_t pid : started) {
    for (int i = 0; i < 50 && !gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(gone(pid)) << "process " << pid << " outlived the probe";
  }
  EXPECT_EQ(p.scratch_left(), 0u);
}
