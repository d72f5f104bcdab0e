// Each step below mirrors one step of subtensor's epoch_mechanism, in its order and with its
// rounding; the comments name the chain's step so the two can be read side by side.
#include "bistro/chain/yuma.hpp"

#include <algorithm>
#include <numeric>

#include "bistro/chain/fixed.hpp"

namespace bistro::chain {
namespace {

using Fx = I32F32;
using Row = std::vector<std::pair<uint16_t, Fx>>;
using Matrix = std::vector<Row>;

Fx sum(const std::vector<Fx>& v) {
  Fx s;
  for (Fx x : v) s = sat_add(s, x);
  return s;
}

void normalize(std::vector<Fx>& v) {
  Fx s = sum(v);
  if (s == Fx::zero()) return;
  for (Fx& x : v) x = safe_div(x, s);
}

void row_normalize(Matrix& m) {
  for (Row& row : m) {
    Fx s;
    for (auto& [j, v] : row) s = sat_add(s, v);
    if (s > Fx::zero())
      for (auto& [j, v] : row) v = safe_div(v, s);
  }
}

void col_normalize(Matrix& m, size_t n) {
  std::vector<Fx> col(n);
  for (const Row& row : m)
    for (auto& [j, v] : row)
      if (j < n) col[j] = sat_add(col[j], v);
  for (Row& row : m)
    for (auto& [j, v] : row)
      if (j < n && col[j] != Fx::zero()) v = safe_div(v, col[j]);
}

void col_max_upscale(Matrix& m, size_t n) {
  std::vector<Fx> col(n);
  for (const Row& row : m)
    for (auto& [j, v] : row)
      if (j < n && col[j] < v) col[j] = v;
  for (Row& row : m)
    for (auto& [j, v] : row)
      if (j < n && col[j] != Fx::zero()) v = safe_div(v, col[j]);
}

std::vector<Fx> row_sums(const Matrix& m) {
  std::vector<Fx> out(m.size());
  for (size_t i = 0; i < m.size(); ++i)
    for (auto& [j, v] : m[i]) out[i] = sat_add(out[i], v);
  return out;
}

// r_j = sum_i s_i * m_ij
std::vector<Fx> matmul(const Matrix& m, const std::vector<Fx>& s, size_t n) {
  std::vector<Fx> out(n);
  for (size_t i = 0; i < m.size() && i < s.size(); ++i)
    for (auto& [j, v] : m[i])
      if (j < n) out[j] = sat_add(out[j], sat_mul(s[i], v));
  return out;
}

// Stake-weighted median by mid-pivot partitioning, exactly as subtensor's weighted_median.
Fx weighted_median(const std::vector<Fx>& stake, const std::vector<Fx>& score,
                   std::vector<size_t> part, Fx minority, Fx lo, Fx hi) {
  const size_t limit = part.size();
  std::vector<size_t> lower, upper;
  for (size_t iteration = 0;; ++iteration) {
    if (part.empty()) return Fx::zero();
    if (part.size() == 1) return score[part[0]];
    Fx pivot = score[part[part.size() / 2]];
    Fx lo_stake, hi_stake;
    for (size_t idx : part) {
      if (score[idx] == pivot) continue;
      if (score[idx] < pivot) {
        lo_stake = sat_add(lo_stake, stake[idx]);
        lower.push_back(idx);
      } else {
        hi_stake = sat_add(hi_stake, stake[idx]);
        upper.push_back(idx);
      }
    }
    if (minority < sat_add(lo, lo_stake) && !lower.empty()) {
      part = lower;
      hi = sat_add(lo, lo_stake);
    } else if (sat_sub(hi, hi_stake) <= minority && !upper.empty()) {
      part = upper;
      lo = sat_sub(hi, hi_stake);
    } else {
      return pivot;
    }
    lower.clear();
    upper.clear();
    if (iteration + 1 > limit) return Fx::zero();
  }
}

std::vector<Fx> weighted_median_col(const std::vector<Fx>& stake, const Matrix& w, size_t n,
                                    Fx majority) {
  std::vector<Fx> use_stake;
  for (Fx s : stake)
    if (s > Fx::zero()) use_stake.push_back(s);
  normalize(use_stake);
  Fx stake_sum = sum(use_stake);
  Fx minority = sat_sub(stake_sum, majority);
  std::vector<size_t> idx(use_stake.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<std::vector<Fx>> score(n, std::vector<Fx>(use_stake.size()));
  size_t k = 0;
  for (size_t i = 0; i < stake.size() && i < w.size(); ++i) {
    if (!(stake[i] > Fx::zero())) continue;
    for (auto& [j, v] : w[i])
      if (j < n) score[j][k] = v;
    ++k;
  }
  std::vector<Fx> median(n);
  for (size_t j = 0; j < n; ++j)
    median[j] = weighted_median(use_stake, score[j], idx, minority, Fx::zero(), stake_sum);
  return median;
}

Matrix col_clip(const Matrix& m, const std::vector<Fx>& threshold) {
  Matrix out(m.size());
  for (size_t i = 0; i < m.size(); ++i)
    for (auto& [j, v] : m[i]) {
      Fx th = j < threshold.size() ? threshold[j] : Fx::zero();
      if (th < v) {
        if (th > Fx::zero()) out[i].emplace_back(j, th);
      } else {
        out[i].emplace_back(j, v);
      }
    }
  return out;
}

Matrix interpolate(const Matrix& a, const Matrix& b, size_t n, Fx ratio) {
  if (ratio == Fx::zero()) return a;
  if (ratio == Fx::one()) return b;
  Matrix out(a.size());
  std::vector<Fx> ra(n), rb(n);
  for (size_t i = 0; i < a.size(); ++i) {
    std::fill(ra.begin(), ra.end(), Fx::zero());
    std::fill(rb.begin(), rb.end(), Fx::zero());
    for (auto& [j, v] : a[i])
      if (j < n) ra[j] = v;
    if (i < b.size())
      for (auto& [j, v] : b[i])
        if (j < n) rb[j] = v;
    for (size_t j = 0; j < n; ++j) {
      Fx x = sat_add(ra[j], sat_mul(ratio, sat_sub(rb[j], ra[j])));
      if (Fx::zero() < x) out[i].emplace_back(static_cast<uint16_t>(j), x);
    }
  }
  return out;
}

// alpha * new + (1 - alpha) * old, densified per row, positive entries kept in uid order.
Matrix ema(const Matrix& fresh, const Matrix& old, Fx alpha, size_t n) {
  Fx keep = sat_sub(Fx::one(), alpha);
  Matrix out(fresh.size());
  std::vector<Fx> acc(n);
  for (size_t i = 0; i < fresh.size(); ++i) {
    std::fill(acc.begin(), acc.end(), Fx::zero());
    for (auto& [j, v] : fresh[i])
      if (j < n) acc[j] = sat_add(acc[j], sat_mul(alpha, v));
    if (i < old.size())
      for (auto& [j, v] : old[i])
        if (j < n) acc[j] = sat_add(acc[j], sat_mul(keep, v));
    for (size_t j = 0; j < n; ++j)
      if (acc[j] > Fx::zero()) out[i].emplace_back(static_cast<uint16_t>(j), acc[j]);
  }
  return out;
}

// Liquid alpha's EMA: a bond survives only where this epoch's weight row has an entry.
Matrix ema_alpha(const Matrix& fresh, const Matrix& old,
                 const std::vector<std::vector<Fx>>& alpha) {
  Matrix out(fresh.size());
  for (size_t i = 0; i < fresh.size(); ++i) {
    const auto& a = alpha[i];
    std::vector<Fx> decayed(a.size());
    for (auto& [j, v] : old[i])
      if (j < a.size()) decayed[j] = sat_mul(sat_sub(Fx::one(), a[j]), v);
    for (auto& [j, v] : fresh[i]) {
      if (j >= a.size()) continue;
      Fx inc = max(sat_mul(a[j], v), Fx::zero());
      Fx x = min(sat_add(decayed[j], inc), Fx::one());
      if (x > Fx::zero()) out[i].emplace_back(j, x);
    }
  }
  return out;
}

Fx alpha_sigmoid(Fx consensus, Fx weight, Fx bond, Fx low, Fx high, Fx steepness) {
  const Fx half = Fx::from_bits(int64_t{1} << 31);
  Fx buy = clamp(sat_sub(weight, consensus), Fx::zero(), Fx::one());
  Fx sell = clamp(sat_sub(bond, weight), Fx::zero(), Fx::one());
  Fx diff = weight >= bond ? buy : sell;
  Fx e = exp_safe(sat_mul(safe_div(steepness, Fx::from_int(-100)), sat_sub(diff, half)));
  Fx sigmoid = safe_div(Fx::one(), sat_add(Fx::one(), e));
  Fx alpha = sat_add(low, sat_mul(sigmoid, sat_sub(high, low)));
  return clamp(alpha, low, high);
}

// Walks sorted-or-not rows with a peek cursor, as the chain's compute_liquid_alpha_values_sparse.
std::vector<std::vector<Fx>> liquid_alphas(const Matrix& w, const Matrix& b,
                                           const std::vector<Fx>& consensus, Fx low, Fx high,
                                           Fx steepness) {
  std::vector<std::vector<Fx>> out;
  for (size_t i = 0; i < w.size(); ++i) {
    std::vector<Fx> row;
    size_t wi = 0, bi = 0;
    for (size_t j = 0; j < consensus.size(); ++j) {
      Fx weight, bond;
      while (wi < w[i].size()) {
        if (w[i][wi].first < j) {
          ++wi;
        } else {
          if (w[i][wi].first == j) weight = w[i][wi].second;
          break;
        }
      }
      while (bi < b[i].size()) {
        if (b[i][bi].first < j) {
          ++bi;
        } else {
          if (b[i][bi].first == j) bond = b[i][bi].second;
          break;
        }
      }
      row.push_back(alpha_sigmoid(consensus[j], weight, bond, low, high, steepness));
    }
    out.push_back(std::move(row));
  }
  return out;
}

// 1 - bonds_moving_average / 1e6, via I64F64 as the chain computes it.
Fx disabled_liquid_alpha(uint64_t bonds_moving_average) {
  unsigned __int128 bma64 =
      (static_cast<unsigned __int128>(bonds_moving_average) << 64) / 1'000'000;
  return sat_sub(Fx::one(), Fx::from_wide(static_cast<__int128>(bma64 >> 32)));
}

}  // namespace

I32F32 exp_safe(I32F32 x) {
  x = clamp(x, I32F32::from_int(-20), I32F32::from_int(20));
  // x = k ln2 + r with |r| <= ln2 / 2, in Q62; e^r by its Taylor series; then shift by k.
  constexpr __int128 kOne = __int128{1} << 62;
  constexpr __int128 kLn2 = 3196577161300663914LL;  // ln 2 * 2^62, truncated
  __int128 xq = static_cast<__int128>(x.bits) << 30;
  __int128 k = (xq >= 0 ? xq + kLn2 / 2 : xq - kLn2 / 2) / kLn2;
  __int128 r = xq - k * kLn2;
  __int128 term = kOne, acc = kOne;
  for (int i = 1; i < 30 && term != 0; ++i) {
    term = (term * r / kOne) / i;
    acc += term;
  }
  // acc is e^r in Q62; the result is acc * 2^k in Q32.
  int shift = 30 - static_cast<int>(k);
  __int128 out = shift >= 0 ? acc >> shift : acc << -shift;
  return I32F32::from_wide(out);
}

bool is_epoch_block(uint64_t block, uint16_t netuid, uint64_t tempo) {
  if (tempo == 0) return false;
  return (block + netuid + 1) % (tempo + 1) == 0;
}

EpochResult run_epoch(const EpochParams& p, const EpochState& s) {
  const size_t n = s.stake.size();
  auto at = [](const auto& v, size_t i, auto fallback) { return i < v.size() ? v[i] : fallback; };

  // == Active & updated ==
  std::vector<bool> inactive(n), active(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t lu = at(s.last_update, i, uint64_t{0});
    uint64_t reach = lu > UINT64_MAX - p.activity_cutoff ? UINT64_MAX : lu + p.activity_cutoff;
    inactive[i] = reach < p.block;
    active[i] = !inactive[i];
  }
  std::vector<uint64_t> registered(n);
  for (size_t i = 0; i < n; ++i) registered[i] = at(s.block_at_registration, i, uint64_t{0});

  // == Stake == normalised in I64F64, then truncated to I32F32.
  std::vector<uint64_t> filtered(n);
  unsigned __int128 total = 0;
  for (size_t i = 0; i < n; ++i) {
    bool owner = p.owner_uid && *p.owner_uid == i;
    filtered[i] = (!owner && s.stake[i] < p.stake_threshold) ? 0 : s.stake[i];
    total += filtered[i];
  }
  std::vector<Fx> stake(n);
  for (size_t i = 0; i < n; ++i) {
    if (total == 0) {
      stake[i] = Fx::from_wide(static_cast<__int128>(filtered[i]) << 32);
    } else {
      unsigned __int128 q = (static_cast<unsigned __int128>(filtered[i]) << 64) / total;
      stake[i] = Fx::from_wide(static_cast<__int128>(q >> 32));
    }
  }

  // == Validator permits ==
  std::vector<bool> permit(n);
  for (size_t i = 0; i < n; ++i) permit[i] = at(s.validator_permit, i, false);
  if (p.owner_uid && *p.owner_uid < n) permit[*p.owner_uid] = true;
  std::vector<bool> new_permit(n);
  for (size_t i = 0; i < n; ++i) new_permit[i] = stake[i] != Fx::zero();
  if (n >= p.max_validators) {
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](size_t a, size_t b) { return stake[a] < stake[b]; });
    for (size_t k = 0; k < n - p.max_validators; ++k) new_permit[idx[k]] = false;
  }
  if (p.owner_uid && *p.owner_uid < n) new_permit[*p.owner_uid] = true;

