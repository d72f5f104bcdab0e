// Helpers shared by the torch-free tests.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "bistro/chain/chain.hpp"
#include "bistro/core/error.hpp"

namespace bistro::test {

// A fresh directory under the system temp dir (bistro_<name>_<pid>), removed at scope exit.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("bistro_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::filesystem::path operator/(const std::string& s) const { return path / s; }
};

// A fixed pseudo-random stream (xorshift64) for mutation tests: the same bytes every run.
// Sets an environment variable for the scope, and restores what was there.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

struct Xorshift {
  uint64_t state;
  uint64_t operator()() {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  }
};

// The message of the bistro::Error `f` throws ("(no error)" when it returns).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The ChainError name `f` throws ("no error" when it returns).
inline std::string chain_error_name(const std::function<void()>& f) {
  try {
    f();
  } catch (const chain::ChainError& e) {
    return e.name();
  }
  return "no error";
}

}  // namespace bistro::test
