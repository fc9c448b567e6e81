#include "cdp_client.hpp"

#include <cortexpilot/json_guard.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace cp::browser {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = beast::websocket;
using nlohmann::json;
using tcp = asio::ip::tcp;

namespace {

// A screenshot of a long page is a large message; past this the browser is misbehaving.
constexpr size_t kMaxMessageBytes = 64u << 20;

struct WsUrl {
  std::string host, port, target;
};

WsUrl parse_ws_url(const std::string& url) {
  const std::string scheme = "ws://";
  if (url.rfind(scheme, 0) != 0) throw CdpError("not a ws:// DevTools URL: " + url);
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  WsUrl u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = authority.rfind(':');
  size_t bracket = authority.find(']');
  if (colon == std::string::npos || (bracket != std::string::npos && bracket > colon))
    throw CdpError("no port in " + url);
  u.host = authority.substr(0, colon);
  u.port = authority.substr(colon + 1);
  if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  return u;
}

}  // namespace

struct CdpClient::Impl {
  asio::io_context io;
  ws::stream<beast::tcp_stream> socket{io};
  beast::flat_buffer buffer;
  std::deque<std::string> outbox;  // touched on the I/O thread only
  EventHandler on_event;
  std::thread thread;

  mutable std::mutex mu;
  std::map<int64_t, std::promise<json>> pending;
  std::map<int64_t, AnswerHandler> callbacks;
  int64_t next_id = 1;
  std::atomic<bool> is_open{false};
  std::string why_closed;
  std::atomic<uint64_t> received{0};

  void fail_all(const std::string& why) {
    std::map<int64_t, std::promise<json>> dropped;
    {
      std::lock_guard lock(mu);
      if (why_closed.empty()) why_closed = why;
      is_open = false;
      dropped.swap(pending);
    }
    for (auto& [id, p] : dropped) p.set_exception(std::make_exception_ptr(CdpError("DevTools: " + why)));
  }

  void read_next() {
    socket.async_read(buffer, [this](beast::error_code ec, size_t) {
      if (ec) return fail_all("connection closed (" + ec.message() + ")");
      std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      ++received;
      dispatch(text);
      read_next();
    });
  }

  void dispatch(const std::string& text) {
    // A page shapes what the browser sends (evaluate results, console arguments): measure before parsing.
    if (cp_json_depth(text.data(), text.size(), CP_JSON_MAX_DEPTH) > CP_JSON_MAX_DEPTH) return;
    json msg = json::parse(text, nullptr, false);
    if (!msg.is_object()) return;
    if (msg.contains("id") && msg["id"].is_number_integer()) {
      std::promise<json> p;
      AnswerHandler handler;
      {
        std::lock_guard lock(mu);
        auto it = pending.find(msg["id"].get<int64_t>());
        if (it == pending.end()) {
          auto cb = callbacks.find(msg["id"].get<int64_t>());
          if (cb == callbacks.end()) return;  // an answer to a send() nobody waits for
          handler = std::move(cb->second);
          callbacks.erase(cb);
        } else {
          p = std::move(it->second);
          pending.erase(it);
        }
      }
      if (handler) {
        const json& e = msg.contains("error") ? msg["error"] : json();
        std::string what = e.is_null() ? "" : e.is_object() ? e.value("message", e.dump()) : e.dump();
        try {
          handler(msg.value("result", json::object()),
                  what.empty() && msg.contains("error") ? "error" : what);
        } catch (...) {
        }
        return;
      }
      if (msg.contains("error")) {
        const json& e = msg["error"];
        std::string what = e.is_object() ? e.value("message", e.dump()) : e.dump();
        p.set_exception(std::make_exception_ptr(CdpError(what)));
      } else {
        p.set_value(msg.value("result", json::object()));
      }
      return;
    }
    if (msg.contains("method") && msg["method"].is_string() && on_event) {
      std::string session = msg.contains("sessionId") && msg["sessionId"].is_string() ? msg["sessionId"] : "";
      try {
        on_event(msg["method"], msg.value("params", json::object()), session);
      } catch (...) {
        // A handler's failure is its own; the socket keeps serving the others.
      }
    }
  }

  void write_next() {
    socket.async_write(asio::buffer(outbox.front()), [this](beast::error_code ec, size_t) {
      if (ec) return fail_all("write failed (" + ec.message() + ")");
      outbox.pop_front();
      if (!outbox.empty()) write_next();
    });
  }

  void enqueue(std::string text) {
    asio::post(io, [this, text = std::move(text)]() mutable {
      outbox.push_back(std::move(text));
      if (outbox.size() == 1) write_next();
    });
  }

  int64_t take_id() {
    std::lock_guard lock(mu);
    return next_id++;
  }
};

CdpClient::CdpClient(const std::string& ws_url, EventHandler on_event, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  WsUrl u = parse_ws_url(ws_url);
  impl_->on_event = std::move(on_event);
  try {
    tcp::resolver resolver(impl_->io);
    auto endpoints = resolver.resolve(u.host, u.port);
    beast::get_lowest_layer(impl_->socket).expires_after(timeout);
    beast::get_lowest_layer(impl_->socket).connect(endpoints);
    impl_->socket.read_message_max(kMaxMessageBytes);
    impl_->socket.handshake(u.host + ":" + u.port, u.target);
    beast::get_lowest_layer(impl_->socket).expires_never();
  } catch (const std::exception& e) {
    throw CdpError("cannot open DevTools at " + ws_url + ": " + e.what());
  }
  impl_->is_open = true;
  impl_->read_next();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

CdpClient::~CdpClient() {
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    beast::get_lowest_layer(impl_->socket).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(impl_->socket).close();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->fail_all("client closed");
}

json CdpClient::call(const std::string& method, const json& params, const std::string& session,
                     std::chrono::milliseconds timeout) {
  if (!impl_->is_open) throw CdpError("DevTools: " + close_reason());
  int64_t id = impl_->take_id();
  std::future<json> answer;
  {
    std::lock_guard lock(impl_->mu);
    answer = impl_->pending[id].get_future();
  }
  json msg{{"id", id}, {"method", method}, {"params", params}};
  if (!session.empty()) msg["sessionId"] = session;
  impl_->enqueue(msg.dump());
  if (answer.wait_for(timeout) != std::future_status::ready) {
    std::lock_guard lock(impl_->mu);
    impl_->pending.erase(id);
    throw CdpError(method + ": no answer within " + std::to_string(timeout.count()) + " ms");
  }
  return answer.get();
}

void CdpClient::send(const std::string& method, const json& params, const std::string& session) {
  json msg{{"id", impl_->take_id()}, {"method", method}, {"params", params}};
  if (!session.empty()) msg["sessionId"] = session;
  impl_->enqueue(msg.dump());
}

void CdpClient::send(const std::string& method, const json& params, const std::string& session,
                     AnswerHandler on_answer) {
  int64_t id = impl_->take_id();
  {
    std::lock_guard lock(impl_->mu);
    impl_->callbacks[id] = std::move(on_answer);
  }
  json msg{{"id", id}, {"method", method}, {"params", params}};
  if (!session.empty()) msg["sessionId"] = session;
  impl_->enqueue(msg.dump());
}

bool CdpClient::open() const {
  return impl_->is_open;
}

std::string CdpClient::close_reason() const {
  std::lock_guard lock(impl_->mu);
  return impl_->why_closed.empty() ? "open" : impl_->why_closed;
}

uint64_t CdpClient::messages_received() const {
  return impl_->received;
}

}  // namespace cp::browser
