#include "bistro/core/runtime.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bistro/core/cpu_allocator.hpp"
#include "bistro/core/error.hpp"

namespace bistro {
namespace {

// scripts/setup selects OpenBLAS; the reference BLAS here would make every benchmark meaningless.
TEST(Runtime, LibtorchCallsOpenBlas) {
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // make sure BLAS is loaded
  const auto blas = detect_blas();
  EXPECT_FALSE(blas.library.empty());
  EXPECT_FALSE(blas.reference) << blas.library;
  EXPECT_NE(blas.description.find("OpenBLAS"), std::string::npos) << blas.description;
}

TEST(Runtime, SetsTheThreadCount) {
  init_runtime(2);
  EXPECT_EQ(torch::get_num_threads(), 2);
  init_runtime(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  init_runtime(0);
  EXPECT_GE(torch::get_num_threads(), 1);
}

TEST(Runtime, ParsesDevices) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda0", "CPU", ""}) {
    EXPECT_THROW(parse_device(bad), Error) << bad;
  }
  if (!torch::cuda::is_available()) {
    try {
      parse_device("cuda:0");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos);
    }
  } else {
    EXPECT_TRUE(parse_device("cuda").is_cuda());
    EXPECT_THROW(parse_device("cuda:4096"), Error);
  }
}

TEST(Runtime, CachingAllocatorReusesLargeBlocks) {
  install_caching_cpu_allocator(64 << 20);
  void* first = nullptr;
  {
    auto t = torch::empty({1 << 18}, torch::kFloat32);  // 1 MiB
    first = t.data_ptr();
    t.fill_(3.0f);
  }
  const auto cached = caching_cpu_allocator_cached_bytes();
  EXPECT_GE(cached, 1u << 20);
  auto again = torch::empty({1 << 18}, torch::kFloat32);
  EXPECT_EQ(again.data_ptr(), first);  // the same block, no fresh pages
  EXPECT_EQ(caching_cpu_allocator_cached_bytes(), cached - (1u << 20));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data_ptr()) % 64, 0u);
  // Small and over-cap blocks are not kept.
  { auto small = torch::empty({16}, torch::kFloat32); }
  { auto huge = torch::empty({1 << 25}, torch::kFloat32); }  // 128 MiB > cap
  EXPECT_EQ(caching_cpu_allocator_cached_bytes(), cached - (1u << 20));
}

}  // namespace
}  // namespace bistro
