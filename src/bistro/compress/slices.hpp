// Slices (BISTRO seeds 000-002): from every parameter tensor, max(1, numel / compression) values at
// positions drawn from a seed that exists only once the window has ended (the hash of its last
// block), so a miner cannot upload untrained values in advance. Merge: each selected position
// takes the mean of the gathered slices' values.
//
// Position selection (docs/protocol.md): the tensor's flat range [0, n) is cut into k strata
// [floor(j n / k), floor((j + 1) n / k)); stratum j contributes one position, lo + mulhi64(
// at(key, j), hi - lo). Positions are distinct and ascending, every position has inclusion
// probability ~k/n, and the work is O(k) and parallel.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace bistro {

// The window's slice key: derive(derive(hash("bistro/slices"), window), hash(block_hash)).
uint64_t slice_key(uint64_t window, std::span<const uint8_t> block_hash);

// k for a tensor of `numel` elements.
uint64_t slice_count(uint64_t numel, uint64_t compression);

// The ascending flat positions of one tensor (key = derive(slice_key, tensor name)).
std::vector<int64_t> slice_positions(uint64_t key, std::string_view name, uint64_t numel,
                                     uint64_t compression);

}  // namespace bistro
