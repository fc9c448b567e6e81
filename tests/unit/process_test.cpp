#include "os/process.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <thread>

using namespace cp::os;

namespace {

// True when no live process has this pid (gone, or a zombie awaiting its reaper).
bool dead(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

bool eventually_dead(int pid) {
  for (int i = 0; i < 100; ++i) {
    if (dead(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

TEST(Process, CapturesExitCodeOutputAndFiles) {
  cp::test::TempDir dir;
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"};
  spec.stdout_path = dir / "o.log";
  spec.stderr_path = dir / "e.log";
  auto r = run_process(spec);
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.stdout_tail, "out\n");
  EXPECT_EQ(r.stderr_tail, "err\n");
  EXPECT_EQ(cp::test::read_file(dir / "o.log"), "out\n");
  EXPECT_EQ(cp::test::read_file(dir / "e.log"), "err\n");
  EXPECT_EQ(r.describe(), "exit 3");
}

TEST(Process, ReportsTheKillingSignal) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "kill -9 $$"};
  auto r = run_process(spec);
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_NE(r.describe().find("SIGKILL"), std::string::npos);
}

TEST(Process, MissingProgramIsNotStarted) {
  ProcessSpec spec;
  spec.argv = {"cp-host-no-such-program-xyz"};
  auto r = run_process(spec);
  EXPECT_FALSE(r.started);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.start_error.find("not found"), std::string::npos);
}

TEST(Process, StdinIsDevNull) {
  ProcessSpec spec;
  spec.argv = {"cat"};
  spec.timeout = std::chrono::seconds(10);
  auto r = run_process(spec);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_FALSE(r.timed_out);
}

TEST(Process, TimeoutKillsTheWholeGroup) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "sleep 100 & echo $!; sleep 100"};
  spec.timeout = std::chrono::milliseconds(300);
  spec.grace = std::chrono::milliseconds(300);
  auto r = run_process(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  int child = std::stoi(r.stdout_tail);
  EXPECT_TRUE(eventually_dead(child)) << "background child " << child << " survived the timeout";
  EXPECT_TRUE(eventually_dead(r.pid));
  EXPECT_LT(r.duration.count(), 5000);
}

TEST(Process, TermIgnoringProcessIsKilledAfterGrace) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "trap '' TERM; while true; do sleep 0.05; done"};
  spec.timeout = std::chrono::milliseconds(200);
  spec.grace = std::chrono::milliseconds(200);
  auto r = run_process(spec);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
}

TEST(Process, LeftoverChildIsKilledWhenLeaderExits) {
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "sleep 100 & echo $!"};
  spec.timeout = std::chrono::seconds(20);
  auto r = run_process(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  int child = std::stoi(r.stdout_tail);
  EXPECT_TRUE(eventually_dead(child));
  EXPECT_LT(r.duration.count(), 5000);
}

TEST(Process, CancelFlagStopsIt) {
  std::atomic<bool> cancel{false};
  ProcessSpec spec;
  spec.argv = {"sleep", "100"};
  spec.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    cancel = true;
  });
  auto r = run_process(spec);
  t.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGTERM);
}

TEST(Process, EnvironmentIsReplacedWhenGiven) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "echo \"$ONLY_THIS:${HOME:-unset}\""};
  spec.env = std::vector<std::string>{"ONLY_THIS=yes", "PATH=/usr/bin:/bin"};
  auto r = run_process(spec);
  EXPECT_EQ(r.stdout_tail, "yes:unset\n");
}

TEST(Process, LargeOutputKeepsOnlyTheTailInMemory) {
  cp::test::TempDir dir;
  ProcessSpec spec;
  spec.argv = {"sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' a; echo END"};
  spec.stdout_path = dir / "big.log";
  spec.tail_bytes = 100;
  auto r = run_process(spec);
  EXPECT_EQ(r.stdout_bytes, 5000004u);
  EXPECT_EQ(r.stdout_tail.size(), 100u);
  EXPECT_EQ(r.stdout_tail.substr(96), "END\n");
  EXPECT_EQ(std::filesystem::file_size(dir / "big.log"), 5000004u);
}

TEST(Process, LineCallbackGetsWholeLinesAcrossChunksAndALastUnterminatedOne) {
  cp::os::ProcessSpec spec;
  // Lines split across writes (and so across chunks), an overlong line, and no final newline.
  spec.argv = {"/bin/sh", "-c",
               "printf 'al'; sleep 0.05; printf 'pha\\nbeta\\n'; printf '%0300d\\n' 0; printf 'tail'"};
  spec.max_line_bytes = 100;
  std::vector<std::string> lines;
  std::string chunks;
  spec.on_stdout_line = [&](std::string_view l) {
    lines.emplace_back(l);
    return true;
  };
  spec.on_stdout = [&](std::string_view c) {
    chunks.append(c);
    return true;
  };
  auto out = cp::os::run_process(spec);
  EXPECT_TRUE(out.ok()) << out.describe();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "alpha");
  EXPECT_EQ(lines[1], "beta");
  EXPECT_EQ(lines[2], std::string(100, '0'));  // cut at max_line_bytes
  EXPECT_EQ(lines[3], "tail");
  EXPECT_EQ(chunks.size(), 5u + 1 + 5 + 300 + 1 + 4);  // the chunk callback still sees every byte
}
