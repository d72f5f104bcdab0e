#include "bistro/localnet/supervisor.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "bistro/core/error.hpp"

namespace bistro::localnet {
namespace fs = std::filesystem;

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  return JsonlTail(file).next();
}

std::vector<nlohmann::json> JsonlTail::next() {
  std::vector<nlohmann::json> out;
  std::error_code ec;
  const uint64_t size = fs::file_size(file_, ec);
  if (ec || size <= offset_) return out;
  std::ifstream in(file_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string chunk(size - offset_, '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(in.gcount()));
  const size_t end = chunk.rfind('\n');
  if (end == std::string::npos) return out;
  offset_ += end + 1;
  for (size_t at = 0; at <= end;) {
    const size_t nl = chunk.find('\n', at);
    auto j = nlohmann::json::parse(chunk.substr(at, nl - at), nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
    at = nl + 1;
  }
  return out;
}

void Supervisor::start(size_t i) {
  Proc& p = procs_.at(i);
  const auto log = logs_ / (p.name + ".log");
  const pid_t pid = fork();
  check(pid >= 0, "localnet: fork failed");
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& s : p.argv) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  p.pid = pid;
}

void Supervisor::poll(bool block) {
  for (size_t i = 0; i < procs_.size(); ++i) {
    Proc& p = procs_[i];
    if (p.pid == 0 && Clock::now() >= restart_at_[i]) {
      fmt::print("\nlocalnet: restarting {}\n", p.name);
      restart_at_[i] = Clock::time_point::max();
      start(i);
    }
    if (p.pid <= 0) continue;
    int status = 0;
    if (waitpid(p.pid, &status, block ? 0 : WNOHANG) == p.pid) {
      p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      p.pid = -1;
    }
  }
}

void Supervisor::kill_now(size_t i, Clock::time_point restart_at) {
  Proc& p = procs_.at(i);
  if (p.pid > 0) {
    kill(p.pid, SIGKILL);
    waitpid(p.pid, nullptr, 0);
  }
  p.pid = restart_at == Clock::time_point::max() ? -1 : 0;
  restart_at_[i] = restart_at;
}

bool Supervisor::any_running() const {
  for (const auto& p : procs_)
    if (p.pid > 0) return true;
  return false;
}

void Supervisor::stop(double grace_s) {
  const auto stop_by = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(grace_s));
  for (auto& p : procs_)
    if (p.pid == 0) p.pid = -1;  // a scheduled restart is moot now
  while (Clock::now() < stop_by && any_running()) {
    poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& p : procs_)
    if (p.pid > 0) kill(p.pid, SIGTERM);
  poll(true);
}

}  // namespace bistro::localnet