  // == Active stake ==
  std::vector<Fx> active_stake = stake;
  for (size_t i = 0; i < n; ++i)
    if (inactive[i] || !permit[i]) active_stake[i] = Fx::zero();
  normalize(active_stake);

  // == Weights == rows of permitted validators, no self-weight (except the owner's), none older
  // than the target's registration, rows normalised.
  Matrix weights(n);
  for (size_t i = 0; i < n && i < s.weights.size(); ++i) {
    if (!permit[i]) continue;
    uint64_t lu = at(s.last_update, i, uint64_t{0});
    for (auto [j, w] : s.weights[i]) {
      if (j >= n) continue;
      bool self = j == i;
      bool owner_self = self && p.owner_uid && *p.owner_uid == i;
      if (self && !owner_self) continue;
      if (lu <= registered[j]) continue;
      weights[i].emplace_back(j, Fx::from_int(w));
    }
  }
  row_normalize(weights);

  // == Consensus, validator trust ==
  Fx kappa = safe_div(Fx::from_int(p.kappa), Fx::from_int(65535));
  std::vector<Fx> consensus = weighted_median_col(active_stake, weights, n, kappa);
  Matrix clipped = col_clip(weights, consensus);
  std::vector<Fx> validator_trust = row_sums(clipped);

  // == Ranks, trust, incentive ==
  std::vector<Fx> preranks = matmul(weights, active_stake, n);
  std::vector<Fx> ranks = matmul(clipped, active_stake, n);
  std::vector<Fx> trust(n);
  for (size_t j = 0; j < n; ++j) trust[j] = safe_div(ranks[j], preranks[j]);
  normalize(ranks);
  std::vector<Fx> incentive = ranks;

