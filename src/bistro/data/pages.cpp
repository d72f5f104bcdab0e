#include "bistro/data/pages.hpp"

#include "bistro/core/error.hpp"
#include "bistro/core/rng.hpp"

namespace bistro {

std::vector<Page> pages(uint64_t key, size_t n, const std::vector<ConfigInfo>& configs,
                        uint64_t page_rows) {
  check(page_rows > 0, "pages: page_rows must be positive");
  std::vector<uint64_t> starts;  // valid start offsets per config
  uint64_t total = 0;
  for (size_t i = 0; i < configs.size(); ++i) {
    check(i == 0 || configs[i - 1].name < configs[i].name,
          "pages: configs must be sorted by name and unique ('{}')", configs[i].name);
    const uint64_t s = configs[i].num_rows >= page_rows ? configs[i].num_rows - page_rows + 1 : 0;
    starts.push_back(s);
    total += s;
  }
  check(total > 0, "pages: no config holds a full page of {} rows", page_rows);
  rng::Stream stream(key);
  std::vector<Page> out;
  out.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    uint64_t u = stream.below(total);
    size_t c = 0;
    while (u >= starts[c]) u -= starts[c++];
    out.push_back({configs[c].name, u});
  }
  return out;
}

uint64_t local_pages_key(uint64_t window, uint64_t uid) {
  return rng::derive(rng::derive(rng::hash("bistro/pages/local"), window), uid);
}

uint64_t global_pages_key(uint64_t window, std::span<const uint8_t> block_hash) {
  const std::string_view bytes(reinterpret_cast<const char*>(block_hash.data()), block_hash.size());
  return rng::derive(rng::derive(rng::hash("bistro/pages/global"), window), rng::hash(bytes));
}

uint64_t held_out_pages_key() {
  const std::string_view seed = "bistro/validator-eval";
  return global_pages_key(UINT64_MAX, {reinterpret_cast<const uint8_t*>(seed.data()), seed.size()});
}

}  // namespace bistro
