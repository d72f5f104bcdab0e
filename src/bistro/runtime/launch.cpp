#include "bistro/runtime/launch.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <string_view>

extern char** environ;

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro::runtime {
namespace {

// A port nothing listens on now (the kernel's choice); rank 0's store binds it a moment later.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  check(fd >= 0, "--ranks: no socket for a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  check(ok, "--ranks: could not find a free port on 127.0.0.1");
  return ntohs(a.sin_port);
}

}  // namespace

LocalRanks::LocalRanks(int n) {
  check(n >= 2, "--ranks {}: spawning needs at least 2", n);
  // This process's own arguments, as the kernel holds them.
  const std::string raw = read_file("/proc/self/cmdline");
  std::vector<std::string> args;
  for (size_t at = 0; at < raw.size();) {
    const size_t end = raw.find('\0', at);
    args.push_back(raw.substr(at, end - at));
    at = end == std::string::npos ? raw.size() : end + 1;
  }
  const std::string port = std::to_string(free_port()), world = std::to_string(n);
  setenv("WORLD_SIZE", world.c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", port.c_str(), 1);
  const pid_t parent = ::getpid();
  // Everything the child needs is built before fork: between fork and exec a multithreaded
  // process may only make async-signal-safe calls (no setenv, no allocation).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (int rank = 1; rank < n; ++rank) {
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      if (v.rfind("RANK=", 0) != 0 && v.rfind("LOCAL_RANK=", 0) != 0) env_strings.emplace_back(v);
    }
    env_strings.push_back("RANK=" + std::to_string(rank));
    env_strings.push_back("LOCAL_RANK=" + std::to_string(rank));
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    check(pid >= 0, "--ranks: fork of rank {} failed", rank);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
      ::execve("/proc/self/exe", argv.data(), envp.data());
      ::_exit(127);
    }
    pids_.push_back(pid);
  }
  setenv("RANK", "0", 1);
  setenv("LOCAL_RANK", "0", 1);
}

LocalRanks::~LocalRanks() {
  for (int pid : pids_)
    if (pid > 0) ::kill(pid, SIGTERM);
  for (int pid : pids_)
    if (pid > 0) ::waitpid(pid, nullptr, 0);
}

std::optional<RankEnv> launch_ranks(int requested, std::unique_ptr<LocalRanks>& local) {
  check(requested >= 1, "--ranks {}: at least 1", requested);
  auto env = rank_env();
  check(!env || requested == 1 || env->world_size == requested,
        "--ranks {} but WORLD_SIZE={}: launch with one or the other", requested,
        env ? env->world_size : 0);
  if (!env && requested > 1) {
    local = std::make_unique<LocalRanks>(requested);
    env = rank_env();
  }
  return env;
}

void LocalRanks::wait() {
  std::string failed;
  for (size_t k = 0; k < pids_.size(); ++k) {
    int status = 0;
    if (::waitpid(pids_[k], &status, 0) < 0) continue;
    pids_[k] = -1;
    if (failed.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
      failed = WIFEXITED(status)
                   ? fmt::format("rank {} exited with status {}", k + 1, WEXITSTATUS(status))
                   : fmt::format("rank {} was killed by signal {}", k + 1, WTERMSIG(status));
  }
  check(failed.empty(), "{}", failed);
}

}  // namespace bistro::runtime