  // == Bonds and dividends ==
  Fx penalty = safe_div(Fx::from_int(p.bonds_penalty), Fx::from_int(65535));
  Matrix weights_for_bonds = interpolate(weights, clipped, n, penalty);
  uint64_t last_tempo = p.last_mechanism_step_block == 0
                            ? (p.block > p.tempo ? p.block - p.tempo : 0)
                            : p.last_mechanism_step_block + 1;
  Matrix bonds(n);
  for (size_t i = 0; i < n && i < s.bonds.size(); ++i)
    for (auto [j, b] : s.bonds[i]) {
      if (j >= n) continue;
      if (last_tempo <= registered[j]) continue;  // the target registered since the last epoch
      Fx v = Fx::from_int(b);
      bonds[i].emplace_back(j, p.yuma3 ? safe_div(v, Fx::from_int(65535)) : v);
    }

  std::vector<Fx> dividends(n);
  Matrix ema_bonds;
  if (p.yuma3) {
    bool any_consensus =
        std::any_of(consensus.begin(), consensus.end(), [](Fx c) { return c != Fx::zero(); });
    if (p.liquid_alpha && any_consensus) {
      Fx low = u16_proportion(p.alpha_low), high = u16_proportion(p.alpha_high);
      auto alphas = liquid_alphas(weights_for_bonds, bonds, consensus, low, high,
                                  Fx::from_int(p.alpha_sigmoid_steepness));
      ema_bonds = ema_alpha(weights_for_bonds, bonds, alphas);
    } else {
      ema_bonds = ema(weights_for_bonds, bonds, disabled_liquid_alpha(p.bonds_moving_average), n);
    }
    Matrix norm = ema_bonds;
    col_normalize(norm, n);
    std::vector<Fx> per_validator(n);
    for (size_t i = 0; i < norm.size(); ++i)
      for (auto& [j, v] : norm[i]) {
        Fx x = sat_mul(v, incentive[j]);
        if (x != Fx::zero()) per_validator[i] = sat_add(per_validator[i], x);
      }
    for (size_t i = 0; i < n; ++i) {
      __int128 prod = (static_cast<__int128>(per_validator[i].bits) * active_stake[i].bits) >> 32;
      bool overflow = prod > INT64_MAX || prod < INT64_MIN;  // checked_mul: zero on overflow
      dividends[i] = overflow ? Fx::zero() : Fx::from_bits(static_cast<int64_t>(prod));
    }
    normalize(dividends);
  } else {
    col_normalize(bonds, n);
    Matrix delta(weights_for_bonds.size());
    for (size_t i = 0; i < weights_for_bonds.size() && i < n; ++i)
      for (auto& [j, v] : weights_for_bonds[i])
        delta[i].emplace_back(j, sat_mul(v, active_stake[i]));
    col_normalize(delta, n);
    ema_bonds = ema(delta, bonds, disabled_liquid_alpha(p.bonds_moving_average), n);
    col_normalize(ema_bonds, n);
    for (size_t i = 0; i < ema_bonds.size(); ++i)
      for (auto& [j, v] : ema_bonds[i])
        dividends[i] = sat_add(dividends[i], sat_mul(incentive[j], v));
    normalize(dividends);
    col_max_upscale(ema_bonds, n);
  }

