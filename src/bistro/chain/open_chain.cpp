#include "bistro/chain/open_chain.hpp"

#include <cstdlib>

#include "bistro/chain/local_chain.hpp"
#include "bistro/chain/subtensor_chain.hpp"
#include "bistro/core/files.hpp"

namespace bistro::chain {

std::filesystem::path default_local_chain_path() {
  return bistro_home() / "chain.db";
}

std::unique_ptr<Chain> open_chain(const std::string& network) {
  if (network.empty()) return std::make_unique<LocalChain>(default_local_chain_path());
  if (network.rfind("file:", 0) == 0) return std::make_unique<LocalChain>(network.substr(5));
  const bool remote = network == "finney" || network == "test" || network == "local" ||
                      network.rfind("ws://", 0) == 0 || network.rfind("wss://", 0) == 0 ||
                      network.rfind("http://", 0) == 0 || network.rfind("https://", 0) == 0;
  if (remote) return std::make_unique<SubtensorChain>(network);
  if (std::filesystem::exists(network) || network.ends_with(".db"))
    return std::make_unique<LocalChain>(network);
  fail(
      "--subtensor.network {}: not a chain file and not finney, test, local or a ws:// or http:// "
      "URL",
      network);
}

}  // namespace bistro::chain
