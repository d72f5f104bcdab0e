#include "bistro/train/text_batches.hpp"

#include <algorithm>
#include <filesystem>

#include "bistro/core/error.hpp"
#include "bistro/core/files.hpp"

namespace bistro {

TextBatches::TextBatches(std::string text, int64_t batch, int64_t seq_len, uint64_t seed)
    : text_(std::move(text)), batch_(batch), seq_len_(seq_len), stream_(seed) {
  check(batch > 0 && seq_len > 0, "batch and sequence length must be positive");
  check(static_cast<int64_t>(text_.size()) > seq_len + 1,
        "text of {} bytes is too short for sequences of {}", text_.size(), seq_len);
}

Batch TextBatches::next() {
  auto window = torch::empty({batch_, seq_len_ + 1}, torch::kInt64);
  auto* w = window.data_ptr<int64_t>();
  const uint64_t starts = text_.size() - static_cast<uint64_t>(seq_len_);
  for (int64_t b = 0; b < batch_; ++b) {
    const uint64_t start = stream_.below(starts);
    for (int64_t t = 0; t <= seq_len_; ++t) {
      w[b * (seq_len_ + 1) + t] = static_cast<unsigned char>(text_[start + t]) + 3;
    }
  }
  return {window.narrow(1, 0, seq_len_).contiguous(), window.narrow(1, 1, seq_len_).contiguous()};
}

std::string bundled_text() {
  namespace fs = std::filesystem;
  const fs::path dir = "/usr/share/common-licenses";
  std::vector<fs::path> files;
  if (fs::is_directory(dir)) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
  }
  check(!files.empty(), "no bundled text found in {} (install base-files)", dir.string());
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) text += read_file(f) + "\n";
  return text;
}

}  // namespace bistro
