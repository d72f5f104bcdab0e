// The statistics the judge's tests rest on: paired per-sequence evidence, the own-page margin
// and its standard error, and Student's t. Torch-free and pure.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace bistro {

// The mean of n paired differences and its standard error: the evidence one update's effect rests
// on (sequences are the samples; pairing removes each sequence's own difficulty).
struct Evidence {
  double mean = 0, se = 0;
  size_t n = 0;
  // mean / se: +inf for a positive mean with se 0, -inf for a negative one, 0 for none.
  double t() const;
};
// Evidence of differences a[i] - b[i] (a and b of one size, >= 2).
Evidence paired_evidence(const std::vector<double>& a, const std::vector<double>& b);
// The evidence of a difference between two independent samples' means: a.mean - b.mean, the
// standard errors added in quadrature, the smaller n.
Evidence difference(const Evidence& a, const Evidence& b);
// The own-page margin and its evidence (docs/protocol.md, "The gauntlet", rule 5). Per own
// sequence x = before - after_own (the update's drop) and c = before - after_refs (the
// references' mean drop); per random sequence r = base - after_random and rr = base - refs_random.
// An update k = mean r / mean rr times as strong as its references on the random pages would,
// had it trained on no page in particular, lower the own pages k times as much as they do: the
// margin is mean x - k mean c (strength cancels, so a miner that ran fewer inner steps is not
// read as one without own-page work), its standard error by the delta method, k's own error from
// the random pages included. k is at least kMinStrengthRatio: an update that barely moves the
// random loss (noise) must still lower its own pages by half what the references do, not merely
// at all (sequences of one page are not independent, so a tiny consistent drop is no evidence).
// When the references do not lower the random loss (no k) it is the plain difference in
// differences: mean (x - c) - mean (r - rr), errors in quadrature.
inline constexpr double kMinStrengthRatio = 0.5;
// The most one window's t statistic adds to a miner's combined evidence (evidence_decay): an
// overwhelming window (t 20) must not carry a miner that stopped working for many windows.
inline constexpr double kEvidenceCap = 4.0;
Evidence own_margin_evidence(const std::vector<double>& before,
                             const std::vector<double>& after_own,
                             const std::vector<double>& after_refs, const std::vector<double>& base,
                             const std::vector<double>& after_random,
                             const std::vector<double>& refs_random);
// k above from the two means (NAN when d_random_ref is not positive).
double strength_ratio(double d_random, double d_random_ref);
// One-sided tests at error rate alpha (Student's t with n - 1 degrees of freedom); with fewer
// than two samples they read the sign of `mean` alone.
bool significantly_negative(const Evidence& e, double mean, double alpha);
bool significantly_positive(const Evidence& e, double mean, double alpha);
// The one-sided critical value of Student's t with `dof` degrees of freedom: P(T > t) = alpha
// (Hill's expansion around the normal quantile; within 1% of the exact value for dof >= 3).
double t_critical(double alpha, size_t dof);
// The standard deviation of Student's t with `dof` (> 2) degrees of freedom: sqrt(dof / (dof - 2)).
double student_t_sd(double dof);

}  // namespace bistro
