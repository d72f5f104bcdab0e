// From pages to batches: fetch each page's rows, tokenise them as documents, lay them out.
#pragma once

#include <vector>

#include "bistro/data/batches.hpp"
#include "bistro/data/dataset.hpp"
#include "bistro/data/pages.hpp"
#include "bistro/data/tokenizer.hpp"

namespace bistro {

struct PageBatchOptions {
  int64_t batch_rows = 8;
  int64_t seq_len = 128;
  BatchLayout layout = BatchLayout::Packed;
  uint64_t page_rows = kPageRows;
};

// The documents of the pages, in page order then row order, tokenised (BOS ... EOS, truncated to
// seq_len + 1 tokens in the padded layout).
std::vector<std::vector<int32_t>> page_documents(Dataset& dataset, const Tokenizer& tokenizer,
                                                 const std::vector<Page>& pages,
                                                 const PageBatchOptions& options);

std::vector<TokenBatch> page_batches(Dataset& dataset, const Tokenizer& tokenizer,
                                     const std::vector<Page>& pages,
                                     const PageBatchOptions& options, LayoutStats* stats = nullptr);

}  // namespace bistro
