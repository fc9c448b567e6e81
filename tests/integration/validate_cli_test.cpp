// `cp-host validate` as CI runs it: real binary, real files, exit codes, the three output formats.
#include "unit/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

using cp::test::Ran;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The shipped plugins, and the browser runner the shipped browser contract names (a test stand-in while the
// tree does not build it).
Ran host_with_plugins(std::vector<std::string> args, const fs::path& cwd = {}) {
  std::vector<std::string> argv{CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR};
  argv.insert(argv.end(), args.begin(), args.end());
  return cp::test::run(argv, cwd);
}

// A copy of the shipped packs and policies to break things in.
struct Project {
  cp::test::TempDir dir;
  Project() {
    for (const char* d : {"packs", "policies", "contracts"})
      fs::copy(fs::path(CP_SOURCE_DIR) / d, dir / d, fs::copy_options::recursive);
  }
  json read(const std::string& rel) const { return json::parse(cp::test::read_file(dir / rel)); }
  void write(const std::string& rel, const json& j) const { cp::test::write_file(dir / rel, j.dump(2)); }
  Ran validate(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--root", dir.path().string(), "validate", "--format", "json"};
    a.insert(a.end(), extra.begin(), extra.end());
    return host_with_plugins(a, dir.path());
  }
};

std::set<std::pair<std::string, std::string>> pointer_rules(const Ran& r) {
  std::set<std::pair<std::string, std::string>> out;
  json j = json::parse(r.out);
  for (const auto& d : j["diagnostics"]) out.emplace(d["pointer"], d["rule"]);
  return out;
}

}  // namespace

TEST(ValidateCli, ShippedContractsPacksAndPoliciesAreValid) {
  auto r = host_with_plugins({"--root", CP_SOURCE_DIR, "validate"}, CP_SOURCE_DIR);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok: "), std::string::npos);
}

// One valid and one invalid document for every schema cp-host ships, with the pointer and rule the
// invalid one must be reported at.
struct SchemaCase {
  const char* schema;
  const char* valid;
  const char* invalid;
  const char* pointer;
  const char* rule;
};

class ValidateEverySchema : public ::testing::TestWithParam<SchemaCase> {};

TEST_P(ValidateEverySchema, AcceptsValidAndPinpointsInvalid) {
  const auto& c = GetParam();
  cp::test::TempDir d;
  cp::test::write_file(d / "valid.json", c.valid);
  cp::test::write_file(d / "invalid.json", c.invalid);
  auto ok = host_with_plugins({"validate", "--no-plugin-checks", "--schema", c.schema, "--format", "json",
                               (d / "valid.json").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  auto bad = host_with_plugins({"validate", "--no-plugin-checks", "--schema", c.schema, "--format", "json",
                                (d / "invalid.json").string()});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  auto found = pointer_rules(bad);
  EXPECT_TRUE(found.count({c.pointer, c.rule}))
      << c.schema << ": wanted " << c.pointer << " " << c.rule << " in " << bad.out;
}

const char* kContract =
    R"({"task_id":"t1","task_type":"code_change","owner_agent":{"role":"PM","agent_id":"a"},
  "assigned_agent":{"role":"WORKER","agent_id":"b"},"inputs":{"spec":"do it"},"allowed_paths":["src/"],
  "acceptance_tests":[{"name":"t","cmd":"true"}],"rollback":{"strategy":"none","baseline_ref":"HEAD"},
  "runtime_options":{"runner":"tool"}})";

