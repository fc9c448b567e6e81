// Escape attempts against the run sandbox. The test's allowlist admits every program used here with any
// arguments, so what stops each attempt is the kernel (Landlock, seccomp, rlimits, the run's cgroup), not
// the policy check. Each test proves the write, exec or connection did not happen — a canary file absent,
// a file byte for byte unchanged, a listener that saw nothing — and that the run did not seal success.
#include "integration/run_project.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

namespace cp::test {
namespace {

// Enough "../" to climb from any worktree to "/": a path the run names relative to its cwd.
std::string up_to_root() {
  std::string s;
  for (int i = 0; i < 40; ++i) s += "../";
  return s;
}

// Total bytes of the files beneath `dir` (the user's .git: nothing may land there).
uintmax_t tree_bytes(const fs::path& dir) {
  uintmax_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

// A listener on 127.0.0.1 that counts the connections (TCP) or datagrams (UDP) it receives.
class Listener {
 public:
  explicit Listener(int type) : type_(type) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    if (type == SOCK_STREAM) ::listen(fd_, 16);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 50) <= 0) continue;
        if (type_ == SOCK_STREAM) {
          int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) ++seen_, ::close(c);
        } else {
          char buf[64];
          if (::recv(fd_, buf, sizeof buf, 0) >= 0) ++seen_;
        }
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int seen() const { return seen_; }

 private:
  int type_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> seen_{0};
  std::thread thread_;
};

class SandboxEscape : public ::testing::Test {
 protected:
  RunProject p;
  TempDir outside;  // a folder outside the runtime root and the repository, as any user file would be

  void SetUp() override {
    json entries = json::array();
    for (const char* prog : {"true", "cp", "mkdir", "sed", "sh", "python3", "make", "git", "ln", "head"})
      entries.push_back({{"id", std::string("any-") + prog}, {"program", prog}});
    write_file(p.dir / "policies/command_allowlist.json",
               json{{"policy", "command_allowlist"}, {"version", 1}, {"entries", entries}}.dump(2));
    write_file(outside / "target.txt", "original\n");
  }

  void pack_sandbox(const json& sandbox) {
    json pack = json::parse(read_file(p.dir / "packs/medium.json"));
    pack["sandbox"] = sandbox;
    write_file(p.dir / "packs/medium.json", pack.dump(2));
  }

  RunProject::Result run(std::vector<std::string> commands, const json& tests = nullptr,
                         const std::vector<std::string>& env = {}) {
    json c = p.contract(std::move(commands));
    if (!tests.is_null()) c["acceptance_tests"] = tests;
    auto r = p.run(c, env);
    EXPECT_TRUE(r.manifest.is_object()) << r.ran.out << r.ran.err;
    return r;
  }

  static json test_cmd(const std::string& cmd) {
    return json::array({{{"name", "escape"}, {"cmd", cmd}, {"must_pass", true}, {"timeout_sec", 30}}});
  }

  std::string out(const std::string& rel) const { return (outside / rel).string(); }
};

TEST_F(SandboxEscape, CpAndMkdirWithAbsoluteOrDotDotPathsWriteNothingOutside) {
  auto abs = run({"cp README.md " + out("cp-abs")});
  EXPECT_NE(abs.manifest["verdict"], "success");
  auto rel = run({"cp README.md " + up_to_root() + out("cp-rel").substr(1)});
  EXPECT_NE(rel.manifest["verdict"], "success");
  auto dir = run({"mkdir " + up_to_root() + out("mkdir-rel").substr(1)});
  EXPECT_NE(dir.manifest["verdict"], "success");
  auto dir2 = run({"mkdir -p " + out("mkdir-abs/deep")});
  EXPECT_NE(dir2.manifest["verdict"], "success");
  for (const char* canary : {"cp-abs", "cp-rel", "mkdir-rel", "mkdir-abs"})
    EXPECT_FALSE(fs::exists(outside / canary)) << canary;
  // The failure is the kernel's answer, in the command's own words.
  EXPECT_NE(read_file(abs.bundle / "artifacts/tool/0.stderr.log").find("Permission denied"),
            std::string::npos);
}

