// The tool runner plugin, driven in-process through the C ABI as the run engine will drive it.
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace {

struct Driven {
  json result;
  std::vector<std::pair<std::string, json>> events;
};

Driven drive(const std::vector<std::string>& commands, const std::filesystem::path& ws) {
  static cp::plugin::Registry reg = [] {
    cp::plugin::Registry r;
    r.load_directory(CP_PLUGIN_DIR);
    return r;
  }();
  const auto* info = reg.find("tool");
  EXPECT_NE(info, nullptr);
  auto* vt = static_cast<const cp_runner_vtable*>(info->vtable);
  Driven d;
  cp::plugin::CallContext ctx("tool");
  ctx.set_workspace(ws.string());
  ctx.set_event_sink([&](const std::string& t, const std::string& p) {
    d.events.emplace_back(t, json::parse(p));
    return true;
  });
  void* inst = nullptr;
  cp_error* err = nullptr;
  EXPECT_EQ(vt->create(ctx.raw(), "{}", &inst, &err), CP_OK);
  json allow =
      json::parse(cp::test::read_file(std::string(CP_SOURCE_DIR) + "/policies/command_allowlist.json"));
  json run{{"run_id", "r"},
           {"contract", {{"runtime_options", {{"runner", "tool"}, {"commands", commands}}}}},
           {"policies", {{"command_allowlist", allow}}}};
  void* handle = nullptr;
  EXPECT_EQ(vt->start(inst, ctx.raw(), run.dump().c_str(), &handle, &err), CP_OK);
  cp::plugin::SinkBuffer out(1 << 20);
  cp_status st;
  while ((st = vt->wait(inst, handle, 50, out.sink(), &err)) == CP_PENDING) {
  }
  EXPECT_EQ(st, CP_OK);
  vt->release(inst, handle);
  vt->destroy(inst);
  d.result = json::parse(out.data());
  return d;
}

}  // namespace

TEST(ToolRunner, RunsAllowedCommandsInTheWorkspace) {
  cp::test::TempDir ws;
  cp::test::write_file(ws / "f.txt", "Helo\n");
  auto d = drive({"sed -i s/Helo/Hello/ f.txt", "true"}, ws.path());
  EXPECT_EQ(d.result["status"], "completed") << d.result.dump();
  EXPECT_EQ(cp::test::read_file(ws / "f.txt"), "Hello\n");
  ASSERT_EQ(d.events.size(), 2u);
  EXPECT_EQ(d.events[0].first, "COMMAND_EXECUTED");
  EXPECT_EQ(d.events[0].second["exit_code"], 0);
}

TEST(ToolRunner, CommandOffTheAllowlistIsDeniedAndNothingRuns) {
  cp::test::TempDir ws;
  auto d = drive({"touch created-by-denied-command"}, ws.path());
  EXPECT_EQ(d.result["status"], "denied");
  EXPECT_FALSE(std::filesystem::exists(ws / "created-by-denied-command"));
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].first, "COMMAND_REJECTED");
}

TEST(ToolRunner, ShellTricksAndPathsToProgramsAreDenied) {
  cp::test::TempDir ws;
  EXPECT_EQ(drive({"true; touch x"}, ws.path()).result["status"], "denied");
  EXPECT_EQ(drive({"./true"}, ws.path()).result["status"], "denied");
  EXPECT_EQ(drive({"git push origin"}, ws.path()).result["status"], "denied");  // args_regex of git-read
  EXPECT_EQ(drive({"echo 'unterminated"}, ws.path()).result["status"], "denied");
  EXPECT_FALSE(std::filesystem::exists(ws / "x"));
}

TEST(ToolRunner, FailingCommandStopsTheRun) {
  cp::test::TempDir ws;
  auto d = drive({"false", "echo never"}, ws.path());
  EXPECT_EQ(d.result["status"], "failed");
  EXPECT_EQ(d.result["commands"].size(), 1u);
}