INSTANTIATE_TEST_SUITE_P(
    Schemas, ValidateEverySchema,
    ::testing::Values(SchemaCase{"task_contract", kContract,
                                 R"({"task_id":"t1","task_type":"code_change","owner_agent":{"role":"PM","agent_id":"a"},
  "assigned_agent":{"role":"WORKER","agent_id":"b"},"inputs":{"spec":"do it"},"allowed_paths":["src/"],
  "acceptance_tests":[{"name":"t","cmd":"true","timeout_sec":0}],"rollback":{"strategy":"none","baseline_ref":"HEAD"},
  "runtime_options":{"runner":"tool"}})",
                                 "/acceptance_tests/0/timeout_sec", "minimum"},
                      SchemaCase{
                          "pack",
                          R"({"pack_id":"p","governance_level":"low","gates":[{"plugin":"diff_scope"}]})",
                          R"({"pack_id":"p","governance_level":"extreme","gates":[]})", "/governance_level",
                          "enum"},
                      SchemaCase{"command_allowlist",
                                 R"({"policy":"command_allowlist","entries":[{"id":"t","program":"true"}]})",
                                 R"({"policy":"command_allowlist","entries":[{"id":"t"}]})",
                                 "/entries/0/program", "required"},
                      SchemaCase{
                          "forbidden_actions",
                          R"({"policy":"forbidden_actions","actions":[{"id":"a","pattern":"x","reason":"r"}]})",
                          R"({"policy":"forbidden_actions","actions":[{"id":"A b","pattern":"x","reason":"r"}]})",
                          "/actions/0/id", "pattern"},
                      SchemaCase{"role_registry",
                                 R"({"policy":"role_registry","roles":[{"role":"PM","description":"d"}]})",
                                 R"({"policy":"role_registry","roles":[]})", "/roles", "minItems"},
                      SchemaCase{
                          "role_config",
                          R"({"policy":"role_config","roles":{"WORKER":{"allowed_runners":["tool"]}}})",
                          R"({"policy":"role_config","roles":{"WORKER":{"prompt_ref":"/etc/passwd"}}})",
                          "/roles/WORKER/prompt_ref", "pattern"},
                      SchemaCase{"retention_policy",
                                 R"({"policy":"retention_policy","lanes":{"runs":{"ttl_days":3}}})",
                                 R"({"policy":"retention_policy","lanes":{"runs":{"ttl_days":-1}}})",
                                 "/lanes/runs/ttl_days", "minimum"},
                      SchemaCase{"plugin_config",
                                 R"({"policy":"plugins","plugins":{"x":{"isolation":"isolated"}}})",
                                 R"({"policy":"plugins","plugins":{"x":{"isolation":"sandboxed"}}})",
                                 "/plugins/x/isolation", "enum"},
                      SchemaCase{
                          "run_manifest",
                          R"({"schema_version":1,"run_id":"r1","task_id":"t","contract_sha256":"0000000000000000000000000000000000000000000000000000000000000000","runner":"tool","status":"sealed","verdict":"success","created_at":"2026-01-01T00:00:00Z","plugins":[]})",
                          R"({"schema_version":1,"run_id":"r1","task_id":"t","contract_sha256":"abc","runner":"tool","status":"sealed","created_at":"x","plugins":[]})",
                          "/contract_sha256", "pattern"},
                      SchemaCase{
                          "event",
                          R"({"seq":1,"ts":"2026-01-01T00:00:00.000Z","run_id":"r","type":"PLUGIN_NOTE","payload":{},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111"})",
                          R"({"seq":1,"ts":"2026-01-01T00:00:00.000Z","run_id":"r","type":"run_started","payload":{},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111"})",
                          "/type", "pattern"},
                      SchemaCase{
                          "runner_result",
                          R"({"status":"completed","reason":"ok","commands":[{"command":"true","status":"completed"}]})",
                          R"({"status":"done","reason":"ok","commands":[]})", "/status", "enum"},
                      SchemaCase{
                          "runner_input",
                          R"({"run_id":"r","contract":{},"policies":{},"workspace":"/w","bundle_dir":"/b"})",
                          R"({"run_id":"r","contract":{},"policies":{},"workspace":"/w"})", "/bundle_dir",
                          "required"},
                      SchemaCase{
                          "gate_input",
                          R"({"run_id":"r","contract":{},"policies":{},"workspace":"/w","bundle_dir":"/b","changes":[{"status":"added","path":"a"}],"commands":[],"runner":{"status":"completed"}})",
                          R"({"run_id":"r","contract":{},"policies":{},"workspace":"/w","bundle_dir":"/b","changes":[{"status":"touched","path":"a"}],"commands":[],"runner":{"status":"completed"}})",
                          "/changes/0/status", "enum"},
                      SchemaCase{
                          "compiled_contract",
                          R"({"schema_version":1,"contract":{"task_id":"t","runtime_options":{},"rollback":{}},"pack":{"pack_id":"low","governance_level":"low","requires_approval":false},"gates":[],"policies":{"command_allowlist":{},"forbidden_actions":{},"role_registry":{}}})",
                          R"({"schema_version":1,"contract":{"task_id":"t","runtime_options":{},"rollback":{}},"pack":{"pack_id":"low","governance_level":"low","requires_approval":false},"gates":[{"plugin":"x"}],"policies":{"command_allowlist":{},"forbidden_actions":{},"role_registry":{}}})",
                          "/gates/0/required", "required"},
                      SchemaCase{
                          "task_result",
                          R"({"schema_version":1,"run_id":"r","task_id":"t","runner":"tool","status":"failed","commands":[],"changes":[]})",
                          R"({"schema_version":1,"run_id":"r","task_id":"t","runner":"tool","status":"failed","commands":[],"changes":[{"status":"added"}]})",
                          "/changes/0/path", "required"},
                      SchemaCase{
                          "proof_pack",
                          R"({"schema_version":1,"kind":"proof_pack","run_id":"r","task_id":"t","verdict":"success","contract_sha256":"0000000000000000000000000000000000000000000000000000000000000000","baseline_commit":"c","diff_sha256":"0000000000000000000000000000000000000000000000000000000000000000","changes":[],"gates":[],"created_at":"x"})",
                          R"({"schema_version":1,"kind":"proof_pack","run_id":"r","task_id":"t","verdict":"failure","contract_sha256":"0000000000000000000000000000000000000000000000000000000000000000","baseline_commit":"c","diff_sha256":"0000000000000000000000000000000000000000000000000000000000000000","changes":[],"gates":[],"created_at":"x"})",
                          "/verdict", "const"},
                      SchemaCase{
                          "incident_pack",
                          R"({"schema_version":1,"kind":"incident_pack","run_id":"r","task_id":"t","verdict":"denied","reason":"x","failed_gates":[],"runner":{"status":"completed"},"log_tails":{},"suggested_next_action":"fix","created_at":"x"})",
                          R"({"schema_version":1,"kind":"incident_pack","run_id":"r","task_id":"t","verdict":"denied","reason":"x","failed_gates":[],"runner":{"status":"completed"},"log_tails":{},"created_at":"x"})",
                          "/suggested_next_action", "required"},
                      SchemaCase{"approval_pack", R"({"schema_version":1,"kind":"approval_pack","run_id":"r","task_id":"t","pack":"high","verdict_if_approved":"success","reason":"x","changes":[],"gates":[],"created_at":"x"})", R"({"schema_version":1,"kind":"approval_pack","run_id":"r","task_id":"t","pack":"high","verdict_if_approved":"success","reason":"x","changes":[],"gates":[{"verdict":"pass"}],"created_at":"x"})",
                                 "/gates/0/gate_id", "required"},
                      SchemaCase{"gate_verdict", R"({"verdict":"pass","summary":"ok"})",
                                 R"({"verdict":"maybe","summary":"?"})", "/verdict", "enum"},
                      SchemaCase{
                          "queue_item",
                          R"({"op":"enqueued","item_id":"q1","ts":"2026-01-01T00:00:00Z","contract_path":"c.json","task_id":"t","pack":"low","repo":"/r"})",
                          R"({"op":"finished","item_id":"q1","ts":"2026-01-01T00:00:00Z","attempt":1})",
                          "/status", "required"},
                      SchemaCase{
                          "api_tokens",
                          R"({"schema_version":1,"tokens":[{"id":"ci","role":"viewer","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]})",
                          R"({"schema_version":1,"tokens":[{"id":"ci","role":"root","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]})",
                          "/tokens/0/role", "enum"},
                      SchemaCase{
                          "task_chain",
                          R"({"schema_version":1,"chain_id":"c","steps":[{"step_id":"a","kind":"task","role":"PM","contract":"a.json"},{"step_id":"h","kind":"handoff","from_role":"PM","to_role":"WORKER","summary":"s"},{"step_id":"r","kind":"review","role":"REVIEWER","reviewers":["r.json"],"quorum":1}]})",
                          R"({"schema_version":1,"chain_id":"c","steps":[{"step_id":"r","kind":"review","role":"REVIEWER","reviewers":[],"quorum":1}]})",
                          "/steps/0/reviewers", "minItems"},
                      SchemaCase{
                          "chain_report",
                          R"({"schema_version":1,"kind":"chain_report","chain_id":"c","run_id":"r","verdict":"success","reason":"x","steps":[],"handoffs":[],"lifecycle":{"pm_loop":[],"planned_roles":[],"observed_roles":[],"closed":true,"quorum":[],"step_verdicts":{}},"created_at":"x"})",
                          R"({"schema_version":1,"kind":"chain_report","chain_id":"c","run_id":"r","verdict":"success","reason":"x","steps":[],"handoffs":[],"lifecycle":{"pm_loop":[],"planned_roles":[],"observed_roles":[],"quorum":[],"step_verdicts":{}},"created_at":"x"})",
                          "/lifecycle/closed", "required"},
                      SchemaCase{
                          "run_compare_report",
                          R"({"schema_version":1,"kind":"run_compare_report","generated_at":"x","a":{"run_id":"a","task_id":"t","status":"sealed","contract_sha256":"s"},"b":{"run_id":"b","task_id":"t","status":"sealed","contract_sha256":"s"},"same_contract":true,"verdict":{"a":"success","b":"success","same":true},"gates":[],"changed_files":{"a":0,"b":0,"only_a":[],"only_b":[],"both":[]},"diff_stats":{"a":{"files":0,"insertions":0,"deletions":0,"patch_bytes":0},"b":{"files":0,"insertions":0,"deletions":0,"patch_bytes":0},"same_patch":false},"usage":{"a":{},"b":{}},"event_types":[{"type":"RUN_SEALED","a":1,"b":1}]})",
                          R"({"schema_version":1,"kind":"run_compare_report","generated_at":"x","a":{"run_id":"a","task_id":"t","status":"sealed","contract_sha256":"s"},"b":{"run_id":"b","task_id":"t","status":"sealed","contract_sha256":"s"},"same_contract":true,"verdict":{"a":"success","b":"success","same":true},"gates":[],"changed_files":{"a":0,"b":0,"only_a":[],"only_b":[],"both":[]},"diff_stats":{"a":{"files":0,"insertions":0,"deletions":0,"patch_bytes":0},"b":{"files":0,"insertions":0,"deletions":0,"patch_bytes":0},"same_patch":false},"usage":{"a":{},"b":{}},"event_types":[{"type":"RUN_SEALED","a":-1,"b":1}]})",
                          "/event_types/0/a", "minimum"},
                      SchemaCase{"execution_plan_report",
                                 R"({"schema_version":1,"kind":"execution_plan_report","advisory":true,"created_at":"x","task_id":"t","contract_sha256":"0000000000000000000000000000000000000000000000000000000000000000","runner":"tool","pack":{"pack_id":"low","governance_level":"low","requires_approval":false},"gates":[],"predicted_outputs":{"bundle":[],"workspace":[],"terminal_status":"sealed"},"runtime_capability_summary":{},"would_run":true,"role_contract_summary":{"task_id":"t","role_binding_summary":{"source":"task_contract","authority":"advisory","owner":{"role":"PM","agent_id":"a","registered":true},"assigned":{"role":"WORKER","agent_id":"b","registered":true}}}})",
                                 R"({"schema_version":1,"kind":"execution_plan_report","advisory":false,"created_at":"x","task_id":"t","contract_sha256":"0000000000000000000000000000000000000000000000000000000000000000","runner":"tool","pack":{"pack_id":"low","governance_level":"low","requires_approval":false},"gates":[],"predicted_outputs":{"bundle":[],"workspace":[],"terminal_status":"sealed"},"runtime_capability_summary":{},"would_run":true,"role_contract_summary":{"task_id":"t","role_binding_summary":{"source":"task_contract","authority":"advisory","owner":{"role":"PM","agent_id":"a","registered":true},"assigned":{"role":"WORKER","agent_id":"b","registered":true}}}})",
                                 "/advisory", "const"},
                      SchemaCase{
                          "bundle_seal",
                          R"({"schema_version":1,"kind":"bundle_seal","run_id":"r","algorithm":"ed25519","key_id":"0123456789abcdef0123456789abcdef","public_key":"x","preceding":[],"event":{"seq":3,"type":"RUN_SEALED","payload":{},"hash":"h"},"files":[["contract.json","0000000000000000000000000000000000000000000000000000000000000000",12]],"signature":"s"})",
                          R"({"schema_version":1,"kind":"bundle_seal","run_id":"r","algorithm":"ed25519","key_id":"0123456789abcdef0123456789abcdef","public_key":"x","preceding":[],"event":{"seq":3,"type":"RUN_SEALED","payload":{},"hash":"h"},"files":[["contract.json","0000000000000000000000000000000000000000000000000000000000000000",-1]],"signature":"s"})",
                          "/files/0/2", "minimum"},
                      SchemaCase{
                          "workflow_case",
                          R"({"schema_version":1,"kind":"workflow_case","workflow_id":"wf","updated_at":"x","status":"sealed","latest_run_id":"r","latest_created_at":"x","run_count":1,"runs":[{"run_id":"r","task_id":"t","status":"sealed","created_at":"x"}],"workflow_case_read_model":{"workflow_id":"wf","latest_run_id":"r","status":"sealed","role_binding_summary":{},"source":"s"}})",
                          R"({"schema_version":1,"kind":"workflow_case","workflow_id":"../wf","updated_at":"x","status":"sealed","latest_run_id":"r","latest_created_at":"x","run_count":1,"runs":[{"run_id":"r","task_id":"t","status":"sealed","created_at":"x"}],"workflow_case_read_model":{"workflow_id":"wf","latest_run_id":"r","status":"sealed","role_binding_summary":{},"source":"s"}})",
                          "/workflow_id", "pattern"},
                      SchemaCase{"changed_files", R"([{"status":"added","path":"a.txt"}])",
                                 R"([{"status":"exploded","path":"a.txt"}])", "/0/status", "enum"},
                      SchemaCase{"probe_result", R"({"status":"ok","capabilities":{},"ttl_seconds":5})",
                                 R"({"status":"ok","capabilities":{},"ttl_seconds":-5})", "/ttl_seconds",
                                 "minimum"}),
    [](const auto& info) { return std::string(info.param.schema); });

