// Caches keyed by window keep only their newest entries. Trimming must never evict the entry the
// caller is about to use: a node that replays old windows (catch-up from a checkpoint) asks for a
// window older than every cached one, and evicting "the oldest" then freed the entry it had just
// made, leaving the caller a dangling reference.
#pragma once

#include <cstddef>
#include <iterator>

namespace bistro {

// Erases the lowest keys of `m` other than `keep` until at most `limit` entries remain (or only
// `keep` is left). Iterators and references to `keep`'s entry stay valid (std::map).
template <class Map>
void trim_oldest(Map& m, size_t limit, const typename Map::key_type& keep) {
  for (auto it = m.begin(); m.size() > limit && it != m.end();)
    it = it->first == keep ? std::next(it) : m.erase(it);
}

}  // namespace bistro