TEST_F(SandboxEscape, SedExecuteAndWriteCommandsDoNothingOutside) {
  auto e = run({"sed -i -e 1e\\ touch\\ " + out("sed-e") + " src/greeting.sh"});
  auto w = run({"sed -i -e w\\ " + out("sed-w") + " src/greeting.sh"});
  EXPECT_NE(e.manifest["verdict"], "success");
  EXPECT_NE(w.manifest["verdict"], "success");
  EXPECT_FALSE(fs::exists(outside / "sed-e"));
  EXPECT_FALSE(fs::exists(outside / "sed-w"));
}

TEST_F(SandboxEscape, ScriptsMakeUnittestAndGitOutputReachingOutsideWriteNothing) {
  write_file(outside / "evil.sh", "echo pwned > " + out("script-canary") + "\n");
  write_file(outside / "evil.py", "open('" + out("py-canary") + "', 'w').write('x')\n");
  write_file(outside / "Makefile", "all:\n\techo x > " + out("make-canary") + "\n");
  write_file(outside / "test_evil.py",
             "import unittest\nclass T(unittest.TestCase):\n  def test_x(self):\n    open('" +
                 out("unittest-canary") + "', 'w').write('x')\n");
  std::string up = up_to_root() + outside.path().string().substr(1);
  auto sh = run({"sh scripts/" + up + "/evil.sh"});
  auto py = run({"python3 tools/" + up + "/evil.py"});
  auto mk = run({"make -C " + outside.path().string()});
  auto ut = run({"python3 -m unittest discover -s " + outside.path().string()});
  auto git = run({"git log --output=" + out("git-canary")});
  for (auto* r : {&sh, &py, &mk, &ut, &git}) EXPECT_NE(r->manifest["verdict"], "success") << r->ran.out;
  for (const char* canary : {"script-canary", "py-canary", "make-canary", "unittest-canary", "git-canary"})
    EXPECT_FALSE(fs::exists(outside / canary)) << canary;
}

TEST_F(SandboxEscape, AcceptanceTestWritingOutsideWritesNothing) {
  auto r = run({"sed -i s/Helo/Hello/ src/greeting.sh"},
               test_cmd("sh tests/test_greeting.sh && echo x > " + out("test-canary")));
  EXPECT_NE(r.manifest["verdict"], "success");
  EXPECT_FALSE(fs::exists(outside / "test-canary"));
  EXPECT_NE(read_file(r.bundle / "artifacts/tests/escape/stderr.log").find("Permission denied"),
            std::string::npos);
}

TEST_F(SandboxEscape, NetworkDenyReachesNoListenerButAListedPortDoes) {
  Listener tcp(SOCK_STREAM), udp(SOCK_DGRAM);
  std::string connect = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', " +
                        std::to_string(tcp.port()) + "), 2)\"";
  std::string datagram =
      "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
      "s.sendto(b'x', ('127.0.0.1', " +
      std::to_string(udp.port()) + "))\"";
  auto denied = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(connect));
  auto denied_udp = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(datagram));
  EXPECT_NE(denied.manifest["verdict"], "success");
  EXPECT_NE(denied_udp.manifest["verdict"], "success");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(tcp.seen(), 0) << "a run under network: deny reached a TCP listener";
  EXPECT_EQ(udp.seen(), 0) << "a run under network: deny sent a datagram";
  EXPECT_NE(denied.manifest["sandbox"]["network_enforced_by"].get<std::string>().find("namespace"),
            std::string::npos);
  // The same test with the port listed in the pack connects: the deny above is the sandbox's doing.
  pack_sandbox({{"connect_ports", json::array({tcp.port()})}});
  auto allowed = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(connect));
  EXPECT_EQ(allowed.manifest["verdict"], "success") << allowed.ran.out;
  for (int i = 0; i < 40 && tcp.seen() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(tcp.seen(), 1);
  // With a port listed the run shares the host's network; another port, or MPTCP (which Landlock's TCP
  // rules do not see) to any port, stays closed.
  Listener other(SOCK_STREAM);
  std::string mptcp =
      "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); "
      "s.settimeout(2); s.connect(('127.0.0.1', " +
      std::to_string(other.port()) + "))\"";
  std::string plain = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', " +
                      std::to_string(other.port()) + "), 2)\"";
  auto via_mptcp = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(mptcp));
  auto via_tcp = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(plain));
  EXPECT_NE(via_mptcp.manifest["verdict"], "success");
  EXPECT_NE(via_tcp.manifest["verdict"], "success");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(other.seen(), 0);
}

