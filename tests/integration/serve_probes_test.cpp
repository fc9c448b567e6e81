// GET /api/probes against a real `cp-host serve`: each probe plugin's capability answer with its reason when
// it is not ok, kept for the lifetime the probe gives it (a counting tool on PATH proves the probe ran once
// for two page loads), and every plugin the registry refused, with why. The CLI twins (`cp-host probe`,
// `cp-host plugins`) say the same.
#include "integration/serve_fixture.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

namespace cp::test {
namespace {

TEST(ServeProbes, AnswersAreKeptForTheirLifetimeAndRefusalsSayWhy) {
  RunProject p;
  std::string viewer = add_token(p, "dash", "viewer");
  // A plugin folder of our own: the built plugins, and a library that is no plugin at all.
  fs::path plugins = p.dir / "plugins";
  fs::create_directories(plugins);
  for (const auto& e : fs::directory_iterator(CP_PLUGIN_DIR))
    if (e.path().extension() == ".so") fs::copy_file(e.path(), plugins / e.path().filename());
  write_file(plugins / "broken.so", "not an ELF file");
  p.plugins = plugins;
  // The toolchain probe looks for a tool that counts its calls and one that does not exist, and says its
  // answer holds an hour.
  fs::path bin = p.dir / "bin", counter = p.dir / "probed.count";
  write_file(bin / "countme", "#!/bin/sh\necho x >> '" + counter.string() + "'\necho countme 1.0\n");
  fs::permissions(bin / "countme", fs::perms::owner_all);
  json pol = json::parse(read_file(p.dir / "policies/plugins.json"));
  pol["plugins"]["toolchain"]["config"] = {{"tools", {"git", "countme", "nosuchtool"}},
                                           {"required", {"git", "nosuchtool"}},
                                           {"ttl_seconds", 3600}};
  write_file(p.dir / "policies/plugins.json", pol.dump(2));
  std::string path = "PATH=" + bin.string() + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "");
  ServeProcess serve(p, {"--tokens", (p.dir / "tokens.json").string(), "--no-scheduler"}, {path});
  ASSERT_NE(serve.port(), 0) << serve.output();

  auto probes = [&] {
    auto r = http(serve.port(), "GET", "/api/probes", bearer(viewer));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  };
  json first = probes();
  json tc;
  std::set<std::string> ids;
  for (const auto& pr : first["probes"]) {
    ids.insert(pr["id"]);
    if (pr["id"] == "toolchain") tc = pr;
  }
  EXPECT_TRUE(ids.count("toolchain") && ids.count("chromium")) << first.dump(2);
  EXPECT_EQ(first["count"], ids.size());
  ASSERT_TRUE(tc.is_object()) << first.dump(2);
  // Not ok, and why.
  EXPECT_EQ(tc["status"], "missing");
  EXPECT_NE(tc["message"].get<std::string>().find("nosuchtool"), std::string::npos) << tc.dump(2);
  EXPECT_EQ(tc["capabilities"]["countme"]["version"], "countme 1.0");
  EXPECT_FALSE(tc["capabilities"]["nosuchtool"]["present"].get<bool>());
  EXPECT_EQ(tc["ttl_seconds"], 3600);
  EXPECT_EQ(tc["kind"], "probe");
  EXPECT_FALSE(tc["cached"].get<bool>());
  EXPECT_EQ(read_file(counter), "x\n");

  // Within its lifetime the answer is served as kept: the probe did not run again.
  json second = probes();
  json tc2;
  for (const auto& pr : second["probes"])
    if (pr["id"] == "toolchain") tc2 = pr;
  EXPECT_TRUE(tc2["cached"].get<bool>());
  EXPECT_EQ(tc2["probed_at"], tc["probed_at"]);
  EXPECT_EQ(tc2["status"], "missing");
  EXPECT_EQ(read_file(counter), "x\n") << "one probe for two page loads";

  // The library that is no plugin is refused, with the reason.
  bool refused = false;
  for (const auto& r : first["refusals"])
    if (r["file"].get<std::string>().find("broken.so") != std::string::npos) {
      refused = true;
      EXPECT_FALSE(r["reason"].get<std::string>().empty());
    }
  EXPECT_TRUE(refused) << first["refusals"].dump(2);

  EXPECT_EQ(http(serve.port(), "GET", "/api/probes").status, 401);
  EXPECT_EQ(http(serve.port(), "GET", "/api/probes?fresh=1", bearer(viewer)).status, 400);

  // The CLI twins say the same.
  Ran cli = run_env({CP_HOST_BIN, "--plugins", plugins.string(), "--root", p.dir.path().string(), "probe",
                     "toolchain", "--json"},
                    {path}, p.dir.path());
  EXPECT_EQ(cli.exit_code, 1) << "not ok: " << cli.err;
  EXPECT_EQ(json::parse(cli.out)["toolchain"]["message"], tc["message"]);
  Ran listed = run_env({CP_HOST_BIN, "--plugins", plugins.string(), "--root", p.dir.path().string(),
                        "plugins", "list", "--json"},
                       {}, p.dir.path());
  EXPECT_NE(listed.out.find("broken.so"), std::string::npos) << listed.out << listed.err;
}

}  // namespace
}  // namespace cp::test
