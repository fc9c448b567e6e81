// A Chrome DevTools Protocol client over one WebSocket (Boost.Beast), in flat session mode: one socket
// carries the browser's own commands and those of every target session it attached to.
//
// One I/O thread owns the socket. Commands are queued to it and answered through futures, so any number
// of threads may call; events are handed to one handler on the I/O thread, which must not block (it may
// send, never wait for an answer).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace cp::browser {

// A command failed: the protocol answered with an error, the socket closed, or the deadline passed.
class CdpError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CdpClient {
 public:
  // (method, params, session id or "") for every event, on the I/O thread.
  using EventHandler = std::function<void(const std::string&, const nlohmann::json&, const std::string&)>;

  // Connects to ws://host:port/path. Throws CdpError.
  CdpClient(const std::string& ws_url, EventHandler on_event, std::chrono::milliseconds connect_timeout);
  ~CdpClient();
  CdpClient(const CdpClient&) = delete;
  CdpClient& operator=(const CdpClient&) = delete;

  // Sends a command and waits for its answer's "result". Throws CdpError.
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object(),
                      const std::string& session = "",
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends a command whose answer nobody waits for (from event handlers).
  void send(const std::string& method, const nlohmann::json& params, const std::string& session = "");
  // (result, error message or "") of a command, on the I/O thread; must not block.
  using AnswerHandler = std::function<void(const nlohmann::json&, const std::string&)>;
  // Sends a command and hands its answer to `on_answer` (event handlers chain commands this way).
  void send(const std::string& method, const nlohmann::json& params, const std::string& session,
            AnswerHandler on_answer);

  bool open() const;
  // Why the socket closed, once it has.
  std::string close_reason() const;
  // Messages received so far (events and answers).
  uint64_t messages_received() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cp::browser
