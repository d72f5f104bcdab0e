#include "bistro/data/page_batches.hpp"

namespace bistro {

std::vector<std::vector<int32_t>> page_documents(Dataset& dataset, const Tokenizer& tokenizer,
                                                 const std::vector<Page>& pages,
                                                 const PageBatchOptions& o) {
  // Packed rows take documents whole; padded rows keep at most seq_len + 1 tokens of each.
  const size_t max_tokens =
      o.layout == BatchLayout::Padded ? static_cast<size_t>(o.seq_len) + 1 : size_t{1} << 20;
  std::vector<std::vector<int32_t>> docs;
  for (const auto& p : pages) {
    for (const auto& row : dataset.rows(p.config, p.offset, o.page_rows)) {
      docs.push_back(tokenizer.encode_document(row, max_tokens));
    }
  }
  return docs;
}

std::vector<TokenBatch> page_batches(Dataset& dataset, const Tokenizer& tokenizer,
                                     const std::vector<Page>& pages, const PageBatchOptions& o,
                                     LayoutStats* stats) {
  return layout_batches(page_documents(dataset, tokenizer, pages, o), o.batch_rows, o.seq_len,
                        o.layout, tokenizer.eos_id(), stats);
}

}  // namespace bistro
