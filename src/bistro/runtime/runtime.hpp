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

// Where a node computes: a device, and fp32 or bf16. bf16 means autocast: matrix products in bf16,
// parameters, optimizer state and reductions in fp32 (model/llama.hpp).
struct Compute {
  c10::Device device{c10::kCPU};
  bool bf16 = false;
  std::string describe() const;  // "cpu fp32", "cuda:0 bf16"
};
// --device and --dtype (fp32 or bf16). bf16 is tried on the device (a small bf16 product), so a
// device without it is refused here, by name.
Compute parse_compute(std::string_view device, std::string_view dtype);

// Whether e is libtorch running out of memory (on any device).
bool out_of_memory(const std::exception& e);
// One line for a failure: what() up to its first line break (libtorch's errors carry a
// backtrace), prefixed "out of memory: " when it is that.
std::string error_line(const std::exception& e);

}  // namespace bistro
