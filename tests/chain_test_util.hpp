// Helpers shared by the chain tests.
#pragma once

#include <functional>
#include <string>

#include "bistro/chain/chain.hpp"

namespace bistro::test {

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