  // == Emission ==
  std::vector<Fx> combined(n);
  for (size_t i = 0; i < n; ++i) combined[i] = sat_add(incentive[i], dividends[i]);
  Fx emission_sum = sum(combined);
  std::vector<Fx> server = incentive, validator = dividends, total_norm = combined;
  if (emission_sum != Fx::zero()) {
    for (Fx& x : server) x = safe_div(x, emission_sum);
    for (Fx& x : validator) x = safe_div(x, emission_sum);
  }
  normalize(total_norm);
  if (emission_sum == Fx::zero()) {
    const auto& fallback = sum(active_stake) == Fx::zero() ? stake : active_stake;
    validator = fallback;
    total_norm = fallback;
  }
  auto rao = [&](Fx x) -> uint64_t {
    if (x.bits <= 0) return 0;
    unsigned __int128 v = (static_cast<unsigned __int128>(x.bits) * p.emission) >> 32;
    return v > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(v);
  };

  EpochResult r;
  r.active = active;
  r.validator_permit = new_permit;
  for (size_t i = 0; i < n; ++i) {
    r.stake_weight.push_back(proportion_to_u16(stake[i]));
    r.consensus.push_back(proportion_to_u16(consensus[i]));
    r.incentive.push_back(proportion_to_u16(incentive[i]));
    r.dividends.push_back(proportion_to_u16(dividends[i]));
    r.trust.push_back(proportion_to_u16(trust[i]));
    r.validator_trust.push_back(proportion_to_u16(validator_trust[i]));
    r.emission.push_back(rao(total_norm[i]));
    r.server_emission.push_back(rao(server[i]));
    r.validator_emission.push_back(rao(validator[i]));
    if (new_permit[i]) {
      SparseRow row;
      for (auto& [j, v] : ema_bonds[i]) row.emplace_back(j, proportion_to_u16(v));
      r.bonds.emplace_back(std::move(row));
    } else if (permit[i]) {
      r.bonds.emplace_back(SparseRow{});
    } else {
      r.bonds.emplace_back(std::nullopt);
    }
  }
  return r;
}

}  // namespace bistro::chain
