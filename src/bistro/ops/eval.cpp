#include "bistro/ops/eval.hpp"

#include <fmt/format.h>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"
#include "bistro/protocol/catch_up.hpp"
#include "bistro/protocol/neuron.hpp"
#include "bistro/protocol/outer_step.hpp"
#include "bistro/protocol/window.hpp"
#include "bistro/storage/s3_bucket.hpp"
#include "bistro/train/checkpoint.hpp"

namespace bistro {
namespace fs = std::filesystem;

fs::path fetch_published_checkpoint(const std::string& url, const fs::path& cache_dir,
                                    uint64_t* window) {
  auto bucket = open_bucket(url);
  const auto pointer = read_checkpoint_pointer(*bucket, url);
  check(pointer.has_value(), "{}: no published checkpoint ({} is missing)", url,
        kLatestCheckpointKey);
  const auto dir = cache_dir / fmt::format("{:010}", pointer->window);
  // A cached copy counts only if it is this checkpoint (the same window may be published anew).
  if (!fs::exists(dir / "COMPLETE") || read_file(dir / "COMPLETE") != pointer->params_hash) {
    fs::remove(dir / "COMPLETE");
    download_checkpoint(*bucket, url, pointer->window, dir);
    auto model = load_model(dir, torch::kCPU);
    const auto got = params_hash(parameter_tensors(model));
    check(got == pointer->params_hash,
          "{}: the checkpoint of window {} hashes {}, its pointer says {}", url, pointer->window,
          got, pointer->params_hash);
    write_file_atomic(dir / "COMPLETE", got);
  }
  if (window) *window = pointer->window;
  return dir;
}

}  // namespace bistro
