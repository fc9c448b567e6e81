// `cp-host doctor`: in a fresh project every check passes and the provider probe is skipped without
// contacting anything; in a folder that is no project it fails and says how to fix it. Real binary, real
// sockets (a listener that proves what was, and was not, contacted).
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A TCP listener on 127.0.0.1 that never answers: afterwards it can tell whether anyone connected.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }
  // True when a connection is waiting (the handshake completes in the backlog without accept()).
  bool contacted() const {
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
    int c = ::accept(fd_, nullptr, nullptr);
    if (c >= 0) ::close(c);
    return c >= 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

Ran doctor_in(const fs::path& dir, std::vector<std::string> args, std::vector<std::string> env) {
  std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "doctor"};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run_env(argv, env, dir);
}

std::map<std::string, json> checks_of(const Ran& r) {
  std::map<std::string, json> out;
  json j = json::parse(r.out, nullptr, false);
  if (j.is_object())
    for (const auto& c : j["checks"]) out[c["name"]] = c;
  return out;
}

}  // namespace

TEST(Doctor, AFreshProjectPassesOfflineWithoutContactingTheProvider) {
  cp::test::TempDir dir;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", dir.path().string()}).exit_code, 0);
  SilentListener provider;
  const std::vector<std::string> env{
      "OPENAI_BASE_URL=http://127.0.0.1:" + std::to_string(provider.port()) + "/v1",
      "CP_HOST_KEY_DIR=" + (dir / "../doctor-keys").lexically_normal().string()};
  Ran r = doctor_in(dir.path(), {"--json"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto checks = checks_of(r);
  for (const char* name :
       {"root", "validate", "plugins", "plugin_worker", "host_key", "sandbox", "probe:toolchain"})
    EXPECT_EQ(checks[name].value("status", ""), "ok") << name << ": " << checks[name].dump();
  EXPECT_EQ(checks["probe:provider_capability"].value("status", ""), "skipped") << r.out;
  EXPECT_FALSE(provider.contacted()) << "doctor reached the model provider while offline";
  // Once configured, the provider probe runs: the listener sees it (and, never answered, it is a warning).
  json policy = json::parse(cp::test::read_file(dir / "policies/plugins.json"));
  policy["plugins"]["provider_capability"] = {{"config", {{"request_timeout_sec", 1}, {"model", "m"}}}};
  cp::test::write_file(dir / "policies/plugins.json", policy.dump(2));
  Ran configured = doctor_in(dir.path(), {"--json"}, env);
  EXPECT_EQ(checks_of(configured)["probe:provider_capability"].value("status", ""), "warn") << configured.out;
  EXPECT_TRUE(provider.contacted());
}

TEST(Doctor, AFolderThatIsNoProjectFailsAndSaysHowToFixIt) {
  cp::test::TempDir dir;
  Ran r = doctor_in(dir.path(), {}, {"CP_HOST_KEY_DIR=" + (dir / "keys").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("fail    root:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fix: run `cp-host init` in your repository"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cannot run contracts here"), std::string::npos) << r.out;
}

// Plugin folders are code cp-host runs: one others may write to fails, and an installed gate replaced by a
// library earlier on the search path is a warning naming both.
TEST(Doctor, APluginFolderOthersMayWriteFailsAndAShadowedInstalledGateWarns) {
  cp::test::TempDir dir;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", dir.path().string()}).exit_code, 0);
  cp::test::TempDir mine;
  fs::copy_file(fs::path(CP_PLUGIN_DIR) / "gate_policy.so", mine / "gate_policy.so");
  const std::vector<std::string> env{"CP_HOST_KEY_DIR=" +
                                     (dir / "../doctor-keys-2").lexically_normal().string()};
  auto doctor_with = [&](const std::string& path) {
    return cp::test::run_env({CP_HOST_BIN, "--plugins", path, "doctor", "--json"}, env, dir.path());
  };
  Ran shadowing = doctor_with(mine.path().string() + ":" + CP_PLUGIN_DIR);
  auto checks = checks_of(shadowing);
  ASSERT_TRUE(checks.count("plugin:policy")) << shadowing.out;
  EXPECT_EQ(checks["plugin:policy"]["status"], "warn");
  EXPECT_NE(checks["plugin:policy"]["detail"].get<std::string>().find((mine / "gate_policy.so").string()),
            std::string::npos)
      << checks["plugin:policy"].dump();
  EXPECT_FALSE(checks.count("plugin_path")) << shadowing.out;
  fs::permissions(mine.path(), fs::perms::others_write, fs::perm_options::add);
  Ran open = doctor_with(mine.path().string() + ":" + CP_PLUGIN_DIR);
  EXPECT_EQ(open.exit_code, 1) << open.out;
  checks = checks_of(open);
  ASSERT_TRUE(checks.count("plugin_path")) << open.out;
  EXPECT_EQ(checks["plugin_path"]["status"], "fail");
  EXPECT_NE(
      checks["plugin_path"]["detail"].get<std::string>().find(mine.path().string() + " others may write"),
      std::string::npos)
      << checks["plugin_path"].dump();
  fs::permissions(mine.path(), fs::perms::others_write, fs::perm_options::remove);
  // A relative folder is made absolute now, and said so.
  Ran relative = cp::test::run_env({CP_HOST_BIN, "--plugins", "no-such-plugins", "plugins", "list", "--json"},
                                   env, dir.path());
  EXPECT_NE(relative.err.find("plugin folder 'no-such-plugins' is relative; resolved to " +
                              (dir / "no-such-plugins").string()),
            std::string::npos)
      << relative.err;
}

namespace {

// doctor in `project` with no --plugins: the search path is CP_HOST_PLUGINS, whose empty entry stands for
// the default folders (the build's own plugins, beside the binary).
Ran doctor_with_env(const cp::test::TempDir& project, const cp::test::TempDir& keys,
                    const std::string& plugins, const std::vector<std::string>& args = {"--json"}) {
  std::vector<std::string> argv{CP_HOST_BIN, "doctor"};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run_env(argv,
                           {"CP_HOST_PLUGINS=" + plugins, "CP_HOST_KEY_DIR=" + keys.path().string(),
                            "XDG_DATA_HOME=" + (keys / "data").string()},
                           project.path());
}

}  // namespace

// A folder anyone may write to, put on the path through CP_HOST_PLUGINS, fails doctor and is named.
TEST(Doctor, AWorldWritablePluginFolderOnCpHostPluginsFails) {
  cp::test::TempDir dir, keys, mine;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", dir.path().string()}).exit_code, 0);
  fs::permissions(mine.path(), fs::perms::all, fs::perm_options::replace);  // 0777
  Ran r = doctor_with_env(dir, keys, mine.path().string() + ":");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto checks = checks_of(r);
  ASSERT_TRUE(checks.count("plugin_path")) << r.out;
  EXPECT_EQ(checks["plugin_path"]["status"], "fail");
  EXPECT_NE(checks["plugin_path"]["detail"].get<std::string>().find(mine.path().string() +
                                                                    " others may write to it (mode 0777)"),
            std::string::npos)
      << checks["plugin_path"].dump();
  Ran text = doctor_with_env(dir, keys, mine.path().string() + ":", {});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("fail    plugin_path: " + mine.path().string()), std::string::npos) << text.out;
  // Writable by its group is as bad; once neither may write, it passes.
  fs::permissions(mine.path(), fs::perms::owner_all | fs::perms::group_all, fs::perm_options::replace);
  EXPECT_EQ(
      checks_of(doctor_with_env(dir, keys, mine.path().string() + ":"))["plugin_path"].value("status", ""),
      "fail");
  fs::permissions(mine.path(), fs::perms::owner_all, fs::perm_options::replace);
  Ran fixed = doctor_with_env(dir, keys, mine.path().string() + ":");
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_FALSE(checks_of(fixed).count("plugin_path")) << fixed.out;
}

// A copy of a first-party gate in the user's folder, ahead of the default folders, takes the gate's id: a
// warning names the id and the library that took it; doctor still passes.
TEST(Doctor, AFirstPartyGateShadowedAheadOfTheDefaultFolderWarns) {
  cp::test::TempDir dir, keys, mine;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", dir.path().string()}).exit_code, 0);
  fs::copy_file(fs::path(CP_PLUGIN_DIR) / "gate_diff_scope.so", mine / "gate_diff_scope.so");
  Ran r = doctor_with_env(dir, keys, mine.path().string() + ":");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto checks = checks_of(r);
  ASSERT_TRUE(checks.count("plugin:diff_scope")) << r.out;
  EXPECT_EQ(checks["plugin:diff_scope"]["status"], "warn");
  const std::string detail = checks["plugin:diff_scope"]["detail"];
  EXPECT_NE(detail.find("'diff_scope'"), std::string::npos) << detail;
  EXPECT_NE(detail.find((mine / "gate_diff_scope.so").string()), std::string::npos) << detail;
  // The default folders alone: nothing is shadowed.
  Ran alone = doctor_with_env(dir, keys, ":");
  EXPECT_EQ(alone.exit_code, 0) << alone.out << alone.err;
  EXPECT_FALSE(checks_of(alone).count("plugin:diff_scope")) << alone.out;
}

// A relative entry of CP_HOST_PLUGINS is resolved against the current folder with one warning at start,
// and doctor warns of it; a library that is a link is named with its target, whose folder is checked too.
TEST(Doctor, ARelativePluginFolderAndALinkedLibraryWarn) {
  cp::test::TempDir dir, keys, elsewhere;
  ASSERT_EQ(cp::test::run({CP_HOST_BIN, "init", dir.path().string()}).exit_code, 0);
  fs::create_directory(dir / "my-plugins");
  Ran r = doctor_with_env(dir, keys, "my-plugins:");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string warning = "cp-host: warning: plugin folder 'my-plugins' is relative; resolved to " +
                              (dir / "my-plugins").string() + "\n";
  EXPECT_NE(r.err.find(warning), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(warning), r.err.rfind(warning)) << "said once: " << r.err;
  auto checks = checks_of(r);
  ASSERT_TRUE(checks.count("plugin_path_relative")) << r.out;
  EXPECT_EQ(checks["plugin_path_relative"]["status"], "warn");
  EXPECT_NE(checks["plugin_path_relative"]["detail"].get<std::string>().find(
                "CP_HOST_PLUGINS names the relative folder 'my-plugins', resolved here to " +
                (dir / "my-plugins").string()),
            std::string::npos)
      << checks["plugin_path_relative"].dump();
  // The same folder given absolute: no warning.
  Ran absolute = doctor_with_env(dir, keys, (dir / "my-plugins").string() + ":");
  EXPECT_EQ(absolute.err.find("is relative"), std::string::npos) << absolute.err;
  EXPECT_FALSE(checks_of(absolute).count("plugin_path_relative")) << absolute.out;

  // A link to a library in a folder anyone may write to: a warning for the link, a failure for that folder.
  fs::copy_file(fs::path(CP_PLUGIN_DIR) / "gate_policy.so", elsewhere / "gate_policy.so");
  fs::create_symlink(elsewhere / "gate_policy.so", dir / "my-plugins/gate_policy.so");
  fs::permissions(elsewhere.path(), fs::perms::all, fs::perm_options::replace);
  Ran linked = doctor_with_env(dir, keys, (dir / "my-plugins").string() + ":");
  EXPECT_EQ(linked.exit_code, 1) << linked.out << linked.err;
  checks = checks_of(linked);
  ASSERT_TRUE(checks.count("plugin_link")) << linked.out;
  EXPECT_EQ(checks["plugin_link"]["status"], "warn");
  EXPECT_NE(checks["plugin_link"]["detail"].get<std::string>().find(
                (dir / "my-plugins/gate_policy.so").string() + " is a symbolic link to " +
                fs::canonical(elsewhere / "gate_policy.so").string()),
            std::string::npos)
      << checks["plugin_link"].dump();
  ASSERT_TRUE(checks.count("plugin_path")) << linked.out;
  EXPECT_NE(checks["plugin_path"]["detail"].get<std::string>().find(fs::canonical(elsewhere.path()).string() +
                                                                    " others may write to it"),
            std::string::npos)
      << checks["plugin_path"].dump();
  fs::permissions(elsewhere.path(), fs::perms::owner_all, fs::perm_options::replace);
}
