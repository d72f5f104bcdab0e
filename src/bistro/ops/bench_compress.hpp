// `bistro bench compress`: one window of update traffic for a preset's shapes: encode (momentum,
// chunked DCT, top-k, error feedback, or slice gathering), serialise + sign, decode + verify, and
// merge `peers` updates; plus bytes on the wire against the fp32 model. Steady state: buffers are
// allocated before the clock starts; each peer encodes its own random gradient (so the merged
// peers send different coefficients); times are medians (encode, serialise, decode over the
// peers, merge over `repeats` runs).
#pragma once

#include <cstdint>
#include <string>

namespace bistro {

struct CompressBenchOptions {
  std::string preset = "small";
  std::string codec = "dct-topk";
  int64_t k = 32;       // dct: per chunk; slice: compression
  int value_bits = 32;  // dct: 32, 8 or 2
  int index_bits = 32;  // dct: 32 or 12
  int layers = -1;      // keep only this many decoder layers' shapes (-1: all)
  int peers = 4;
  int threads = 0;
  int repeats = 3;
};

struct CompressBenchResult {
  double encode_s = 0, serialize_s = 0, decode_s = 0, merge_s = 0;
  uint64_t wire_bytes = 0, model_bytes = 0;
  int64_t parameters = 0;
};

CompressBenchResult run_compress_bench(const CompressBenchOptions& options);

}  // namespace bistro
