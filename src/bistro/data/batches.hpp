// Batches: tokenised documents laid out as (rows, seq_len) inputs and next-token targets, in
// BISTRO's layout (one document per row, padded with EOS, pad targets -100) or packed (documents
// concatenated and cut into rows, no padding). torch-free: the trainer turns them into tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bistro {

enum class BatchLayout { Padded, Packed };
BatchLayout parse_layout(const std::string& name);  // "padded" | "packed"

struct TokenBatch {
  int64_t rows = 0, seq_len = 0;
  std::vector<int64_t> inputs;   // rows x seq_len
  std::vector<int64_t> targets;  // rows x seq_len, -100 where no loss is taken
};

struct LayoutStats {
  uint64_t documents = 0;
  uint64_t tokens = 0;     // document tokens laid out (BOS and EOS included)
  uint64_t targets = 0;    // counted targets
  uint64_t slots = 0;      // rows x seq_len
  uint64_t truncated = 0;  // documents cut at seq_len + 1 tokens (padded layout)
  double padding_fraction() const {
    return slots ? 1.0 - static_cast<double>(targets) / static_cast<double>(slots) : 0.0;
  }
};

// Each document is BOS ... EOS (Tokenizer::encode_document). Rows are grouped into batches of at
// most batch_rows; stats (optional) accumulate.
std::vector<TokenBatch> layout_batches(const std::vector<std::vector<int32_t>>& documents,
                                       int64_t batch_rows, int64_t seq_len, BatchLayout layout,
                                       int32_t pad_id, LayoutStats* stats = nullptr);

}  // namespace bistro
