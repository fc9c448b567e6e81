#include "serve/scheduler.hpp"
#include "chain/chain_driver.hpp"
#include "chain/chain_record.hpp"
#include "core/clock.hpp"
#include "core/json_file.hpp"
#include "core/runtime_paths.hpp"
#include "serve/exit_watch.hpp"

#include "control/path_lock_release.hpp"
#include "log/log_lanes.hpp"
#include "plugin/host_services.hpp"
#include "queue/queue_backend.hpp"
#include "queue/queue_service.hpp"
#include "run/recovery.hpp"
#include "serve/run_mirror.hpp"
#include "serve/worker_registry.hpp"
#include "store/bundle.hpp"
#include "store/host_key.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

namespace cp::serve {

namespace fs = std::filesystem;
using nlohmann::json;
using queue::AttemptEnd;
using queue::ItemState;
using queue::QueueItem;
using queue::QueueState;

namespace {

// The attempt's outcome from its bundle: {status, reason}; status empty when the bundle has none.
std::pair<std::string, std::string> outcome_from_bundle(const fs::path& root, const std::string& run_id) {
  if (run_id.empty()) return {};
  json m = core::read_json_file(core::runs_dir(root) / run_id / "manifest.json");
  if (!m.is_object()) return {};
  std::string status = m.value("status", "");
  if (status == "sealed") return {m.value("verdict", "error"), m.value("reason", "")};
  if (status == "awaiting_approval") return {"awaiting_approval", m.value("reason", "waiting for approval")};
  return {};
}

// The child's log file of one attempt (spawn() writes it).
fs::path attempt_log(const fs::path& root, const std::string& item_id, int attempt) {
  return core::queue_logs_dir(root) / (item_id + "-" + std::to_string(attempt) + ".log");
}

// The last lines of an attempt's log: why a child that sealed no bundle stopped (the diagnostics of a
// refused contract, an internal error). No route serves the log itself, so the queue keeps this much.
std::string log_tail(const fs::path& log) {
  constexpr std::streamoff kMax = 2048;
  std::ifstream in(log, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  std::streamoff from = size > kMax ? size - kMax : 0;
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (from > 0) {
    // Start at a whole line, and never inside a UTF-8 sequence.
    auto nl = text.find('\n');
    text = nl == std::string::npos ? std::string() : text.substr(nl + 1);
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // The queue log is JSON: a byte that is not part of valid UTF-8 (the child printed anything) becomes '?'.
  std::string out;
  for (size_t i = 0; i < text.size();) {
    unsigned char b = static_cast<unsigned char>(text[i]);
    // RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
    size_t n = b < 0x80                 ? 1
               : b >= 0xC2 && b <= 0xDF ? 2
               : b >= 0xE0 && b <= 0xEF ? 3
               : b >= 0xF0 && b <= 0xF4 ? 4
                                        : 0;
    bool ok = n > 0 && i + n <= text.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok && n > 2) {
      unsigned char b1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(b == 0xE0 && b1 < 0xA0) && !(b == 0xED && b1 >= 0xA0) && !(b == 0xF0 && b1 < 0x90) &&
           !(b == 0xF4 && b1 >= 0x90);
    }
    if (ok && (n > 1 || b >= 0x20 || b == '\n' || b == '\t')) {
      out.append(text, i, n);
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

// What the child runs for an item: its contract snapshot, or an earlier run's compiled contract again
// (control/run_requeue.hpp).
std::vector<std::string> command_of(const QueueItem& it) {
  if (!it.replay_of.empty()) return {"replay", it.replay_of};
  if (!it.from_run.empty()) return {"run", "--from-run", it.from_run};
  std::vector<std::string> cmd{"run", it.contract_path};
  for (auto& a : chain::QueuedChainDriver::step_arguments(it)) cmd.push_back(std::move(a));
  return cmd;
}

}  // namespace

std::pair<std::string, std::string> outcome_from_exit(int ws) {
  if (WIFSIGNALED(ws)) return {"error", "cp-host run died of signal " + std::to_string(WTERMSIG(ws))};
  int code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  switch (code) {
    case 1:
      return {"error",
              "the contract was found invalid before the run started (exit 1); see the attempt's error"};
    case 2:
      return {"error", "the contract was refused before the run started (exit 2); see the attempt's error"};
    case 3:
      return {"error", "cp-host run failed internally (exit 3); see the attempt's error"};
    default:
      return {"error", "cp-host run exited " + std::to_string(code) + " without a sealed bundle"};
  }
}

Scheduler::Scheduler(queue::QueueService& q, SchedulerOptions o) : q_(q), o_(std::move(o)) {
  if (o_.cp_host.empty()) o_.cp_host = fs::read_symlink("/proc/self/exe");
  o_.root = fs::absolute(o_.root).lexically_normal();
  chains_ = std::make_unique<chain::QueuedChainDriver>(o_.root);
  q_.set_global_limit(o_.concurrency);
}

Scheduler::~Scheduler() {
  stop();
}

int Scheduler::recover() {
  // Bundles of children that died with the old host are sealed first (and their runners killed), so the
  // outcome read below is final. Said as it happens: serve listens only once this is done.
  for (const auto& r : run::recover_unsealed(o_.root))
    std::fprintf(stderr, "cp-host serve: %s\n", r.line().c_str());
  queue::QueueBackend& queue = q_.backend();
  int ended = 0;
  auto snapshot = queue.list();
  const bool shared = o_.registry && o_.registry->shared();
  for (const auto& [id, it] : snapshot->state.items()) {
    if (!it.active()) continue;
    // Other nodes' attempts are theirs while their lease holds; the lease check ends them when it lapses.
    if (shared && it.current()->worker != o_.worker_id) continue;
    auto [status, reason] = outcome_from_bundle(o_.root, it.current()->run_id);
    if (status.empty()) {
      status = "error";
      reason =
          "host_interrupted: cp-host serve stopped during attempt " + std::to_string(it.current()->attempt);
    }
    // Its run goes to the shared store as it stands, while the attempt still holds its fence.
    if (o_.mirror && !it.current()->run_id.empty()) {
      o_.mirror->track(it.current()->run_id, id, it.current()->attempt);
      o_.mirror->finish(it.current()->run_id, std::chrono::seconds(15));
    }
    // A chain step that passed has its change carried first, as if the old host had finished it.
    AttemptEnd end = chains_->on_attempt_end(it, {status, reason, ""});
    if (queue.finish(id, it.current()->attempt, end).change == queue::Change::applied) ++ended;
  }
  // Approvals decided and chains ended while no serve ran.
  chains_->advance(queue);
  // Chains whose submission died before the queue took them: nothing will ever run them.
  chain::sweep_unqueued_chains(o_.root, queue.list()->state, std::chrono::minutes(10));
  return ended;
}

void Scheduler::start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  // A child that exits frees its slot now, not at the next tick: the loop is poked and reaps it.
  if (!exits_) exits_ = std::make_unique<ExitWatch>([this] { poke(); });
  thread_ = std::thread([this] { loop(); });
  // A shared queue says when it changes (NOTIFY): an idle node is woken at once by a submission anywhere,
  // and looks at the queue only every idle_tick otherwise.
  if (o_.registry && o_.registry->shared()) waker_ = std::thread([this] { wake_on_changes(); });
}

void Scheduler::wake_on_changes() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
    }
    try {
      uint64_t now = q_.backend().watch(seen, std::chrono::seconds(1));
      if (now != seen) {
        seen = now;
        poke();
      }
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the store is away: the tick covers it
    }
  }
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (waker_.joinable()) waker_.join();
  exits_.reset();
}

void Scheduler::poke() {
  {
    std::lock_guard<std::mutex> l(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void Scheduler::loop() {
  for (;;) {
    try {
      tick_once();
    } catch (const std::exception& e) {
      // A queue file that cannot be written is fatal to scheduling, not to the API: say so and retry.
      std::fprintf(stderr, "cp-host serve: scheduler: %s\n", e.what());
    }
    // With nothing running and nothing to record the queue's own wake-ups suffice (idle_tick); a running
    // child is looked at every tick.
    const bool idle = o_.idle_tick > o_.tick && children_.empty() && unrecorded_.empty();
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, idle ? o_.idle_tick : o_.tick, [this] { return stop_ || poked_; });
    poked_ = false;
    if (stop_) break;
  }
  // Children die with this thread (PDEATHSIG), so they are stopped and waited for here.
  for (auto& [pid, c] : children_) ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!children_.empty()) {
    for (auto it = children_.begin(); it != children_.end();) {
      int ws = 0;
      pid_t r = ::waitpid(it->first, &ws, WNOHANG);
      if (r == it->first || (r < 0 && errno == ECHILD)) {
        Child c = it->second;
        it = children_.erase(it);
        if (o_.mirror) o_.mirror->finish(c.run_id, std::chrono::seconds(5));
        if (o_.on_run_done) o_.on_run_done(c.run_id);
        auto [status, reason] = outcome_from_bundle(o_.root, c.run_id);
        try {
          auto snapshot = q_.backend().list();
          const QueueItem* item = snapshot->state.find(c.item_id);
          if (item && item->active() && item->current()->attempt == c.attempt) {
            AttemptEnd end{status, reason, ""};
            if (!item->cancel_requested || status != "cancelled")
              end = {"error",
                     "serve stopped during the run (its bundle says " +
                         (status.empty() ? "nothing" : status) + ")",
                     ""};
            q_.backend().finish(c.item_id, c.attempt, end);
          }
        } catch (const std::exception& e) {
          // The store is out of reach while stopping: the attempt stays open, and is ended by this node's
          // next start (recover) or, on a shared store, by another node once this one's lease lapses.
          std::fprintf(stderr, "cp-host serve: scheduler: recording the end of %s while stopping: %s\n",
                       c.item_id.c_str(), e.what());
        }
      } else {
        ++it;
      }
    }
    if (std::chrono::steady_clock::now() > deadline)
      for (auto& [pid, c] : children_) ::kill(pid, SIGKILL);
    if (!children_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::lock_guard<std::mutex> l(mu_);
  stats_.running = 0;
}

void Scheduler::reap() {
  for (auto it = children_.begin(); it != children_.end();) {
    int ws = 0;
    pid_t r = ::waitpid(it->first, &ws, WNOHANG);
    if (r == it->first) {
      Child c = it->second;
      it = children_.erase(it);
      finish(c, ws);
    } else {
      ++it;
    }
  }
}

void Scheduler::finish(const Child& reaped, int ws) {
  Child c = reaped;
  if (!c.fenced) {
    // Looked at again now: this process may have been paused between the tick's fence check and this
    // reap, and another node may have taken the attempt meanwhile. (When the store cannot be read, the
    // queue still refuses the end of an attempt that is not current.)
    try {
      auto snapshot = q_.backend().list();
      const QueueItem* it = snapshot->state.find(c.item_id);
      if (!(it && it->active() && it->current() && it->current()->attempt == c.attempt)) c.fenced = true;
    } catch (const std::exception&) {
    }
  }
  if (c.fenced) {
    // Another node runs the item now: this attempt's outcome is not recorded, and nothing of it is
    // carried onto a chain branch. Its local bundle stays, as evidence of what the fenced run did; the
    // shared store's fence refuses its last events and its seal.
    if (o_.mirror) o_.mirror->finish(c.run_id, std::chrono::seconds(5));
    if (o_.on_run_done) o_.on_run_done(c.run_id);
    log::Event ev;
    ev.level = log::Level::warn;
    ev.correlation_kind = "queue";
    ev.correlation_id = c.item_id;
    ev.run_id = c.run_id;
    ev.component = "scheduler";
    ev.message = "attempt " + std::to_string(c.attempt) + " of " + c.item_id +
                 " was fenced (its lease was lost); its end is not recorded";
    log::emit(ev);
    std::fprintf(stderr, "cp-host serve: %s\n", ev.message.c_str());
    std::lock_guard<std::mutex> l(mu_);
    stats_.running = static_cast<int>(children_.size());
    return;
  }
  std::string status, reason, error;
  std::tie(status, reason) = outcome_from_bundle(o_.root, c.run_id);
  if (status.empty()) {
    // The child died without sealing (a crash, SIGKILL): seal its bundle now, then read it again.
    run::recover_unsealed(o_.root);
    std::tie(status, reason) = outcome_from_bundle(o_.root, c.run_id);
    if (status.empty()) {
      std::tie(status, reason) = outcome_from_exit(ws);
      error = log_tail(attempt_log(o_.root, c.item_id, c.attempt));
    }
  }
  // The catalogue first: once the queue says the item is done, its run is listed too.
  if (o_.on_run_done) o_.on_run_done(c.run_id);
  AttemptEnd end{status, reason, error};
  try {
    // A chain step's passed change goes onto the chain branch before the item counts as passed, and only
    // while the attempt is still this node's (a lease lost since the last fence check carries nothing).
    auto snapshot = q_.backend().list();
    const QueueItem* it = snapshot->state.find(c.item_id);
    if (it && it->active() && it->current()->attempt == c.attempt) end = chains_->on_attempt_end(*it, end);
  } catch (const std::exception& e) {
    // The store is out of reach: the end is recorded later (record_end keeps it).
    std::fprintf(stderr, "cp-host serve: scheduler: reading the queue for %s: %s\n", c.item_id.c_str(),
                 e.what());
  }
  status = end.status;
  reason = end.reason;
  // The sealed bundle goes to the shared store before the attempt counts as ended, so a node that sees
  // the item done finds its run there. When the store is slow the mirror keeps trying on its own.
  if (o_.mirror && !o_.mirror->finish(c.run_id, std::chrono::seconds(15)))
    std::fprintf(stderr, "cp-host serve: scheduler: run %s of %s is not in the shared store yet\n",
                 c.run_id.c_str(), c.item_id.c_str());
  record_end(c.item_id, c.attempt, end);
  log::Event ev;
  ev.level = status == "success" ? log::Level::info
             : status == "error" ? log::Level::error
                                 : log::Level::warn;
  ev.correlation_kind = "queue";
  ev.correlation_id = c.item_id;
  ev.run_id = c.run_id;
  ev.component = "scheduler";
  ev.message =
      "attempt " + std::to_string(c.attempt) + " of " + c.item_id + " ended " + status + ": " + reason;
  ev.fields = {{"attempt", c.attempt}, {"status", status}};
  log::emit(ev);
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.finished_total;
    stats_.running = static_cast<int>(children_.size());
  }
}

// Renews the locks of live children before half their TTL is gone, and (once a second) reaps expired
// locks: those of attempts nobody watches any more.
void Scheduler::keep_locks(int64_t now) {
  queue::QueueBackend& queue = q_.backend();
  for (auto& [pid, c] : children_) {
    if (c.locks_expire_ms == 0 || now < c.locks_expire_ms - c.lock_ttl_ms / 2) continue;
    const int64_t until = now + c.lock_ttl_ms;
    queue::Change r = queue.renew_locks(c.item_id, c.attempt, until, now);
    if (r == queue::Change::applied || r == queue::Change::unchanged) {
      c.locks_expire_ms = until;
      continue;
    }
    // Released (the run was sealed, or an admin forced it) or already expired: nothing left to renew.
    c.locks_expire_ms = 0;
  }
  if (now < next_reap_ms_) return;
  next_reap_ms_ = now + 1000;
  try {
    control::reap_expired_locks(o_.root, queue, now);
  } catch (const std::exception& e) {
    // The locks are gone from the queue; only their record failed. Say so, and go on scheduling.
    std::fprintf(stderr, "cp-host serve: scheduler: reaping expired path locks: %s\n", e.what());
  }
}

void Scheduler::record_end(const std::string& item_id, int attempt, const AttemptEnd& end) {
  try {
    q_.backend().finish(item_id, attempt, end);
  } catch (const std::exception& e) {
    // The store is out of reach for longer than its retries: the outcome is kept and recorded at a later
    // tick, never dropped (the item would otherwise look running for ever).
    std::fprintf(stderr, "cp-host serve: scheduler: recording the end of %s attempt %d: %s (will retry)\n",
                 item_id.c_str(), attempt, e.what());
    unrecorded_.push_back({item_id, attempt, end});
  }
}

void Scheduler::tick_once() {
  if (!unrecorded_.empty()) {
    auto pending = std::move(unrecorded_);
    unrecorded_.clear();
    for (const auto& u : pending) record_end(u.item_id, u.attempt, u.end);
  }
  // Fenced children are found before any is reaped: the end of an attempt that is no longer this node's
  // must not be recorded, nor carried onto a chain branch.
  fence_and_requeue(q_.backend().list()->state, core::now_ms());
  reap();
  keep_locks(core::now_ms());
  queue::QueueBackend& queue = q_.backend();
  // Chains first: an ended chain's steps are cancelled, a decided approval settled, before any claim.
  chains_->advance(queue);
  auto snapshot = queue.list();
  const QueueState& st = snapshot->state;

  // Cancels asked for by anyone (this API, the CLI): the child seals its run as cancelled.
  for (auto& [pid, c] : children_) {
    const QueueItem* it = st.find(c.item_id);
    if (it && it->cancel_requested && !c.term_sent) {
      ::kill(pid, SIGTERM);
      c.term_sent = true;
    }
  }

  // Items whose dependency ended without success can never run: they end cancelled.
  queue::Limits limits = q_.limits(o_.concurrency);
  int64_t now = core::now_ms();
  {
    queue::Occupancy occ = queue::occupancy(st);
    for (const QueueItem* it : queue::in_run_order(st)) {
      queue::Derived d = queue::derive(*it, st, limits, occ, now);
      if (!d.blocked_by.empty())
        queue.cancel(it->item_id, std::string(queue::kHostActor) + "scheduler", d.why_not);
    }
  }

  // Then every eligible item, in run order, each named (run id, attempt) in the queue before it starts.
  struct Launch {
    Child child;
    std::vector<std::string> command;
    std::string repo;
  };
  std::vector<Launch> launches;
  // --concurrency bounds this node's runs; the queue's occupancy counts every node's, so the others' are
  // added to the limit the claim is judged by (per-pack limits stay the whole queue's).
  int mine = 0;
  for (const auto& [pid, c] : children_)
    if (!c.fenced) ++mine;
  const int others = std::max(0, queue::occupancy(st, now).total - mine);
  queue::ClaimRequest claim;
  claim.limits = limits;
  claim.limits.global = o_.concurrency + others;
  claim.now = now;
  claim.worker = o_.worker_id;
  // A chain's own item is named after the chain: its bundle is the chain bundle.
  claim.name_run = [](const QueueItem& it) {
    return chain::QueuedChainDriver::is_chain_item(it) ? it.item_id : store::new_run_id(it.task_id);
  };
  claim.lock_ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(o_.lock_ttl).count();
  // A node whose id another process took claims nothing: that process is the node now.
  const bool displaced = o_.registry && o_.registry->displaced();
  while (!displaced && mine + static_cast<int>(launches.size()) < o_.concurrency) {
    auto it = queue.claim(claim);
    if (!it) break;
    if (chain::QueuedChainDriver::is_chain_item(*it)) {
      // Every step ended: the chain is sealed here, no child runs.
      AttemptEnd end = chains_->seal(*it, queue);
      if (o_.on_run_done) o_.on_run_done(it->item_id);
      queue.finish(it->item_id, it->current()->attempt, end);
      log::Event ev;
      ev.level = end.status == "success" ? log::Level::info : log::Level::warn;
      ev.correlation_kind = "queue";
      ev.correlation_id = it->item_id;
      ev.run_id = it->item_id;
      ev.component = "scheduler";
      ev.message = "chain " + it->item_id + " sealed " + end.status + ": " + end.reason;
      log::emit(ev);
      continue;
    }
    Launch l;
    l.child.item_id = it->item_id;
    l.child.attempt = it->current()->attempt;
    l.child.run_id = it->current()->run_id;
    l.command = command_of(*it);
    if (!it->current()->locks.empty()) {
      l.child.lock_ttl_ms = queue::lock_ttl_ms(*it, claim.lock_ttl_ms);
      l.child.locks_expire_ms = std::max<int64_t>(1, core::parse_iso_ms(it->current()->lock_expires_at));
    }
    l.repo = it->repo;
    launches.push_back(std::move(l));
  }

  for (auto& l : launches) {
    pid_t pid = spawn(l.child, l.command, l.repo);
    if (pid > 0 && exits_) exits_->add(pid);
    if (pid < 0) {
      std::string why = std::string("could not start cp-host run: ") + std::strerror(errno);
      queue.finish(l.child.item_id, l.child.attempt, {"error", why, ""});
      std::lock_guard<std::mutex> lk(mu_);
      ++stats_.spawn_failures;
      continue;
    }
    l.child.pid = pid;
    children_[pid] = l.child;
    if (o_.mirror) o_.mirror->track(l.child.run_id, l.child.item_id, l.child.attempt);
    log::Event ev;
    ev.correlation_kind = "queue";
    ev.correlation_id = l.child.item_id;
    ev.run_id = l.child.run_id;
    ev.component = "scheduler";
    ev.message = "started attempt " + std::to_string(l.child.attempt) + " of " + l.child.item_id;
    ev.fields = {{"pid", static_cast<long>(pid)}, {"attempt", l.child.attempt}};
    log::emit(ev);
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.started_total;
    stats_.running = static_cast<int>(children_.size());
  }
}

void Scheduler::fence_and_requeue(const queue::QueueState& st, int64_t now) {
  for (auto& [pid, c] : children_) {
    if (c.fenced) continue;
    const QueueItem* it = st.find(c.item_id);
    const queue::Attempt* a = it ? it->current() : nullptr;
    if (it && it->active() && a && a->attempt == c.attempt) continue;
    // The queue gave the item to another attempt (this node's lease lapsed while it was paused or cut
    // off): the run is stopped, and whatever it does from here is not this item's outcome.
    ::kill(pid, SIGTERM);
    c.fenced = true;
    c.term_sent = true;
  }
  if (!o_.registry || !o_.registry->shared() || now < next_lease_ms_) return;
  next_lease_ms_ = now + std::clamp<int64_t>(o_.lease_ttl.count() / 4, 100, 1000);
  std::set<std::string> lost = o_.registry->lost();
  if (lost.empty()) return;
  for (const auto& [id, it] : st.items()) {
    if (!it.active() || !lost.count(it.current()->worker)) continue;
    const std::string why =
        "worker " + it.current()->worker + " lost its lease (no heartbeat within its TTL)";
    queue::FinishOutcome r = q_.backend().requeue_lost(id, it.current()->attempt, why);
    if (r.change != queue::Change::applied) continue;
    log::Event ev;
    ev.level = log::Level::warn;
    ev.correlation_kind = "queue";
    ev.correlation_id = id;
    ev.run_id = it.current()->run_id;
    ev.component = "scheduler";
    ev.message = "attempt " + std::to_string(it.current()->attempt) + " of " + id + " ended: " + why +
                 (r.retried ? "; queued again" : "");
    log::emit(ev);
  }
}

pid_t Scheduler::spawn(const Child& c, const std::vector<std::string>& command, const std::string& repo) {
  fs::path logs = core::queue_logs_dir(o_.root);
  std::error_code ec;
  fs::create_directories(logs, ec);
  std::string log = attempt_log(o_.root, c.item_id, c.attempt).string();
  std::vector<std::string> args{o_.cp_host.string()};
  args.insert(args.end(), command.begin(), command.end());
  args.insert(args.end(),
              {"--repo", repo, "--root", o_.root.string(), "--plugins", o_.plugins_dir.string(), "--run-id",
               c.run_id, "--queue-item", c.item_id, "--attempt", std::to_string(c.attempt), "--quiet"});
  for (const auto& h : o_.hidden) args.insert(args.end(), {"--hide", h.string()});
  // The run signs its seal with this server's host key (whatever --key-dir or environment chose it).
  try {
    args.insert(args.end(), {"--key-dir", store::key_dir().string()});
  } catch (const store::KeyError&) {
    // No folder can be named: the run itself reports that and fails before anything runs.
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The run does not get the store: its seal releases path locks only in a JSONL queue, and this node
  // ends the attempt (which releases them) in a shared one. A process of the run that could read its
  // ancestors' environment finds no credentials there.
  std::vector<std::string> env = plugin::environment_without_store_secrets();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (logfd < 0) return -1;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(logfd, 1);
    ::dup2(logfd, 2);
    // SIGINT and SIGTERM stay blocked across exec until `cp-host run` has its handlers: a cancel that
    // comes while the run is still starting is then held and turned into a cancelled run, never a death
    // by the signal (run_command.cpp unblocks them once its handlers are in place).
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    ::sigprocmask(SIG_SETMASK, &stop, nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int saved = errno;
  ::close(logfd);
  if (devnull >= 0) ::close(devnull);
  errno = saved;
  return pid;
}

}  // namespace cp::serve
