#include "bistro/runtime/cpu_allocator.hpp"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include "bistro/runtime/torch_compat.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace bistro {
namespace {

constexpr std::size_t kAlign = 64;       // libtorch's CPU alignment
constexpr std::size_t kHeader = kAlign;  // the block size lives just before the data
constexpr std::size_t kMinCached = 256 << 10;
constexpr std::size_t kGranule = 64 << 10;

struct Pool {
  std::mutex mu;
  std::unordered_map<std::size_t, std::vector<void*>> free_lists;  // size -> bases
  std::size_t cached = 0;
  std::size_t cap = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may be freed during static teardown
  return *p;
}

std::size_t rounded(std::size_t n) {
  return n < kMinCached ? n : (n + kGranule - 1) / kGranule * kGranule;
}

void free_block(void* data) {
  if (data == nullptr) return;
  void* base = static_cast<char*>(data) - kHeader;
  std::size_t size;
  std::memcpy(&size, base, sizeof size);
  if (size >= kMinCached) {
    auto& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.cached + size <= p.cap) {
      p.free_lists[size].push_back(base);
      p.cached += size;
      return;
    }
  }
  std::free(base);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) BISTRO_ALLOCATE_CONST override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n == 0) return {nullptr, nullptr, &free_block, cpu};
    const std::size_t size = rounded(n);
    void* base = nullptr;
    if (size >= kMinCached) {
      auto& p = pool();
      std::lock_guard<std::mutex> lock(p.mu);
      auto it = p.free_lists.find(size);
      if (it != p.free_lists.end() && !it->second.empty()) {
        base = it->second.back();
        it->second.pop_back();
        p.cached -= size;
      }
    }
    if (base == nullptr) {
      if (posix_memalign(&base, kAlign, size + kHeader) != 0) throw std::bad_alloc();
      std::memcpy(base, &size, sizeof size);
    }
    void* data = static_cast<char*>(base) + kHeader;
    return {data, data, &free_block, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &free_block; }

  // Required by libtorch 2.x's Allocator interface; harmless on 1.x.
  void copy_data(void* dest, const void* src, std::size_t count) const
#if BISTRO_TORCH2
      override
#endif
  {
    std::memcpy(dest, src, count);
  }
};

}  // namespace

void install_caching_cpu_allocator(std::size_t cap_bytes) {
  if (cap_bytes == 0) return;
  static CachingCpuAllocator allocator;
  {
    auto& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.cap = cap_bytes;
  }
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

std::size_t caching_cpu_allocator_cached_bytes() {
  auto& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.cached;
}

}  // namespace bistro
