// The remote client's limits against servers of the test's own on 127.0.0.1: one that never answers and one
// that trickles end within the request's budget; answers that page for ever end; the token is warned about
// before it travels in clear to another machine; a server's message cannot drive the terminal.
#include "integration/page_server.hpp"
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

using cp::test::PageResponse;
using cp::test::PageServer;
using cp::test::Ran;
using nlohmann::json;

namespace {

// A server that answers every request with headers promising 100,000 bytes, then sends one byte every
// 200 ms: each read gets something, so only a deadline over the whole request ends it.
class TrickleServer {
 public:
  TrickleServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("trickle server: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
        bool ok = ::send(c, head.data(), head.size(), MSG_NOSIGNAL) > 0;
        for (int i = 0; ok && !stop_ && i < 600; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          ok = ::send(c, " ", 1, MSG_NOSIGNAL) == 1;
        }
        ::close(c);
      }
    });
  }
  ~TrickleServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Ran limits_cli(const std::string& server, std::vector<std::string> args, std::vector<std::string> env = {}) {
  std::vector<std::string> argv{CP_HOST_BIN, "--server", server};
  argv.insert(argv.end(), args.begin(), args.end());
  env.push_back("CP_HOST_HTTP_TIMEOUT_MS=1500");
  return cp::test::run_env(argv, env);
}

double limits_seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST(RemoteClientLimits, AServerThatNeverAnswersOrTricklesEndsWithinTheBudget) {
  PageServer silent;
  PageResponse hang;
  hang.hang = true;
  silent.route("/api/runs/r1", hang);
  auto t = std::chrono::steady_clock::now();
  Ran r = limits_cli(silent.origin(), {"runs", "show", "r1"}, {"CP_HOST_TOKEN=t"});
  EXPECT_LT(limits_seconds_since(t), 10.0);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("within 1500 ms"), std::string::npos) << r.err;
  EXPECT_EQ(silent.seen().size(), 1u) << "the request did reach it";

  TrickleServer trickle;
  t = std::chrono::steady_clock::now();
  Ran slow = limits_cli(trickle.origin(), {"runs", "list"}, {"CP_HOST_TOKEN=t"});
  EXPECT_LT(limits_seconds_since(t), 10.0);
  EXPECT_EQ(slow.exit_code, 3) << slow.err;
  EXPECT_NE(slow.err.find("within 1500 ms"), std::string::npos) << slow.err;
}

TEST(RemoteClientLimits, PagesThatNeverMoveOnEndTheListing) {
  PageServer loop;
  loop.route(
      "/api/runs",
      {200, "application/json", json{{"runs", json::array()}, {"next_cursor", "again"}}.dump(), {}, false});
  loop.route("/api/runs/r1/events",
             {200, "application/json", json{{"events", json::array()}, {"more", true}}.dump(), {}, false});
  Ran list = limits_cli(loop.origin(), {"runs", "list", "--json"}, {"CP_HOST_TOKEN=t"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(json::parse(list.out)["count"], 0);
  Ran events = limits_cli(loop.origin(), {"runs", "events", "r1"}, {"CP_HOST_TOKEN=t"});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  EXPECT_LT(loop.seen().size(), 6u) << "each listing asked a page or two, not for ever";
}

TEST(RemoteClientLimits, ATokenSentInClearToAnotherMachineIsWarnedAbout) {
  // 192.0.2.1 (TEST-NET-1) answers nothing: the warning comes before any connection.
  Ran far =
      limits_cli("http://192.0.2.1:9", {"runs", "list"}, {"CP_HOST_TOKEN=t", "CP_HOST_HTTP_TIMEOUT_MS=300"});
  EXPECT_NE(far.err.find("warning: the token goes in clear over http:// to 192.0.2.1"), std::string::npos)
      << far.err;
  PageServer near;
  near.route("/api/runs", {200, "application/json", json{{"runs", json::array()}}.dump(), {}, false});
  Ran local = limits_cli(near.origin(), {"runs", "list"}, {"CP_HOST_TOKEN=t"});
  EXPECT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(local.err.find("warning"), std::string::npos) << local.err;
}

TEST(RemoteClientLimits, AServersErrorMessageCannotDriveTheTerminal) {
  PageServer evil;
  evil.route("/api/runs/r1",
             {404,
              "application/json",
              json{{"error", {{"code", "not_found"}, {"message", "gone\x1b]52;c;eA==\x07\x1b[2J"}}}}.dump(),
              {},
              false});
  Ran r = limits_cli(evil.origin(), {"runs", "show", "r1"}, {"CP_HOST_TOKEN=t"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("gone?]52;c;eA==??[2J"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
}