TEST_F(SandboxEscape, AContractCannotTurnOnTheNetworkItsPackDenies) {
  Listener tcp(SOCK_STREAM);
  json c = p.contract({"sed -i s/Helo/Hello/ src/greeting.sh"});
  c["tool_permissions"]["network"] = "allow";  // the medium pack's default is deny
  c["acceptance_tests"] = test_cmd("python3 -c \"import socket; socket.create_connection(('127.0.0.1', " +
                                   std::to_string(tcp.port()) + "), 2)\"");
  auto r = p.run(c);
  EXPECT_EQ(r.manifest["sandbox"]["network"], "deny") << r.manifest.dump(2);
  EXPECT_NE(r.manifest["verdict"], "success");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(tcp.seen(), 0);
  // A pack that allows it lets the same contract through.
  pack_sandbox({{"network", "allow"}});
  auto allowed = p.run(c);
  EXPECT_EQ(allowed.manifest["sandbox"]["network"], "allow");
  EXPECT_EQ(allowed.manifest["verdict"], "success") << allowed.ran.out;
  for (int i = 0; i < 40 && tcp.seen() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(tcp.seen(), 1);
}

TEST_F(SandboxEscape, SymlinkToOutsideIsNotWrittenThrough) {
  auto cp = run({"ln -s " + out("target.txt") + " src/link.txt", "cp README.md src/link.txt"});
  auto sed = run({"ln -s " + out("target.txt") + " src/link.txt",
                  "sed -i --follow-symlinks s/original/pwned/ src/link.txt"});
  EXPECT_NE(cp.manifest["verdict"], "success");
  EXPECT_NE(sed.manifest["verdict"], "success");
  EXPECT_EQ(read_file(outside / "target.txt"), "original\n");
}

TEST_F(SandboxEscape, RunCannotTouchTheRuntimeRootTokensPoliciesOrAnotherRunsBundle) {
  auto first = run({"sed -i s/Helo/Hello/ src/greeting.sh"});
  ASSERT_EQ(first.manifest["verdict"], "success") << first.ran.out << first.ran.err;
  write_file(p.dir / "tokens.json", "{\"tokens\": []}\n");
  fs::path manifest = first.bundle / "manifest.json";
  std::string before_manifest = read_file(manifest);
  std::string before_policy = read_file(p.dir / "policies/forbidden_actions.json");
  std::string attack =
      "sed -i s/success/failure/ " + manifest.string() + "; echo x > " + (p.dir / "tokens.json").string() +
      "; echo x > " + (p.dir / "policies/forbidden_actions.json").string() + "; mkdir " +
      (p.dir / ".runtime-cache/cortexpilot/runs/forged").string() + "; cat " +
      (p.dir / "tokens.json").string() + " > $CP_SCRATCH_DIR/stolen; ls " +
      (p.dir / ".runtime-cache").string() + " > $CP_SCRATCH_DIR/listing; test -s $CP_SCRATCH_DIR/stolen";
  auto r = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(attack));
  EXPECT_NE(r.manifest["verdict"], "success");
  EXPECT_EQ(read_file(manifest), before_manifest);
  EXPECT_EQ(read_file(p.dir / "tokens.json"), "{\"tokens\": []}\n");
  EXPECT_EQ(read_file(p.dir / "policies/forbidden_actions.json"), before_policy);
  EXPECT_FALSE(fs::exists(p.dir / ".runtime-cache/cortexpilot/runs/forged"));
  // Not even reading: the token file and the runtime root's listing came back empty.
  EXPECT_EQ(read_file(r.bundle / "artifacts/scratch/stolen"), "");
  EXPECT_EQ(read_file(r.bundle / "artifacts/scratch/listing"), "");
  EXPECT_EQ(p.runs({"verify", first.manifest["run_id"]}).exit_code, 0);
}