// The browser runner's own documents.
INSTANTIATE_TEST_SUITE_P(
    BrowserSchemas, ValidateEverySchema,
    ::testing::Values(
        SchemaCase{
            "browser_policy",
            R"({"policy":"browser_policy","version":1,"allowed_origins":["http://127.0.0.1:*","https://*.example.com:8443"],"allow_downloads":false})",
            R"({"policy":"browser_policy","allowed_origins":["http://127.0.0.1:*","file:///etc"]})",
            "/allowed_origins/1", "pattern"},
        SchemaCase{
            "browser_tasks",
            R"({"tasks":[{"id":"a","url":"http://127.0.0.1:8000/","script":[{"action":"click","selector":"#go"}]}]})",
            R"({"tasks":[{"id":"a","script":[{"action":"click","selector":"#go"},{"action":"navigate"}]}]})",
            "/tasks/0/script/1/url", "required"},
        SchemaCase{
            "page_brief",
            R"({"schema_version":"page_brief.v1","task":"home","url":"http://127.0.0.1:8000/","title":"T","description":"","headings":[{"level":1,"text":"T"}],"excerpt":"x","link_count":2,"screenshot":"screenshot.png","http_status":200})",
            R"({"schema_version":"page_brief.v1","task":"home","url":"http://127.0.0.1:8000/","title":"T","description":"","headings":[{"level":7,"text":"T"}],"excerpt":"x","link_count":2,"screenshot":"screenshot.png","http_status":200})",
            "/headings/0/level", "maximum"}),
    [](const auto& info) { return std::string(info.param.schema); });

