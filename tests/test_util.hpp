// Helpers shared by the torch-free tests.
#pragma once

#include <functional>
#include <string>

#include "bistro/chain/chain.hpp"
#include "bistro/core/error.hpp"

namespace bistro::test {

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
