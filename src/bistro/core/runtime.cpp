#include "bistro/core/runtime.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bistro/core/cpu_allocator.hpp"
#include "bistro/core/error.hpp"

namespace bistro {

BlasInfo detect_blas() {
  BlasInfo info;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = path.substr(path.rfind('/') + 1);
    if (base.rfind("libblas.so", 0) == 0 || base.rfind("libopenblas", 0) == 0 ||
        base.rfind("libmkl_rt", 0) == 0) {
      std::error_code ec;
      info.library = std::filesystem::canonical(path, ec).string();
      if (ec) info.library = path;
      break;
    }
  }
  using GetConfig = const char* (*)();
  if (auto f = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.description = f();  // "OpenBLAS 0.3.21 ... USE_OPENMP ..."
    if (info.description.rfind("OpenBLAS", 0) != 0)
      info.description = "OpenBLAS " + info.description;
  } else if (info.library.find("mkl") != std::string::npos) {
    info.description = "MKL";
  } else if (!info.library.empty()) {
    info.description = "reference BLAS";
    info.reference = true;
  } else {
    info.description = "no separate BLAS library loaded";
  }
  return info;
}

void init_runtime(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  // Reuse large CPU buffers across steps (cap: BISTRO_CPU_CACHE_MB, default 4096; 0 disables).
  std::size_t cache_mb = 4096;
  if (const char* env = std::getenv("BISTRO_CPU_CACHE_MB"))
    cache_mb = std::strtoull(env, nullptr, 10);
  install_caching_cpu_allocator(cache_mb << 20);
  static bool warned = false;
  const auto blas = detect_blas();
  if (blas.reference && !warned) {
    warned = true;
    fmt::print(stderr,
               "\n*** WARNING: libtorch is using the reference BLAS ({}), about 40x slower than "
               "OpenBLAS.\n*** Install libopenblas0-openmp (scripts/setup does) and select it with "
               "update-alternatives.\n\n",
               blas.library);
  }
}

c10::Device parse_device(std::string_view text) {
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text.rfind("cuda", 0) == 0) {
    int index = 0;
    if (text.size() > 4) {
      const auto rest = text.substr(4);
      auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), index);
      check(rest[0] == ':' && ec == std::errc() && p == rest.data() + rest.size() && index >= 0,
            "invalid --device '{}': expected cpu, cuda or cuda:N", text);
    }
    check(torch::cuda::is_available(),
          "--device {}: CUDA is not available in this build or machine", text);
    check(index < static_cast<int>(torch::cuda::device_count()),
          "--device {}: only {} CUDA device(s) present", text, torch::cuda::device_count());
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("invalid --device '{}': expected cpu, cuda or cuda:N", text);
}

}  // namespace bistro
