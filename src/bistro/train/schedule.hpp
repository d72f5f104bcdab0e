// Learning-rate schedule: linear warmup, then cosine decay to a floor. BISTRO steps it once per
// window (one optimiser step per window).
#pragma once

#include <cstdint>

namespace bistro {

struct Schedule {
  double lr = 7.5e-5;         // peak learning rate (BISTRO's)
  int64_t warmup_steps = 0;   // linear from lr/warmup to lr over these steps
  int64_t total_steps = 0;    // cosine reaches min_lr here; 0 = constant after warmup
  double min_lr_ratio = 0.1;  // floor as a fraction of lr

  // Learning rate for optimiser step `step` (0-based).
  double at(int64_t step) const;
};

}  // namespace bistro
