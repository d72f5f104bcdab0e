// Helpers shared by the libtorch tests.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace bistro::test {

// A fresh directory under the system temp dir, removed at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() /
            ("bistro_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

inline std::string source_dir() {
  const char* d = std::getenv("BISTRO_SOURCE_DIR");
  return d ? d : ".";
}

// ||a - b|| / ||b||.
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto ad = a.to(torch::kFloat64), bd = b.to(torch::kFloat64);
  const double denom = bd.norm().item<double>();
  return (ad - bd).norm().item<double>() / (denom > 0 ? denom : 1.0);
}

}  // namespace bistro::test
