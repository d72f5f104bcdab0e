// Choosing a chain from --subtensor.network: the embedded LocalChain for a file, or the real
// network (finney, test, local, ws:// or http://) through the subtensor client.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "bistro/chain/chain.hpp"

namespace bistro::chain {

// $BISTRO_HOME/chain.db (BISTRO_HOME defaults to ~/.bistro).
std::filesystem::path default_local_chain_path();

// "" -> the default local chain file; "file:PATH", or any spec that names an existing file or ends
// in ".db" -> that local chain; "finney", "test", "local", ws:// and http(s):// URLs -> the
// subtensor client. Throws bistro::Error naming the spec when it cannot be opened.
std::unique_ptr<Chain> open_chain(const std::string& network);

}  // namespace bistro::chain