TEST_F(SandboxEscape, NoDescriptorOfTheHostReachesARunsProcess) {
  // A descriptor the host holds open (a bundle file, a pipe, a socket) would be a handle no sandbox rule
  // governs. `ls` lists its own: stdin, stdout, stderr and the one it reads the folder through.
  auto r = run(
      {"sed -i s/Helo/Hello/ src/greeting.sh"},
      test_cmd("ls /proc/self/fd > $CP_SCRATCH_DIR/fds && grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status "
               "> $CP_SCRATCH_DIR/status"));
  EXPECT_EQ(r.manifest["verdict"], "success") << r.ran.out;
  EXPECT_EQ(read_file(r.bundle / "artifacts/scratch/fds"), "0\n1\n2\n3\n");
  std::string status = read_file(r.bundle / "artifacts/scratch/status");
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << status;  // filter mode
}

TEST_F(SandboxEscape, ARunHoldsNoCapabilityAndCannotReachTheHostProcess) {
  // Run as root, a child would keep root's capabilities (chown, immutable flags, raw devices, the clock)
  // and share the host's uid: prlimit on cp-host itself would let it set the host's file size limit to 0.
  std::string probe =
      "grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status > $CP_SCRATCH_DIR/caps; "
      "python3 -c \"import os,resource; resource.prlimit(os.getppid(), resource.RLIMIT_FSIZE, (0, 0))\" "
      "2> $CP_SCRATCH_DIR/prlimit.err; "
      "chmod u+s src/greeting.sh 2> $CP_SCRATCH_DIR/chmod.err; "
      "python3 -c \"import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\" 2> "
      "$CP_SCRATCH_DIR/packet.err; "
      "test ! -u src/greeting.sh";
  auto r = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, test_cmd(probe));
  // The host was not hurt: it went on to judge and seal the run.
  EXPECT_EQ(r.manifest["status"], "sealed") << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["verdict"], "success") << r.ran.out;
  std::string caps = read_file(r.bundle / "artifacts/scratch/caps");
  for (const char* set : {"CapEff", "CapPrm", "CapBnd", "CapAmb"})
    EXPECT_NE(caps.find(std::string(set) + ":\t0000000000000000"), std::string::npos) << caps;
  EXPECT_NE(read_file(r.bundle / "artifacts/scratch/prlimit.err").find("PermissionError"), std::string::npos);
  EXPECT_NE(read_file(r.bundle / "artifacts/scratch/chmod.err").find("not permitted"), std::string::npos);
  EXPECT_NE(read_file(r.bundle / "artifacts/scratch/packet.err").find("Error"), std::string::npos);
}

TEST_F(SandboxEscape, GitConfigOfTheUsersRepositoryCannotBeChangedFromARun) {
  std::string config_before = read_file(p.repo / ".git/config");
  auto r = run({"git config core.fsmonitor touch\\ " + out("fsmonitor-canary"), "true"});
  EXPECT_NE(r.manifest["verdict"], "success");
  EXPECT_EQ(read_file(p.repo / ".git/config"), config_before);
  sh("git status --porcelain >/dev/null", p.repo);  // the user's own git would run an fsmonitor now
  EXPECT_FALSE(fs::exists(outside / "fsmonitor-canary"));
}

TEST_F(SandboxEscape, DoubleForkedAndEnvironmentScrubbedProcessesDieWithTheRun) {
  p.commit("scripts/daemonize.sh",
           "(setsid sh -c 'echo $$ > \"$CP_SCRATCH_DIR/setsid.pid\"; exec sleep 997' &)\n"
           "(env -i setsid sh -c 'echo $$ > \"'\"$CP_SCRATCH_DIR\"'/scrubbed.pid\"; exec sleep 996' &)\n"
           "sleep 0.5\n");
  auto r = run({"sed -i s/Helo/Hello/ src/greeting.sh", "sh scripts/daemonize.sh"});
  ASSERT_TRUE(fs::exists(r.bundle / "artifacts/scratch/setsid.pid")) << r.ran.out << r.ran.err;
  ASSERT_TRUE(fs::exists(r.bundle / "artifacts/scratch/scrubbed.pid"));
  int setsid_pid = std::stoi(read_file(r.bundle / "artifacts/scratch/setsid.pid"));
  int scrubbed_pid = std::stoi(read_file(r.bundle / "artifacts/scratch/scrubbed.pid"));
  EXPECT_FALSE(process_alive(setsid_pid)) << "a setsid'd grandchild outlived its sealed run";
  EXPECT_FALSE(process_alive(scrubbed_pid)) << "a grandchild with a scrubbed environment outlived its run";
  auto types = r.event_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "RUN_PROCESSES_KILLED"), types.end());
  EXPECT_EQ(r.manifest["sandbox"]["process_tree"], "cgroup");
  EXPECT_FALSE(fs::exists(r.manifest["sandbox"]["cgroup"].get<std::string>())) << "the run's cgroup was left";
}

