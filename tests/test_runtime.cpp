#include "bistro/runtime/runtime.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "bistro/core/error.hpp"
#include "bistro/runtime/cpu_allocator.hpp"

namespace bistro {
namespace {

// scripts/setup selects OpenBLAS for Debian's libtorch; PyTorch's wheels (libtorch 2.x) carry
// MKL. The reference BLAS here would make every benchmark meaningless.
TEST(Runtime, LibtorchCallsAFastBlas) {
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // make sure BLAS is loaded
  const auto blas = detect_blas();
  EXPECT_FALSE(blas.library.empty());
  EXPECT_FALSE(blas.reference) << blas.library;
  const bool fast = blas.description.find("OpenBLAS") != std::string::npos ||
                    (TORCH_VERSION_MAJOR >= 2 && blas.description == "MKL");
  EXPECT_TRUE(fast) << blas.description;
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

TEST(Runtime, ParsesComputeAndRefusesWhatTheMachineLacks) {
  EXPECT_FALSE(parse_compute("cpu", "fp32").bf16);
  const Compute c = parse_compute("cpu", "bf16");  // libtorch's CPU kernels have bf16
  EXPECT_TRUE(c.bf16);
  EXPECT_EQ(c.describe(), "cpu bf16");
  try {
    parse_compute("cpu", "fp16");
    FAIL() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--dtype 'fp16'"), std::string::npos) << e.what();
  }
  if (!torch::cuda::is_available()) {
    try {
      parse_compute("cuda", "bf16");
      FAIL() << "cuda accepted on a machine without it";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(out_of_memory(std::runtime_error("CUDA out of memory. Tried to allocate 2 GiB")));
  EXPECT_FALSE(out_of_memory(std::runtime_error("shape mismatch")));
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
