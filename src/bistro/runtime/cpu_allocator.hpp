// A caching CPU allocator for libtorch. A training step allocates the same large buffers every
// step (activations, gradients, logits); glibc hands blocks above its mmap threshold back to the
// kernel on free, so each step faults in and zeroes hundreds of MB of fresh pages again. This
// allocator keeps freed blocks of 256 KiB and more (rounded to 64 KiB) in exact-size free lists and
// reuses them, up to a byte cap; smaller blocks and anything over the cap go to malloc/free.
#pragma once

#include <cstddef>

namespace bistro {

// Installs the caching allocator as libtorch's CPU allocator (idempotent). cap_bytes = 0 leaves
// libtorch's default allocator in place. Blocks allocated before installation are freed by the
// allocator that made them.
void install_caching_cpu_allocator(std::size_t cap_bytes);

// Bytes currently held in the free lists (for tests and reports).
std::size_t caching_cpu_allocator_cached_bytes();

}  // namespace bistro
