#include "bistro/compress/slices.hpp"

#include "bistro/core/error.hpp"
#include "bistro/core/rng.hpp"

namespace bistro {

uint64_t slice_key(uint64_t window, std::span<const uint8_t> block_hash) {
  const std::string_view bytes(reinterpret_cast<const char*>(block_hash.data()), block_hash.size());
  return rng::derive(rng::derive(rng::hash("bistro/slices"), window), rng::hash(bytes));
}

uint64_t slice_count(uint64_t numel, uint64_t compression) {
  check(compression >= 1, "slice compression must be at least 1");
  return numel == 0 ? 0 : std::max<uint64_t>(1, numel / compression);
}

std::vector<int64_t> slice_positions(uint64_t key, std::string_view name, uint64_t numel,
                                     uint64_t compression) {
  const uint64_t k = slice_count(numel, compression);
  const uint64_t tk = rng::derive(key, name);
  std::vector<int64_t> out(k);
  for (uint64_t j = 0; j < k; ++j) {
    const uint64_t lo = static_cast<uint64_t>((static_cast<unsigned __int128>(j) * numel) / k);
    const uint64_t hi = static_cast<uint64_t>((static_cast<unsigned __int128>(j + 1) * numel) / k);
    const uint64_t r =
        static_cast<uint64_t>((static_cast<unsigned __int128>(rng::at(tk, j)) * (hi - lo)) >> 64);
    out[j] = static_cast<int64_t>(lo + r);
  }
  return out;
}

}  // namespace bistro
