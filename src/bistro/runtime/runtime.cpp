#include "bistro/runtime/runtime.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bistro/core/error.hpp"
#include "bistro/runtime/cpu_allocator.hpp"

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
  } else if (at::globalContext().hasMKL()) {
    // PyTorch's own wheels link MKL into libtorch_cpu: no separate library to find.
    info.library = "libtorch_cpu (MKL linked in)";
    info.description = "MKL";
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

std::string Compute::describe() const {
  return fmt::format("{} {}", device.str(), bf16 ? "bf16" : "fp32");
}

Compute parse_compute(std::string_view device, std::string_view dtype) {
  Compute c;
  c.device = parse_device(device);
  check(dtype == "fp32" || dtype == "bf16", "invalid --dtype '{}': expected fp32 or bf16", dtype);
  c.bf16 = dtype == "bf16";
  if (c.bf16) {
    try {
      const auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(c.device);
      const auto x = torch::ones({8, 8}, opts);
      const double s = torch::matmul(x, x).sum().item<double>();
      check(s == 512.0, "a bf16 product gave {} instead of 512", s);
    } catch (const std::exception& e) {
      const std::string why = e.what();
      fail("--dtype bf16: {} does not support bf16: {}", device, why.substr(0, why.find('\n')));
    }
  }
  return c;
}

std::string error_line(const std::exception& e) {
  std::string what = e.what();
  what = what.substr(0, what.find('\n'));
  return out_of_memory(e) && what.find("out of memory") == std::string::npos
             ? "out of memory: " + what
             : what;
}

bool out_of_memory(const std::exception& e) {
  const std::string_view what = e.what();
  return what.find("out of memory") != std::string_view::npos ||
         what.find("OutOfMemory") != std::string_view::npos ||
         dynamic_cast<const std::bad_alloc*>(&e) != nullptr;
}

}  // namespace bistro
