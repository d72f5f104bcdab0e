#include "bistro/data/batches.hpp"

#include <algorithm>

#include "bistro/core/error.hpp"

namespace bistro {

BatchLayout parse_layout(const std::string& name) {
  if (name == "padded") return BatchLayout::Padded;
  if (name == "packed") return BatchLayout::Packed;
  fail("unknown batch layout '{}' (padded or packed)", name);
}

namespace {
// Appends one row: inputs = tokens[0, seq_len), targets = tokens[1, seq_len + 1), with pad/-100
// where the row's tokens run out.
void append_row(TokenBatch& b, const int32_t* tokens, int64_t n, int32_t pad_id,
                LayoutStats* stats) {
  for (int64_t i = 0; i < b.seq_len; ++i) {
    b.inputs.push_back(i < n ? tokens[i] : pad_id);
    b.targets.push_back(i + 1 < n ? tokens[i + 1] : -100);
  }
  ++b.rows;
  if (stats) {
    stats->slots += static_cast<uint64_t>(b.seq_len);
    stats->targets += static_cast<uint64_t>(std::clamp<int64_t>(n - 1, 0, b.seq_len));
  }
}
}  // namespace

std::vector<TokenBatch> layout_batches(const std::vector<std::vector<int32_t>>& documents,
                                       int64_t batch_rows, int64_t seq_len, BatchLayout layout,
                                       int32_t pad_id, LayoutStats* stats) {
  check(batch_rows > 0 && seq_len > 0, "batch rows and sequence length must be positive");
  std::vector<TokenBatch> out;
  auto row_target = [&]() -> TokenBatch& {
    if (out.empty() || out.back().rows == batch_rows) {
      out.emplace_back();
      out.back().seq_len = seq_len;
    }
    return out.back();
  };
  if (stats) stats->documents += documents.size();
  if (layout == BatchLayout::Padded) {
    for (const auto& d : documents) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(d.size()), seq_len + 1);
      if (stats) {
        stats->tokens += d.size();
        stats->truncated += static_cast<int64_t>(d.size()) > seq_len + 1;
      }
      append_row(row_target(), d.data(), n, pad_id, stats);
    }
  } else {
    std::vector<int32_t> stream;
    for (const auto& d : documents) stream.insert(stream.end(), d.begin(), d.end());
    if (stats) stats->tokens += stream.size();
    // Rows of seq_len + 1 tokens, stepping by seq_len + 1: every token is an input or a target
    // of exactly one row; the tail becomes a shorter, padded row.
    for (size_t pos = 0; pos + 1 < stream.size(); pos += static_cast<size_t>(seq_len) + 1) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(stream.size() - pos), seq_len + 1);
      append_row(row_target(), stream.data() + pos, n, pad_id, stats);
    }
  }
  return out;
}

}  // namespace bistro