TEST_F(SandboxEscape, A200MegabyteFileIsDeniedByTheDiskBudgetAndNeverReachesTheUsersRepository) {
  pack_sandbox({{"disk_budget_mb", 100}});
  uintmax_t git_before = tree_bytes(p.repo / ".git");
  auto r = run({"sh -c \"head -c 200000000 /dev/zero > src/big.bin\""});
  EXPECT_EQ(r.manifest["verdict"], "denied") << r.ran.out;
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("disk budget"), std::string::npos)
      << r.manifest["reason"];
  EXPECT_LT(tree_bytes(p.repo / ".git"), git_before + 1024 * 1024)
      << "blobs of the run reached the user's .git";
  EXPECT_LT(fs::file_size(r.bundle / "artifacts/diff.patch"), 100u * 1024 * 1024);
}

TEST_F(SandboxEscape, FillingTheDiskIsStoppedAndTheNextRunWorks) {
  pack_sandbox({{"max_file_mb", 32}});
  auto fill = run({"cp /dev/zero src/fill.bin"});
  EXPECT_NE(fill.manifest["verdict"], "success");
  // SIGXFSZ: the kernel stopped the write at the pack's file size limit.
  auto cmds = fill.read("reports/task_result.json")["commands"];
  ASSERT_FALSE(cmds.empty());
  EXPECT_EQ(cmds[0]["term_signal"], SIGXFSZ) << cmds.dump();
  auto next = run({"sed -i s/Helo/Hello/ src/greeting.sh"});
  EXPECT_EQ(next.manifest["verdict"], "success") << next.ran.out << next.ran.err;
}

TEST_F(SandboxEscape, KernelWithoutLandlockRefusesTheRunByDefaultAndNothingRuns) {
  auto r =
      run({"sh -c \"echo ran > " + out("ran-canary") + "\""}, nullptr, {"CP_SANDBOX_SIMULATE_NO_LANDLOCK=1"});
  EXPECT_EQ(r.manifest["verdict"], "error");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("sandbox unavailable"), std::string::npos);
  EXPECT_EQ(r.manifest["sandbox"]["kind"], "none");
  EXPECT_FALSE(fs::exists(outside / "ran-canary")) << "a command ran although the run was refused";
  auto types = r.event_types();
  EXPECT_EQ(std::find(types.begin(), types.end(), "RUNNER_STARTED"), types.end());
  // The preview says so before anything is started.
  Ran preview = run_env({CP_HOST_BIN, "--plugins", CP_PLUGIN_DIR, "--root", p.dir.path().string(), "intake",
                         "preview", (p.dir / "contracts/task.json").string(), "--json"},
                        {"CP_SANDBOX_SIMULATE_NO_LANDLOCK=1"});
  json plan = json::parse(preview.out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << preview.out << preview.err;
  EXPECT_EQ(plan["would_run"], false) << plan.dump(2);
  EXPECT_EQ(plan["sandbox"]["kind"], "refused");
}

TEST_F(SandboxEscape, PackMayAllowRunningUnsandboxedAndTheManifestSaysSo) {
  pack_sandbox({{"on_unsupported", "run_unsandboxed"}});
  auto r = run({"sed -i s/Helo/Hello/ src/greeting.sh"}, nullptr, {"CP_SANDBOX_SIMULATE_NO_LANDLOCK=1"});
  EXPECT_EQ(r.manifest["verdict"], "success") << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["sandbox"]["kind"], "none");
  EXPECT_NE(r.manifest["sandbox"]["why_none"].get<std::string>().find("Landlock"), std::string::npos);
  Ran show = p.runs({"show", r.manifest["run_id"]});
  EXPECT_NE(show.out.find("sandbox   none"), std::string::npos) << show.out;
}

