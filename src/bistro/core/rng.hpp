// The portable RNG: every random choice two nodes must agree on (initial weights, pages, slice
// indices) comes from here, never from std:: distributions, whose output differs between standard
// libraries. Everything is a pure function of (key, counter) built from integer arithmetic and
// IEEE-754 double +, -, *, / only, compiled without FMA contraction, so results are bit-identical
// on every platform and compiler. docs/protocol.md specifies each function exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bistro::rng {

// SplitMix64's output function: a bijective 64-bit mixer.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The counter-based generator: word `counter` of the stream named `key`.
constexpr uint64_t at(uint64_t key, uint64_t counter) {
  return mix64(mix64(key) + (counter + 1) * 0x9e3779b97f4a7c15ULL);
}

// FNV-1a 64 over the bytes, then mix64: turns names ("model.norm.weight") into keys.
constexpr uint64_t hash(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

// Derives a key from a parent key and a name, e.g. derive(seed,
// "model.layers.0.mlp.up_proj.weight").
constexpr uint64_t derive(uint64_t key, std::string_view name) {
  return mix64(key ^ hash(name));
}
constexpr uint64_t derive(uint64_t key, uint64_t value) {
  return at(key, value);
}

// A uniform double in the open interval (0, 1): ((w >> 11) + 0.5) / 2^53.
double uniform(uint64_t key, uint64_t counter);

// Element i of the standard normal stream `key` (Box-Muller over counters 2*(i/2) and 2*(i/2)+1;
// even i takes the cosine branch, odd i the sine branch). Deterministic log and sincos.
double normal(uint64_t key, uint64_t i);

// out[j] = (float)(mean + std * normal(key, first + j)) for j in [0, n).
void fill_normal(float* out, std::size_t n, uint64_t key, uint64_t first, double mean, double std);

// The deterministic elementary functions behind normal(), exposed for tests.
double det_log(double x);                               // x > 0
void det_sincos_turns(double t, double* s, double* c);  // sin and cos of 2*pi*t, t in [0, 1)

// A sequential stream over `at`: next() returns at(key, 0), at(key, 1), ...
class Stream {
 public:
  explicit Stream(uint64_t key) : key_(key) {}
  uint64_t next() { return at(key_, counter_++); }
  // Uniform integer in [0, n), n > 0, by rejection (no modulo bias).
  uint64_t below(uint64_t n);
  double uniform() { return rng::uniform(key_, counter_++); }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace bistro::rng
