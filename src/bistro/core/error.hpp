// Errors: every failure bistro reports is a bistro::Error whose message names the thing that was
// wrong and why, in one line, so a CLI can print it and exit non-zero, and a neuron can log it and
// skip the bad peer.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace bistro {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws bistro::Error with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Throws bistro::Error unless `ok`.
template <typename... Args>
void check(bool ok, fmt::format_string<Args...> format, Args&&... args) {
  if (!ok) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace bistro
