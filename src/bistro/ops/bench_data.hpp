// `bistro bench data`: tokenise + lay out throughput on the corpus, side by side with
// SentencePiece's own spm_encode on the same text in the same run.
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

class Dataset;
class Tokenizer;

struct DataBenchResult {
  uint64_t documents = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;
  double bistro_seconds = 0;  // encode + packed layout, one thread
  double spm_seconds = 0;     // spm_encode --output_format=id over the same lines
};

// Uses up to max_documents documents (configs in order), newlines folded to spaces because
// spm_encode reads one sentence per line.
DataBenchResult run_data_bench(Dataset& dataset, const Tokenizer& tokenizer,
                               const std::string& model_path, uint64_t max_documents,
                               int64_t seq_len);

}  // namespace bistro
