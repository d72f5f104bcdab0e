// The localnet's processes: each node is this same binary, started with its role's arguments,
// its output in its own log. The supervisor starts, reaps, kills and restarts them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bistro::localnet {

struct Proc {
  std::string name, behaviour;  // behaviour: "validator", "honest" or a cheat's kind
  std::string kind = "honest";  // a validator's: honest, self-weight or weight-copier
  std::vector<std::string> argv;
  pid_t pid = -1;  // -1: exited (or never started); 0: down until a scheduled restart
  int exit_code = -1;
  uint16_t uid = 0;
  std::string hotkey;
  uint64_t stake = 0;  // rao (validators)
};

// The objects of a JSON-lines file (a metrics.jsonl being written: a torn last line is skipped).
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& file);

// A JSON-lines file read as it grows: next() returns the objects of the lines completed since the
// last call (a torn last line waits for its newline; a line that is not an object is skipped), so
// polling a long run's metrics costs what was appended, not the whole file.
class JsonlTail {
 public:
  explicit JsonlTail(std::filesystem::path file) : file_(std::move(file)) {}
  std::vector<nlohmann::json> next();

 private:
  std::filesystem::path file_;
  uint64_t offset_ = 0;
};

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;
  Supervisor(std::filesystem::path logs, std::vector<Proc> procs)
      : logs_(std::move(logs)),
        procs_(std::move(procs)),
        restart_at_(procs_.size(), Clock::time_point::max()) {}
  std::vector<Proc>& procs() { return procs_; }
  void start(size_t i);
  // Collects exit codes (waiting for every process when `block`); runs the restarts due.
  void poll(bool block = false);
  // SIGKILL, waited for; the process is down (pid 0) until restart_at, or gone (-1) without one.
  void kill_now(size_t i, Clock::time_point restart_at = Clock::time_point::max());
  bool any_running() const;
  // Waits up to grace_s for every process to exit by itself, then SIGTERMs the rest.
  void stop(double grace_s);

 private:
  std::filesystem::path logs_;
  std::vector<Proc> procs_;
  std::vector<Clock::time_point> restart_at_;  // per process; max(): none scheduled
};

}  // namespace bistro::localnet
