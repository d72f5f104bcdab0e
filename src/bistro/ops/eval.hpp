// `bistro eval` of the master's published model: its latest checkpoint fetched from the
// validator's bucket, then read by train/evaluate.hpp (held-out loss, perplexity, tasks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace bistro {

// The master's latest published checkpoint in a bucket (checkpoints/latest.json): its files
// downloaded into cache_dir/<window> unless there already, its params_hash checked against the
// pointer's. Returns the directory; window receives its window. Throws bistro::Error naming the
// bucket and the reason.
std::filesystem::path fetch_published_checkpoint(const std::string& bucket_url,
                                                 const std::filesystem::path& cache_dir,
                                                 uint64_t* window = nullptr);

}  // namespace bistro