TEST_F(SandboxEscape, WithoutACgroupLeftoversAreStillKilledByTheirRunMarker) {
  p.commit("scripts/daemonize.sh",
           "(setsid sh -c 'echo $$ > \"$CP_SCRATCH_DIR/setsid.pid\"; exec sleep 995' &)\nsleep 0.5\n");
  auto r = run({"sh scripts/daemonize.sh"}, nullptr, {"CP_SANDBOX_SIMULATE_NO_CGROUP=1"});
  EXPECT_EQ(r.manifest["sandbox"]["process_tree"], "process_group");
  ASSERT_TRUE(fs::exists(r.bundle / "artifacts/scratch/setsid.pid"));
  EXPECT_FALSE(process_alive(std::stoi(read_file(r.bundle / "artifacts/scratch/setsid.pid"))));
}

// What a run leaves in its worktree is hostile input to cp-host's own collect step.
TEST_F(SandboxEscape, ANestedRepositoryCannotHideFilesFromThePatch) {
  auto r =
      run({"sh -c \"sed -i s/Helo/Hello/ src/greeting.sh && mkdir -p src/lib && cd src/lib && git init -q && "
           "echo 'echo hidden' > impl.sh\""});
  EXPECT_EQ(r.manifest["verdict"], "denied") << r.ran.out;
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("nested git repository (src/lib)"),
            std::string::npos)
      << r.manifest["reason"];
  // No gitlink stands in for the folder in what would be promoted.
  EXPECT_EQ(read_file(r.bundle / "artifacts/diff.patch").find("160000"), std::string::npos);
}

TEST_F(SandboxEscape, FifosLeftInTheWorktreeNeitherHangCollectNorHideAChange) {
  // A FIFO as .gitattributes would block git's attribute reader; a tracked test script replaced by a FIFO
  // made `git add` fail and the run end in `error` with no diff, hiding the out-of-scope edit beside it.
  auto r =
      run({"sh -c \"echo out-of-scope >> README.md && mkdir -p src/d && mkfifo src/d/.gitattributes && "
           "rm tests/test_greeting.sh && mkfifo tests/test_greeting.sh\""});
  EXPECT_EQ(r.manifest["verdict"], "denied") << r.ran.out << r.ran.err;
  std::string reason = r.manifest["reason"].get<std::string>();
  EXPECT_NE(reason.find("special files"), std::string::npos) << reason;
  json changes = r.read("artifacts/changed_files.json");
  bool readme = false;
  for (const auto& c : changes) readme = readme || c["path"] == "README.md";
  EXPECT_TRUE(readme) << changes.dump();
  EXPECT_NE(read_file(r.bundle / "artifacts/diff.patch").find("+out-of-scope"), std::string::npos);
}

TEST_F(SandboxEscape, AFileNameThatIsNotUtf8IsSealedAndDenied) {
  p.commit("scripts/badname.sh",
           "sed -i s/Helo/Hello/ src/greeting.sh\nprintf x > \"$(printf 'src/bad\\377name')\"\n");
  auto r = run({"sh scripts/badname.sh"});
  EXPECT_EQ(r.ran.exit_code, 5) << r.ran.out << r.ran.err;
  EXPECT_EQ(r.manifest["status"], "sealed");
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("not UTF-8"), std::string::npos)
      << r.manifest["reason"];
  EXPECT_EQ(p.runs({"verify", r.manifest["run_id"]}).exit_code, 0);
}

TEST_F(SandboxEscape, SparseFilesCountAtTheirSizeAgainstTheDiskBudget) {
  pack_sandbox({{"disk_budget_mb", 100}});
  auto r = run({"sh -c \"truncate -s 1G src/a.bin && truncate -s 1G src/b.bin\""});
  EXPECT_EQ(r.manifest["verdict"], "denied") << r.ran.out;
  EXPECT_NE(r.manifest["reason"].get<std::string>().find("disk budget"), std::string::npos)
      << r.manifest["reason"];
}

}  // namespace
}  // namespace cp::test
