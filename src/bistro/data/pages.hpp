// Pages: which rows a miner trains on in a window, and which rows a validator checks it on.
// A page is (config, row offset) covering rows [offset, offset + page_rows) (BISTRO: 100 rows,
// the datasets-server's page). Selection is a pure function of public inputs over the portable
// RNG (docs/protocol.md), so every node rebuilds the same pages.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bistro/data/dataset.hpp"

namespace bistro {

struct Page {
  std::string config;
  uint64_t offset = 0;
  bool operator==(const Page&) const = default;
};

constexpr uint64_t kPageRows = 100;

// n pages drawn independently with replacement: every valid start (config, offset) with
// offset + page_rows <= num_rows is equally likely. Configs shorter than a page cannot be drawn.
// configs must be sorted by name (Dataset::configs() is). Throws if no config holds a page.
std::vector<Page> pages(uint64_t key, size_t n, const std::vector<ConfigInfo>& configs,
                        uint64_t page_rows = kPageRows);

// The key of a miner's own pages in a window: derive(derive(hash("bistro/pages/local"), window),
// uid). Consecutive windows give independent draws (BISTRO used offset = window, so window w+1
// repeated 2 of window w's 3 pages).
uint64_t local_pages_key(uint64_t window, uint64_t uid);
// The key of a window's global (evaluation) pages: also keyed by the hash of the window's last
// block, which no miner knows while it trains.
uint64_t global_pages_key(uint64_t window, std::span<const uint8_t> block_hash);
// The key of the fixed held-out pages (the validator's held-out loss, `bistro eval`):
// global_pages_key(2^64 - 1, the bytes of "bistro/validator-eval").
uint64_t held_out_pages_key();

}  // namespace bistro
