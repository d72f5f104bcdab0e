#include "bistro/core/runtime.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

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

}  // namespace
}  // namespace bistro
