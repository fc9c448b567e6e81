// A runner run executed on a thread of its own, shared by the first-party runners: the subclass does the
// work in execute() and calls finish(result) exactly once; wait() and cancel() follow plugin.h's rules
// (wait with a timeout from the host's thread, cancel from any thread). A subclass destructor must call
// stop_and_join() first, so the thread never outlives the object it runs on.
#pragma once

#include <cortexpilot/plugin.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace cp::plugins {

class ThreadedRun : public cp::RunnerRun {
 public:
  bool wait(uint64_t timeout_ms, std::string& result_json) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return done_; })) return false;
    result_json = result_.dump();
    return true;
  }
  void cancel(bool) override { cancelled_ = true; }

 protected:
  // Starts execute() on the run's thread; call at the end of the subclass constructor.
  void launch() {
    worker_ = std::thread([this] { execute(); });
  }
  void stop_and_join() {
    cancelled_ = true;
    if (worker_.joinable()) worker_.join();
  }
  virtual void execute() = 0;
  void finish(nlohmann::json result) {
    std::lock_guard lock(mu_);
    result_ = std::move(result);
    done_ = true;
    cv_.notify_all();
  }

  std::atomic<bool> cancelled_{false};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  nlohmann::json result_;
  std::thread worker_;
};

// A runner whose instance only keeps its parsed config and starts RunT(ctx, run, config) per run.
template <class RunT>
class ConfiguredRunner : public cp::Runner {
 public:
  ConfiguredRunner(cp::Context&, const std::string& config_json)
      : config_(nlohmann::json::parse(config_json)) {}
  std::unique_ptr<cp::RunnerRun> start(cp::Context ctx, const std::string& run_json) override {
    if (ctx.workspace().empty() || ctx.bundle_dir().empty())
      throw cp::Error(CP_E_INVALID, "this runner needs a run's workspace and bundle");
    return std::make_unique<RunT>(ctx, nlohmann::json::parse(run_json), config_);
  }

 private:
  nlohmann::json config_;
};

}  // namespace cp::plugins
