// cp-plugin-worker: serves one plugin library to cp-host over a socketpair (plugin/worker_protocol.hpp),
// so that a plugin that crashes, hangs or floods takes down only this process. The host starts it with the
// socket on fd 3, its own process group, resource limits, and stdout/stderr going to a log the host reads
// back on failure. It dies with its parent (PR_SET_PDEATHSIG) and exits when the host closes the socket.
#include "os/confinement.hpp"
#include "plugin/host_services.hpp"
#include "plugin/instance.hpp"
#include "plugin/registry.hpp"
#include "plugin/worker_protocol.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <iostream>

using nlohmann::json;
namespace wire = cp::plugin::wire;

namespace {

int usage() {
  std::cerr << "usage: cp-plugin-worker --fd N --plugin FILE.so\n"
               "Started by cp-host for plugins it runs isolated; not meant to be run by hand.\n";
  return 2;
}

json outcome_message(const cp::plugin::CallOutcome& o) {
  return {{"op", "result"}, {"status", o.status}, {"output", o.output}, {"error", o.error}};
}

// The run's sandbox and cgroup, prepared here again from what the host sent. A call without one (or one
// that cannot be enforced here) gets none, and its run context then refuses to spawn anything.
std::shared_ptr<const cp::os::Confinement> confinement_of(const json& msg) {
  if (!msg.contains("confinement") || msg["confinement"].is_null()) return nullptr;
  std::string error;
  auto c = cp::os::Confinement::from_wire(msg["confinement"], error);
  if (!c) std::cerr << "cp-plugin-worker: no sandbox for this call: " << error << "\n";
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  int fd = -1;
  std::string plugin;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--fd") == 0)
      fd = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--plugin") == 0)
      plugin = argv[i + 1];
    else
      return usage();
  }
  if (fd < 0 || plugin.empty()) return usage();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 3;  // the host is already gone
  std::signal(SIGPIPE, SIG_IGN);

  auto forever = std::chrono::steady_clock::time_point::max();
  json msg;
  if (wire::read_frame(fd, msg, forever) != wire::ReadStatus::ok || msg["op"] != "hello") return 4;
  bool speaks = false;
  for (const auto& v : msg.value("protocols", json::array())) speaks = speaks || v == wire::kProtocol;
  cp::plugin::Registry reg;
  reg.load_file(plugin);
  json ids = json::array();
  for (const auto& p : reg.plugins()) ids.push_back(p.id);
  json hello{{"op", "hello"}, {"protocol", wire::kProtocol}, {"plugins", ids}};
  if (!speaks) hello["error"] = "no common protocol version (worker speaks 1)";
  if (!reg.refusals().empty()) hello["error"] = reg.refusals().front().reason;
  if (!wire::write_frame(fd, hello) || hello.contains("error")) return 5;

  std::unique_ptr<cp::plugin::Instance> instance;
  // A runner's run: its context lives from start until release, as plugin.h requires.
  std::unique_ptr<cp::plugin::CallContext> run_ctx;
  std::atomic<bool> run_cancel{false};
  void* run = nullptr;
  std::string id;
  while (true) {
    auto st = wire::read_frame(fd, msg, forever);
    if (st == wire::ReadStatus::eof) return 0;
    if (st != wire::ReadStatus::ok) {
      std::cerr << "cp-plugin-worker: " << wire::describe(st) << "\n";
      return 6;
    }
    std::string op = msg["op"];
    if (op == "create") {
      id = msg.value("id", "");
      const auto* info = reg.find(id);
      json reply{{"op", "created"}, {"status", CP_OK}, {"error", ""}};
      if (!info) {
        reply["status"] = CP_E_INVALID;
        reply["error"] = "no plugin '" + id + "' in " + plugin;
      } else {
        cp::plugin::PluginInfo effective = *info;
        effective.config_json = msg.value("config", std::string("{}"));
        std::string error;
        instance = cp::plugin::Instance::create(effective, error);
        if (!instance) reply["status"] = CP_E_FAILED, reply["error"] = error;
      }
      if (!wire::write_frame(fd, reply)) return 7;
    } else if (op == "propose") {
      if (!instance) {
        if (!wire::write_frame(fd, outcome_message({CP_E_INVALID, "", "no instance: send create first"})))
          return 7;
        continue;
      }
      cp::plugin::CallContext ctx(id);
      ctx.deny_spawn();  // a planner runs no process, isolated or not
      if (!wire::write_frame(fd, outcome_message(instance->propose_plan(ctx, msg.value("input", "{}")))))
        return 7;
    } else if (op == "evaluate" || op == "probe") {
      if (!instance) {
        if (!wire::write_frame(fd, outcome_message({CP_E_INVALID, "", "no instance: send create first"})))
          return 7;
        continue;
      }
      cp::plugin::CallContext ctx(id);
      ctx.set_workspace(msg.value("workspace", ""));
      ctx.set_bundle_dir(msg.value("bundle_dir", ""));
      ctx.set_run_id(msg.value("run_id", ""));
      ctx.set_confinement(confinement_of(msg));
      ctx.set_event_sink([fd](const std::string& type, const std::string& payload) {
        return wire::write_frame(fd, {{"op", "event"}, {"type", type}, {"payload", payload}});
      });
      auto out = op == "evaluate" ? instance->evaluate(ctx, msg.value("input", "{}")) : instance->probe(ctx);
      if (!wire::write_frame(fd, outcome_message(out))) return 7;
    } else if (op == "start") {
      json reply = outcome_message({CP_E_INVALID, "", "no instance, or a run already started"});
      if (instance && !run) {
        run_ctx = std::make_unique<cp::plugin::CallContext>(id);
        run_ctx->set_workspace(msg.value("workspace", ""));
        run_ctx->set_bundle_dir(msg.value("bundle_dir", ""));
        run_ctx->set_state_dir(msg.value("state_dir", ""));
        run_ctx->set_shared_state_dir(msg.value("shared_state_dir", ""));
        run_ctx->set_run_id(msg.value("run_id", ""));
        run_ctx->set_confinement(confinement_of(msg));
        run_ctx->set_cancel_flag(&run_cancel);
        run_ctx->set_event_sink([fd](const std::string& type, const std::string& payload) {
          return wire::write_frame(fd, {{"op", "event"}, {"type", type}, {"payload", payload}});
        });
        reply = outcome_message(instance->start(*run_ctx, msg.value("input", "{}"), run));
      }
      if (!wire::write_frame(fd, reply)) return 7;
    } else if (op == "wait") {
      cp::plugin::CallOutcome out{CP_E_INVALID, "", "no run started"};
      if (run) {
        out = instance->wait(run, msg.value("timeout_ms", 100));
        if (out.status != CP_PENDING) {
          instance->release(run);
          run = nullptr;
        }
      }
      if (!wire::write_frame(fd, outcome_message(out))) return 7;
    } else if (op == "cancel") {
      run_cancel = true;  // the run's spawned processes see it too
      if (run) instance->cancel(run, msg.value("force", false));
      if (!wire::write_frame(fd, {{"op", "result"}, {"status", CP_OK}, {"output", ""}, {"error", ""}}))
        return 7;
    } else if (op == "destroy") {
      if (run) return 0;  // a run still going: exiting kills it, and its process groups die with us
      instance.reset();
      if (!wire::write_frame(fd, {{"op", "destroyed"}})) return 7;
    } else {
      std::cerr << "cp-plugin-worker: unknown op '" << op << "'\n";
      return 6;
    }
  }
}
