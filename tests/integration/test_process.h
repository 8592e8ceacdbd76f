// Test helper: spawns a child process (path + arguments), captures its stdout and stderr in
// files, waits for a file it writes or for its exit, sends it signals, and always kills (SIGKILL)
// and reaps it when the handle goes away, so a failing test leaves no stray process. Generic: it
// knows nothing about Outpost. Every wait is bounded and fails with a message that says what was
// awaited and shows the child's stderr; none asserts on how long something took.
// A Process is owned by one thread. The child also gets SIGKILL if the thread that spawned it
// dies (PR_SET_PDEATHSIG), so spawn from a thread that outlives the child (a test body does).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

extern char** environ;

namespace outpost::test {

// Upper bound of every wait in this helper unless the caller passes another one. Generous on
// purpose: it only decides when a stuck test gives up, never whether a fast one passes.
inline constexpr std::chrono::milliseconds kWaitBoundDefault{30'000};
// How often bounded waits look again.
inline constexpr std::chrono::milliseconds kPollInterval{5};

// How a child ended.
struct ExitStatus {
  bool exited = false;  // exited normally with `code`
  int code = 0;
  bool signaled = false;  // killed by `signal`
  int signal = 0;

  bool exited_with(int c) const { return exited && code == c; }
  std::string to_string() const {
    if (exited) return "exit code " + std::to_string(code);
    if (signaled) return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    return "still running";
  }
  static ExitStatus from_wait_status(int ws) {
    ExitStatus s;
    if (WIFEXITED(ws)) {
      s.exited = true;
      s.code = WEXITSTATUS(ws);
    } else if (WIFSIGNALED(ws)) {
      s.signaled = true;
      s.signal = WTERMSIG(ws);
    }
    return s;
  }
};

struct ProcessOptions {
  std::string cwd;                                // working directory; empty = the test's
  std::map<std::string, std::string> extra_env;   // added to (or replacing in) the environment
  bool kill_with_parent = true;                   // PR_SET_PDEATHSIG=SIGKILL in the child
};

// Returns the whole content of `path`, or "" if it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One child process. The constructor starts it; check started() (or ASSERT_TRUE(proc.started())
// << proc.describe()) before using it.
class Process {
 public:
  // `stdin_file`: the file the child reads as stdin; empty: /dev/null.
  Process(std::string path, std::vector<std::string> args, ProcessOptions options = {},
          std::string stdin_file = "")
      : path_(std::move(path)), stdin_file_(std::move(stdin_file)) {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/outpost-proc-XXXXXX";
    std::vector<char> dir(tmpl.begin(), tmpl.end());
    dir.push_back('\0');
    if (::mkdtemp(dir.data()) == nullptr) {
      error_ = "mkdtemp failed for " + tmpl;
      return;
    }
    output_dir_ = dir.data();
    name_ = std::filesystem::path(path_).filename().string();
    spawn(args, options);
  }

  ~Process() {
    kill9();
    std::error_code ec;
    if (!output_dir_.empty()) std::filesystem::remove_all(output_dir_, ec);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  testing::AssertionResult started() const {
    if (pid_ > 0) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "could not start " << path_ << ": " << error_;
  }
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  std::string stdout_path() const { return output_dir_ + "/stdout"; }
  std::string stderr_path() const { return output_dir_ + "/stderr"; }
  std::string stdout_text() const { return slurp(stdout_path()); }
  std::string stderr_text() const { return slurp(stderr_path()); }
  // The exit status once reaped.
  const std::optional<ExitStatus>& exit_status() const { return exit_; }

  // Returns true while the child runs; reaps it (without blocking) once it has ended.
  bool running() {
    if (pid_ <= 0 || exit_) return false;
    int ws = 0;
    pid_t r = ::waitpid(pid_, &ws, WNOHANG);
    if (r == pid_) {
      exit_ = ExitStatus::from_wait_status(ws);
      return false;
    }
    return r == 0;
  }

  // Sends `sig` to a running child.
  testing::AssertionResult signal(int sig) {
    if (!running()) return testing::AssertionFailure() << describe() << " is not running";
    if (::kill(pid_, sig) != 0) {
      return testing::AssertionFailure() << "kill(" << pid_ << ", " << sig << ") failed: " << strerror(errno);
    }
    return testing::AssertionSuccess();
  }

  // Waits (bounded) until the child exits and stores how it ended in `out`. On timeout the child
  // keeps running (the destructor kills it) and the failure says so.
  testing::AssertionResult wait_exit(ExitStatus* out = nullptr,
                                     std::chrono::milliseconds bound = kWaitBoundDefault) {
    if (pid_ <= 0) return started();
    auto deadline = std::chrono::steady_clock::now() + bound;
    while (running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return testing::AssertionFailure() << describe() << " did not exit within " << bound.count()
                                           << " ms";
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    if (out) *out = *exit_;
    return testing::AssertionSuccess();
  }

  // Sends SIGKILL (if it still runs) and reaps the child. Safe to call more than once.
  void kill9() {
    if (pid_ <= 0 || exit_) return;
    ::kill(pid_, SIGKILL);
    int ws = 0;
    // SIGKILL cannot be caught; a blocking wait is bounded by the kernel tearing the child down.
    while (::waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
    }
    exit_ = ExitStatus::from_wait_status(ws);
  }

  // "outpostd (pid 123, exit code 2); stderr: ..." for failure messages.
  std::string describe(std::size_t stderr_tail_bytes = 2000) const {
    std::ostringstream o;
    o << name_ << " (pid " << pid_ << ", " << (exit_ ? exit_->to_string() : std::string("running"))
      << ")";
    std::string err = stderr_text();
    if (err.size() > stderr_tail_bytes) err = "..." + err.substr(err.size() - stderr_tail_bytes);
    if (!err.empty()) o << "; stderr:\n" << err;
    return o.str();
  }

 private:
  void spawn(const std::vector<std::string>& args, const ProcessOptions& options) {
    // Everything the child needs is built before fork(): after it, in a multi-threaded parent,
    // the child may only call async-signal-safe functions.
    std::vector<std::string> argv_s;
    argv_s.push_back(path_);
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : options.extra_env) env[k] = v;
    std::vector<std::string> env_s;
    for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string out_path = stdout_path(), err_path = stderr_path();
    const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
    const std::string in_path = stdin_file_.empty() ? "/dev/null" : stdin_file_;
    const pid_t parent = ::getpid();
    const bool pdeathsig = options.kill_with_parent;

    pid_t pid = ::fork();
    if (pid < 0) {
      error_ = std::string("fork failed: ") + strerror(errno);
      return;
    }
    if (pid == 0) {
      if (pdeathsig) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);  // the parent died before prctl took effect
      }
      int in = ::open(in_path.c_str(), O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (in < 0 || out < 0 || err < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (cwd && ::chdir(cwd) != 0) ::_exit(126);
      ::execve(argv[0], argv.data(), envp.data());
      static const char kMsg[] = "exec failed\n";
      [[maybe_unused]] auto n = ::write(2, kMsg, sizeof(kMsg) - 1);
      ::_exit(127);
    }
    pid_ = pid;
  }

  std::string path_;
  std::string stdin_file_;
  std::string name_;
  std::string output_dir_;
  std::string error_;
  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
};

// Waits (bounded) until `path` exists and `ready(content)` holds (default: the content is
// non-empty and ends with a newline, i.e. a writer that writes then renames has finished). If
// `watched` is given and exits first, fails at once with its exit status and stderr.
inline testing::AssertionResult wait_for_file(
    const std::string& path, Process* watched = nullptr,
    std::chrono::milliseconds bound = kWaitBoundDefault,
    const std::function<bool(const std::string&)>& ready = {}) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (true) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      std::string content = slurp(path);
      bool ok = ready ? ready(content) : (!content.empty() && content.back() == '\n');
      if (ok) return testing::AssertionSuccess();
    }
    if (watched && !watched->running()) {
      return testing::AssertionFailure() << "waiting for " << path << ": " << watched->describe()
                                         << " ended before writing it";
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return testing::AssertionFailure() << path << " did not appear (or was incomplete) within "
                                         << bound.count() << " ms"
                                         << (watched ? "; " + watched->describe() : std::string());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

// Parses "key=value key=value ..." (one line; values have no spaces) into a map.
inline std::map<std::string, std::string> parse_key_values(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// Parses "HOST:PORT" or "[V6]:PORT". Returns nullopt when malformed.
inline std::optional<HostPort> parse_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5) return std::nullopt;
  unsigned long p = std::stoul(port);
  if (p > 65535) return std::nullopt;
  return HostPort{host, static_cast<std::uint16_t>(p)};
}

// The outcome of run_command().
struct CommandResult {
  bool finished = false;  // false: it did not end within the bound and was killed
  ExitStatus exit;
  std::string out;
  std::string err;
  std::string describe() const {
    return (finished ? exit.to_string() : std::string("did not finish in time")) + "; stdout:\n" +
           out + "\nstderr:\n" + err;
  }
};

// Runs `path args...` to completion (bounded; killed when over) and returns its output.
inline CommandResult run_command(const std::string& path, const std::vector<std::string>& args,
                                 ProcessOptions options = {},
                                 std::chrono::milliseconds bound = kWaitBoundDefault,
                                 const std::string& stdin_file = "") {
  CommandResult r;
  Process p(path, args, std::move(options), stdin_file);
  if (!p.started()) {
    r.err = "could not start " + path;
    return r;
  }
  ExitStatus st;
  r.finished = p.wait_exit(&st, bound);
  if (!r.finished) p.kill9();
  r.exit = r.finished ? st : *p.exit_status();
  r.out = p.stdout_text();
  r.err = p.stderr_text();
  return r;
}

}  // namespace outpost::test
