// The worker protocol's frame parser, fed garbage: malformed, truncated, oversized and random frames are
// refused with a status, never a crash; and the real cp-plugin-worker exits cleanly on a bad frame.
#include "plugin/worker_protocol.hpp"

#include <gtest/gtest.h>

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <string>

using nlohmann::json;
namespace wire = cp::plugin::wire;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  void send_raw(const std::string& bytes) {
    ASSERT_EQ(::write(a, bytes.data(), bytes.size()), (ssize_t)bytes.size());
  }
  void close_writer() { ::close(a), a = -1; }
  wire::ReadStatus read(json& out, int ms = 500) {
    return wire::read_frame(b, out, Clock::now() + std::chrono::milliseconds(ms));
  }
};

std::string frame(const std::string& body, uint32_t claimed) {
  std::string f(4, '\0');
  f[0] = char(claimed >> 24), f[1] = char(claimed >> 16), f[2] = char(claimed >> 8), f[3] = char(claimed);
  return f + body;
}

}  // namespace

TEST(WorkerProtocol, RoundTripAndEveryMalformedShapeIsRefused) {
  Pair p;
  ASSERT_TRUE(wire::write_frame(p.a, {{"op", "hello"}, {"protocols", {1}}}));
  json m;
  ASSERT_EQ(p.read(m), wire::ReadStatus::ok);
  EXPECT_EQ(m["op"], "hello");
  for (const char* body : {"", "[]", "{}", "{\"op\":1}", "\"op\"", "{\"op\":\"x\"", "null"})
    EXPECT_EQ(wire::decode(body, m), wire::ReadStatus::malformed) << body;
  EXPECT_EQ(wire::decode(R"({"op":"x"})", m), wire::ReadStatus::ok);
  std::string deep = "{\"op\":\"x\",\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(wire::decode(deep, m), wire::ReadStatus::malformed);  // a worker cannot crash the host this way
}

TEST(WorkerProtocol, OversizedTruncatedSilentAndClosedStreams) {
  {
    Pair p;
    p.send_raw(frame("", wire::kMaxFrame + 1));
    json m;
    EXPECT_EQ(p.read(m), wire::ReadStatus::too_large);
  }
  {
    Pair p;
    p.send_raw(frame(R"({"op":"he)", 40));
    p.close_writer();
    json m;
    EXPECT_EQ(p.read(m), wire::ReadStatus::malformed);  // cut mid-frame
  }
  {
    Pair p;
    p.send_raw(std::string("\0\0", 2));
    p.close_writer();
    json m;
    EXPECT_EQ(p.read(m), wire::ReadStatus::malformed);  // cut mid-header
  }
  {
    Pair p;
    json m;
    EXPECT_EQ(p.read(m, 50), wire::ReadStatus::timeout);
    p.close_writer();
    EXPECT_EQ(p.read(m), wire::ReadStatus::eof);
  }
}

TEST(WorkerProtocol, RandomBytesNeverCrashTheReader) {
  std::mt19937 rng(20261125);
  int ok = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    Pair p;
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    if (i % 3 == 0 && bytes.size() >= 4)
      bytes = frame(bytes.substr(4), static_cast<uint32_t>(bytes.size() - 4));
    p.send_raw(bytes);
    p.close_writer();
    json m;
    auto st = p.read(m);
    if (st == wire::ReadStatus::ok) {
      ++ok;
      EXPECT_TRUE(m.is_object() && m["op"].is_string());
    } else {
      ++refused;
    }
  }
  EXPECT_EQ(ok + refused, 3000);
  EXPECT_GT(refused, 2900);
}

TEST(WorkerProtocol, RealWorkerExitsCleanlyOnAGarbageFrame) {
  for (const std::string& garbage :
       {frame("not json", 8), frame(R"({"op":"teleport"})", 17), frame("", 0xffffffffu)}) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    std::string so = std::string(CP_LOADER_FIXTURE_DIR) + "/a_good.so";
    std::vector<std::string> args{CP_WORKER_BIN, "--fd", "3", "--plugin", so};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, CP_WORKER_BIN, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(sv[1]);
    ASSERT_TRUE(wire::write_frame(sv[0], {{"op", "hello"}, {"protocols", {1}}}));
    json hello;
    ASSERT_EQ(wire::read_frame(sv[0], hello, Clock::now() + std::chrono::seconds(10)), wire::ReadStatus::ok);
    EXPECT_EQ(hello["plugins"], json::array({"fixture_good"}));
    ASSERT_EQ(::write(sv[0], garbage.data(), garbage.size()), (ssize_t)garbage.size());
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status)) << "worker died by a signal on a garbage frame";
    EXPECT_EQ(WEXITSTATUS(status), 6);
    ::close(sv[0]);
  }
}
