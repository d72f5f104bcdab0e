// Runtime setup for libtorch: thread count, BLAS check, device selection.
#pragma once

#include <c10/core/Device.h>

#include <string>
#include <string_view>

namespace bistro {

struct BlasInfo {
  std::string library;      // resolved path of the BLAS actually loaded ("" if none found)
  std::string description;  // e.g. "OpenBLAS 0.3.21 ... (openmp)"
  bool reference = false;   // Debian's netlib reference BLAS: ~40x slower
};

// Which BLAS libtorch really calls, read from this process's memory map.
BlasInfo detect_blas();

// Sets libtorch's intra-op thread count (libtorch defaults to 1 here), installs the caching CPU
// allocator (core/cpu_allocator.hpp), and warns loudly, once, when the BLAS is the reference one.
// threads <= 0 means "all cores".
void init_runtime(int threads);

// "cpu", "cuda" or "cuda:N"; throws bistro::Error for anything else or an unavailable CUDA device.
c10::Device parse_device(std::string_view text);

}  // namespace bistro