TEST(ValidateCli, KnownEventTypesHaveTheirPayloadChecked) {
  cp::test::TempDir d;
  cp::test::write_file(
      d / "valid.json",
      R"({"seq":1,"ts":"2026-01-01T00:00:00Z","run_id":"r","type":"GATE_FAILED","payload":{"gate_id":"g","required":true},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"})");
  cp::test::write_file(
      d / "invalid.json",
      R"({"seq":1,"ts":"2026-01-01T00:00:00Z","run_id":"r","type":"RUN_SEALED","payload":{"status":"sealed","verdict":"maybe","reason":"x"},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"})");
  EXPECT_EQ(host_with_plugins({"validate", "--schema", "event", (d / "valid.json").string()}).exit_code, 0);
  auto bad =
      host_with_plugins({"validate", "--schema", "event", "--format", "json", (d / "invalid.json").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(pointer_rules(bad).count({"/payload/verdict", "enum"})) << bad.out;
}

TEST(ValidateCli, CrossReferencesAreChecked) {
  Project p;
  json c = json::parse(kContract);
  c["runtime_options"]["pack"] = "ultra";
  c["runtime_options"]["runner"] = "codez";
  c["forbidden_actions"] = {"git-push", "nope"};
  c["owner_agent"]["role"] = "CEO";
  p.write("contracts/xref.json", c);
  json pack = p.read("packs/low.json");
  pack["gates"].push_back({{"plugin", "no_such_gate"}});
  pack["gates"].push_back({{"plugin", "tool"}});
  pack["gates"][0]["config"] = {{"always_allowed", "not-an-array"}};
  p.write("packs/low.json", pack);
  json dup = p.read("packs/medium.json");
  p.write("packs/medium-copy.json", dup);

  auto r = p.validate();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto found = pointer_rules(r);
  for (auto want : std::vector<std::pair<std::string, std::string>>{
           {"/runtime_options/pack", "xref:pack"},
           {"/runtime_options/runner", "xref:plugin"},
           {"/forbidden_actions/1", "xref:forbidden_action"},
           {"/owner_agent/role", "xref:role"},
           {"/gates/4/plugin", "xref:plugin"},
           {"/gates/5/plugin", "xref:plugin"},
           {"/gates/0/config/always_allowed", "plugin_config:type"},
           {"/pack_id", "xref:duplicate"}})
    EXPECT_TRUE(found.count(want)) << want.first << " " << want.second << " missing in " << r.out;
  EXPECT_NE(r.out.find("is a runner, not a gate"), std::string::npos);
}

TEST(ValidateCli, PluginConfigPolicyIsCheckedAgainstThePluginsSchema) {
  Project p;
  json pol = p.read("policies/plugins.json");
  pol["plugins"]["toolchain"]["config"]["timeout_ms"] = "fast";
  pol["plugins"]["ghost"] = {{"config", json::object()}};
  p.write("policies/plugins.json", pol);
  auto r = p.validate();
  EXPECT_EQ(r.exit_code, 1);
  auto found = pointer_rules(r);
  EXPECT_TRUE(found.count({"/plugins/toolchain", "xref:plugin"}))
      << r.out;  // refused: config breaks its schema
  EXPECT_TRUE(found.count({"/plugins/ghost", "xref:plugin"})) << r.out;
  EXPECT_NE(r.out.find("timeout_ms"), std::string::npos);
}

TEST(ValidateCli, TextAndGithubFormatsNameFileLinePointerAndRule) {
  cp::test::TempDir d;
  fs::create_directories(d / "contracts");
  json c = json::parse(kContract);
  c["budgets"] = {{"max_turns", "ten"}};
  cp::test::write_file(d / "contracts/c.json", c.dump(2));
  int line = 0;
  {
    std::string text = cp::test::read_file(d / "contracts/c.json");
    std::istringstream in(text);
    std::string l;
    for (int n = 1; std::getline(in, l); ++n)
      if (l.find("\"max_turns\"") != std::string::npos) line = n;
  }
  ASSERT_GT(line, 0);
  auto text = host_with_plugins({"validate", "--no-plugin-checks", "contracts/c.json"}, d.path());
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("contracts/c.json:" + std::to_string(line) + ": error [type] /budgets/max_turns"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("(value: \"ten\")"), std::string::npos);
  EXPECT_NE(text.out.find("expected: type integer"), std::string::npos);

  auto gh = host_with_plugins({"validate", "--no-plugin-checks", "--format", "github", "contracts/c.json"},
                              d.path());
  EXPECT_EQ(gh.exit_code, 1);
  std::string want = "::error file=contracts/c.json,line=" + std::to_string(line) +
                     ",title=cp-host validate%3A type::/budgets/max_turns";
  EXPECT_EQ(gh.out.rfind(want, 0), 0u) << gh.out;
}

TEST(ValidateCli, BrokenJsonNamesTheLine) {
  cp::test::TempDir d;
  cp::test::write_file(d / "contracts/broken.json", "{\n  \"task_id\": \"x\",\n  \"a\": [1,,2]\n}\n");
  auto r = host_with_plugins(
      {"validate", "--no-plugin-checks", "--format", "json", (d / "contracts/broken.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  json j = json::parse(r.out);
  ASSERT_EQ(j["diagnostics"].size(), 1u);
  EXPECT_EQ(j["diagnostics"][0]["rule"], "json");
  EXPECT_EQ(j["diagnostics"][0]["line"], 3);
}

TEST(ValidateCli, UnknownFileKindIsAnErrorNotASkip) {
  cp::test::TempDir d;
  cp::test::write_file(d / "mystery.json", R"({"hello": "world"})");
  auto r = host_with_plugins({"validate", "--no-plugin-checks", (d / "mystery.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("cannot tell which schema applies"), std::string::npos);
}

TEST(ValidateCli, UsageErrorsExitTwo) {
  EXPECT_EQ(host_with_plugins({"validate", "/no/such/path.json"}).exit_code, 2);
  EXPECT_EQ(host_with_plugins({"validate", "--format", "yaml"}).exit_code, 2);
  EXPECT_EQ(host_with_plugins({"validate", "--schema", "nope", CP_SOURCE_DIR "/contracts"}).exit_code, 2);
  cp::test::TempDir empty;
  EXPECT_EQ(host_with_plugins({"--root", empty.path().string(), "validate"}).exit_code, 2);
  auto r = cp::test::run({CP_HOST_BIN, "--plugins", "/no/plugins", "--root", CP_SOURCE_DIR, "validate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--no-plugin-checks"), std::string::npos);
}

TEST(ValidateCli, ManyFilesAreAllChecked) {
  cp::test::TempDir d;
  json c = json::parse(kContract);
  for (int i = 0; i < 300; ++i) {
    c["task_id"] = "t" + std::to_string(i);
    if (i % 50 == 7)
      c["task_type"] = "bogus";
    else
      c["task_type"] = "code_change";
    cp::test::write_file(d / ("contracts/c" + std::to_string(i) + ".json"), c.dump());
  }
  auto r = host_with_plugins(
      {"validate", "--no-plugin-checks", "--format", "json", "-j", "2", (d / "contracts").string()});
  EXPECT_EQ(r.exit_code, 1);
  json j = json::parse(r.out);
  EXPECT_EQ(j["files_checked"], 300);
  EXPECT_EQ(j["files_invalid"], 6);
}

TEST(ValidateCli, HostileNestingIsRefusedWithoutCrashing) {
  cp::test::TempDir d;
  std::string deep = "{\"task_id\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  cp::test::write_file(d / "deep.json", deep);
  auto r = host_with_plugins({"validate", "--no-plugin-checks", "--schema", "task_contract", "--format",
                              "json", (d / "deep.json").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // checked and invalid, not a crash (139)
  EXPECT_NE(r.out.find("nested more than 256 levels"), std::string::npos) << r.out;
}

TEST(ValidateCli, OversizedFileIsRefusedUnread) {
  cp::test::TempDir d;
  {
    std::ofstream big(d / "big.json", std::ios::binary);
    big << "{\"task_id\":\"";
    big << std::string(17u << 20, 'x');
    big << "\"}";
  }
  auto r = host_with_plugins({"validate", "--no-plugin-checks", "--schema", "task_contract", "--format",
                              "json", (d / "big.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("refused unread (limit 16 MiB)"), std::string::npos) << r.out;
}

// A number beyond a double is not a syntax error to nlohmann but an out_of_range exception; on a worker
// thread it used to end the process (exit 134) with no report for any file.
TEST(ValidateCli, NumberTooLargeIsThatFilesErrorAndTheOthersAreStillReported) {
  Project p;
  cp::test::write_file(p.dir / "contracts/huge.json",
                       "{\n  \"schema_version\": 1,\n  \"task_id\": 1e400\n}\n");
  json pack = p.read("packs/low.json");
  pack["governance_level"] = 7;
  p.write("packs/low.json", pack);
  auto r = p.validate({"-j", "4"});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out);
  bool huge = false, other = false;
  for (const auto& d : j["diagnostics"]) {
    std::string file = d["file"];
    if (file.find("huge.json") != std::string::npos) {
      huge = true;
      EXPECT_EQ(d["rule"], "json");
      EXPECT_EQ(d["line"], 3) << d.dump();
      EXPECT_NE(d["message"].get<std::string>().find("1e400"), std::string::npos) << d.dump();
    }
    if (file.find("low.json") != std::string::npos && d["pointer"] == "/governance_level") other = true;
  }
  EXPECT_TRUE(huge) << r.out;
  EXPECT_TRUE(other) << r.out;
  EXPECT_EQ(j["files_invalid"], 2) << r.out;
}

TEST(ValidateCli, SymlinkLoopInAFolderIsThatFilesError) {
  Project p;
  fs::create_symlink("loop.json", p.dir / "contracts/loop.json");
  fs::create_symlink("self", p.dir / "contracts/self");
  auto r = p.validate();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // not an internal error (3)
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out << r.err;
  ASSERT_EQ(j["diagnostics"].size(), 1u) << r.out;
  const json& d = j["diagnostics"][0];
  EXPECT_NE(d["file"].get<std::string>().find("loop.json"), std::string::npos) << d.dump();
  EXPECT_EQ(d["rule"], "io");
  EXPECT_NE(d["message"].get<std::string>().find("symbolic links"), std::string::npos) << d.dump();
}

// Validating one contract (what run, intake preview and queue submit do) checks its pack too: a gate the
// pack names that is not loaded is found before anything runs, at its pointer in the pack.
TEST(ValidateCli, ContractWhosePackNamesAnUnloadedGateIsInvalid) {
  Project p;
  json pack = p.read("packs/medium.json");
  const size_t at = pack["gates"].size();
  pack["gates"].push_back({{"plugin", "no_such_gate"}});
  p.write("packs/medium.json", pack);
  auto r = p.validate({"contracts/examples/fix-greeting.json"});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  json j = json::parse(r.out);
  bool in_pack = false, in_contract = false;
  for (const auto& d : j["diagnostics"]) {
    if (d["file"] == "packs/medium.json" && d["pointer"] == "/gates/" + std::to_string(at) + "/plugin") {
      in_pack = true;
      EXPECT_EQ(d["rule"], "xref:plugin");
      EXPECT_NE(d["expected"].get<std::string>().find("diff_scope"), std::string::npos) << d.dump();
    }
    if (d["file"] == "contracts/examples/fix-greeting.json" && d["pointer"] == "/runtime_options/pack") {
      in_contract = true;
      EXPECT_EQ(d["rule"], "xref:pack");
      EXPECT_NE(d["message"].get<std::string>().find("no_such_gate"), std::string::npos) << d.dump();
    }
  }
  EXPECT_TRUE(in_pack) << r.out;
  EXPECT_TRUE(in_contract) << r.out;
  // intake preview refuses it the same way.
  auto pre = host_with_plugins(
      {"--root", p.dir.path().string(), "intake", "preview", "contracts/examples/fix-greeting.json"},
      p.dir.path());
  EXPECT_EQ(pre.exit_code, 1) << pre.out << pre.err;
  EXPECT_NE(pre.err.find("/gates/" + std::to_string(at) + "/plugin"), std::string::npos) << pre.err;
}

// A pack is known by its content wherever it lies: one outside packs/, among the files checked, is a pack
// the contracts checked with it may name (files others refer to are read before the rest).
TEST(ValidateCli, PackOutsidePacksFolderIsReferencedByTheContractsCheckedWithIt) {
  Project p;
  p.write("other/extra-pack.json",
          {{"pack_id", "ultra"}, {"governance_level", "low"}, {"gates", {{{"plugin", "diff_scope"}}}}});
  json c = json::parse(kContract);
  c["runtime_options"]["pack"] = "ultra";
  p.write("contracts/ultra.json", c);
  auto r = p.validate({"--no-plugin-checks", "contracts/ultra.json", "other"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto missing = p.validate({"--no-plugin-checks", "contracts/ultra.json"});
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_TRUE(pointer_rules(missing).count({"/runtime_options/pack", "xref:pack"})) << missing.out;
}

// Whatever order files are checked in, a contract refused for the operator's invalid browser policy says
// what is wrong with that policy.
TEST(ValidateCli, InvalidBrowserPolicyIsQuotedWhateverTheOrderOfFiles) {
  Project p;
  json bp = p.read("policies/browser_policy.json");
  bp["allowed_origins"] = {"file:///etc"};
  p.write("policies/browser_policy.json", bp);
  for (const char* policy : {"policies/browser_policy.json", "./policies/browser_policy.json"}) {
    auto r = p.validate({"--no-plugin-checks", policy, "contracts/examples/page-brief.json"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    bool quoted = false;
    const json report = json::parse(r.out);
    for (const auto& d : report["diagnostics"])
      if (d["rule"] == "xref:browser_policy")
        quoted =
            d["message"].get<std::string>().find("is invalid (Failed to match regex") != std::string::npos;
    EXPECT_TRUE(quoted) << policy << ": " << r.out;
  }
}
