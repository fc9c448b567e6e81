// `cp-host mcp`'s write tools: submit a contract, cancel a queue item, approve or reject a run. They are
// served only with --allow-writes, and every call first checks the server's token against the token file
// again (mcp_writer), with the role serve requires for the same route (serve/auth.hpp); the token holder is
// recorded as who acted. See docs/mcp.md.
#include "cli/mcp_tools.hpp"
#include "cli/shared_answers.hpp"
#include "contract/validation.hpp"
#include "control/actor.hpp"
#include "control/approvals.hpp"
#include "core/json_file.hpp"
#include "queue/queue_service.hpp"
#include "store/bundle.hpp"

#include <cstdint>
#include <system_error>

namespace cp::cli {

namespace fs = std::filesystem;
using nlohmann::json;

// The holder of the server's token now: the token file is read again for every write, so a token revoked
// with `cp-host tokens revoke` stops writing at once. Empty with why when `needs` is not met.
std::optional<serve::Principal> mcp_writer(const McpContext& c, const char* tool, serve::Role needs,
                                           std::string& why) {
  if (!c.opts.allow_writes) {
    why = std::string(tool) +
          " is a write tool and this server was started without --allow-writes; start it as `cp-host mcp "
          "--allow-writes --tokens FILE` with an operator or admin token (CP_HOST_TOKEN or --token-file)";
    return std::nullopt;
  }
  serve::TokenStore tokens;
  try {
    tokens = serve::TokenStore::load(c.opts.tokens_file);
  } catch (const std::exception& e) {
    why = std::string("the token file cannot be read: ") + e.what();
    return std::nullopt;
  }
  auto who = tokens.authenticate(c.token);
  if (!who) {
    why = "the server's token is no longer in " + c.opts.tokens_file + " (revoked?)";
    return std::nullopt;
  }
  if (who->role < needs) {
    why = std::string(tool) + " needs an " + serve::role_name(needs) +
          " or admin token; the server's token '" + who->token_id + "' has role " +
          serve::role_name(who->role) + " (make one with `cp-host tokens add --role operator`)";
    return std::nullopt;
  }
  return who;
}

namespace {

// The same bound `cp-host queue submit` puts on a contract file.
constexpr uintmax_t kMcpMaxContractBytes = uintmax_t{16} << 20;

// The contract of a submission and how diagnostics name it; false with why.
bool mcp_submitted_contract(const McpContext& c, const json& a, queue::SubmitRequest& r, std::string& why) {
  if (!mcp_one_contract(a, why)) return false;
  if (a.contains("contract")) {
    r.contract = a["contract"];
    r.source = "(inline contract)";
    return true;
  }
  const std::string rel = mcp_text(a, "path");
  auto file = mcp_file_in_root(c, rel, why);
  if (!file) return false;
  std::error_code ec;
  if (fs::file_size(*file, ec) > kMcpMaxContractBytes || ec) {
    why = rel + " is over 16 MiB (or cannot be sized); refused unread";
    return false;
  }
  r.contract = core::read_json_file(*file, r.source_text);
  if (!r.contract.is_object()) {
    why = rel + " is not a JSON object; see validate_contract";
    return false;
  }
  r.source = rel;
  return true;
}

// The repository a submission runs on: the server's --repo, or one the client names inside an --allow-repo
// folder (as serve's read_repo allows it).
std::optional<fs::path> mcp_repo(const McpContext& c, const json& a, std::string& why) {
  if (!a.contains("repo")) return fs::path(c.opts.repo);
  std::error_code ec;
  const fs::path repo = fs::weakly_canonical(fs::absolute(mcp_text(a, "repo")), ec);
  for (const auto& allowed : c.opts.allow_repos) {
    const fs::path base = fs::weakly_canonical(fs::absolute(allowed), ec);
    const fs::path rel = repo.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return repo;
  }
  why = "repo " + mcp_cut(repo.string()) +
        " is not one this server may run on; start it with --allow-repo naming it (or a folder above it), "
        "or leave repo out for the server's --repo";
  return std::nullopt;
}

McpAnswer mcp_submit_contract(McpContext& c, const json& a) {
  std::string why;
  auto who = mcp_writer(c, "submit_contract", serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  queue::SubmitRequest r;
  if (!mcp_submitted_contract(c, a, r, why)) return mcp_fail(why);
  auto repo = mcp_repo(c, a, why);
  if (!repo) return mcp_fail(why);
  r.repo = *repo;
  if (a.contains("priority")) r.priority = static_cast<int>(mcp_number(a, "priority", 5));
  for (const auto& d : a.value("depends_on", json::array()))
    if (d.is_string()) r.depends_on.push_back(d.get<std::string>());
  r.run_after = mcp_text(a, "run_after");
  r.deadline = mcp_text(a, "deadline");
  r.start_by = mcp_text(a, "start_by");
  r.submitted_by = who->token_id;
  const plugin::Registry* reg = mcp_registry(c);
  if (!reg) return mcp_fail("the plugins cannot be loaded, so the contract cannot be checked (see stderr)");
  queue::QueueService svc(c.g.root, reg);
  auto res = svc.submit(r);
  if (res.outcome != queue::SubmitResult::Outcome::queued) {
    std::string text = res.error + "; nothing was queued";
    for (const auto& d : res.diagnostics) text += "\n" + contract::diagnostic_line(d);
    return mcp_fail(text,
                    {{"error", res.error}, {"diagnostics", contract::diagnostics_json(res.diagnostics)}});
  }
  return mcp_ok(res.item);
}

McpAnswer mcp_cancel_queue_item(McpContext& c, const json& a) {
  std::string why;
  auto who = mcp_writer(c, "cancel_queue_item", serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  const std::string item = mcp_text(a, "item_id");
  std::string reason = mcp_text(a, "reason");
  if (reason.empty()) reason = "cancelled through MCP";
  queue::QueueService svc(c.g.root, nullptr);
  switch (svc.cancel(item, who->token_id, reason)) {
    case queue::CancelOutcome::cancelled:
      return mcp_ok({{"item_id", item}, {"outcome", "cancelled"}});
    case queue::CancelOutcome::requested:
      return mcp_ok({{"item_id", item}, {"outcome", "cancel_requested"}});
    case queue::CancelOutcome::already_ended:
      return mcp_fail("item " + item + " has already ended");
    case queue::CancelOutcome::not_found:
      break;
  }
  return mcp_fail("no queue item '" + mcp_cut(item) + "' (see queue_list)");
}

// A decision as `approve --json` prints it. control::decide refuses, before reading anything, a decision
// asked from inside a run's process tree (from_run, exit 11): an agent running under cp-host never decides
// about a run, through this server or otherwise.
McpAnswer mcp_decide(McpContext& c, const json& a, control::Decision decision, const char* tool) {
  std::string why;
  auto who = mcp_writer(c, tool, serve::Role::operator_, why);
  if (!who) return mcp_fail(why);
  const std::string id = mcp_text(a, "run_id");
  if (!store::valid_run_id(id)) return mcp_fail("'" + mcp_cut(id) + "' is not a run id (see approvals_list)");
  auto r = control::decide(c.g.root, id, decision,
                           control::token_holder(who->token_id, "human", mcp_text(a, "reason")));
  const int code = decision_exit(r.outcome);
  json j{{"outcome", control::outcome_name(r.outcome)}, {"message", r.message}, {"exit_code", code}};
  if (r.manifest.is_object()) {
    j["status"] = r.manifest.value("status", "");
    if (r.manifest.contains("verdict")) j["verdict"] = r.manifest["verdict"];
    if (r.manifest.contains("approval")) j["approval"] = r.manifest["approval"];
  }
  if (code != kOk) return mcp_fail(r.message, j);
  return mcp_ok(j);
}

McpAnswer mcp_approve_run(McpContext& c, const json& a) {
  return mcp_decide(c, a, control::Decision::approve, "approve_run");
}

McpAnswer mcp_reject_run(McpContext& c, const json& a) {
  return mcp_decide(c, a, control::Decision::reject, "reject_run");
}

}  // namespace

std::vector<McpTool> mcp_write_tools() {
  using serve::Role;
  const json reason = mcp_string("Why, recorded with the decision", 2000);
  std::vector<McpTool> t;
  json submit = mcp_contract_properties();
  submit["repo"] = mcp_string(
      "The git repository to run on (default: the server's --repo); must lie under "
      "one of the server's --allow-repo folders",
      4096);
  submit["priority"] = mcp_integer("0..9, higher runs first (default: the contract's, else 5)", 0, 9);
  submit["depends_on"] = {{"type", "array"},
                          {"items", mcp_string("A queue item id", 256)},
                          {"maxItems", 64},
                          {"description", "Run only after these queue items ended in success"}};
  submit["run_after"] = mcp_string("Not before this time (ISO-8601 UTC)", 64);
  submit["deadline"] = mcp_string("Should have finished by this time (ISO-8601 UTC)", 64);
  submit["start_by"] = mcp_string("Should have started by this time (ISO-8601 UTC)", 64);
  t.push_back(
      {"submit_contract",
       "Check a task contract and queue it for `cp-host serve` to run (as `cp-host queue submit "
       "--json`): the queued item {item_id, state, task_id, priority, ...}. Nothing is queued when the "
       "contract is invalid.",
       mcp_schema(submit, {}), Role::operator_, mcp_submit_contract});
  t.push_back(
      {"cancel_queue_item",
       "Cancel a queue item: a waiting one ends at once, a running one is stopped by serve: {item_id, "
       "outcome: cancelled | cancel_requested}.",
       mcp_schema({{"item_id", mcp_string("A queue item id, as queue_list gives it", 256)},
                   {"reason", mcp_string("Recorded with the cancel", 2000)}},
                  {"item_id"}),
       Role::operator_, mcp_cancel_queue_item});
  t.push_back({"approve_run",
               "Approve a run awaiting approval (as `cp-host approve RUN --json`): {outcome, message, "
               "exit_code, status, verdict, approval}. The token holder is recorded as the approver.",
               mcp_schema({{"run_id", mcp_run_id_schema()}, {"reason", reason}}, {"run_id"}), Role::operator_,
               mcp_approve_run});
  t.push_back({"reject_run",
               "Reject a run awaiting approval: it seals as denied (as `cp-host reject RUN --json`).",
               mcp_schema({{"run_id", mcp_run_id_schema()}, {"reason", reason}}, {"run_id"}), Role::operator_,
               mcp_reject_run});
  return t;
}

}  // namespace cp::cli
